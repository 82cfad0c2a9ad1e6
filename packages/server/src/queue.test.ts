// The queue limit under load: 429 with Retry-After when full, and every accepted
// job completing exactly once however the submissions interleave.
import { describe, expect, it } from "vitest";
import { api, startFake, waitFor } from "./testing/harness.js";

describe("queue limit", () => {
  it("answers 429 with Retry-After once max-queue jobs wait, and accepts again when there is room", async () => {
    const h = await startFake({ maxQueued: 3, fake: { stepMs: 100 } });
    try {
      const first = await api(h.url, "/v1/videos", { json: { prompt: "runs", steps: 3 } });
      expect(first.status).toBe(202);
      await waitFor(
        "the first job to start",
        async () => (await api(h.url, "/healthz")).body.worker === "busy",
      );
      const statuses: number[] = [];
      let last = first;
      for (let i = 0; i < 5; i++) {
        last = await api(h.url, "/v1/videos", { json: { prompt: `wait ${i}`, steps: 1 } });
        statuses.push(last.status);
      }
      expect(statuses).toEqual([202, 202, 202, 429, 429]);
      expect(last.body.error.code).toBe("queue_full");
      expect(last.body.error.message).toMatch(/3 jobs waiting/);
      const retry = Number(last.headers.get("retry-after"));
      expect(Number.isInteger(retry)).toBe(true);
      expect(retry).toBeGreaterThanOrEqual(1);
      expect((await api(h.url, "/metrics")).body).toMatch(/^tessera_queue_depth 3$/m);
      await waitFor("room in the queue", async () => (await api(h.url, "/healthz")).body.queued < 3, 5000);
      expect((await api(h.url, "/v1/videos", { json: { prompt: "room again", steps: 1 } })).status).toBe(202);
    } finally {
      await h.close();
    }
  });

  it("takes 200 concurrent submissions against a limit of 50: each is 202 or 429, and each accepted job completes exactly once", async () => {
    const h = await startFake({ maxQueued: 50, fake: { stepMs: 2 } });
    try {
      const responses = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          api(h.url, "/v1/videos", { json: { prompt: `job ${i}`, steps: 2 } }),
        ),
      );
      const statuses = responses.map((r) => r.status);
      expect(statuses.filter((s) => s !== 202 && s !== 429)).toEqual([]);
      const accepted = responses
        .filter((r) => r.status === 202)
        .map((r) => r.body as { id: string; prompt: string });
      const refused = responses.filter((r) => r.status === 429);
      expect(accepted.length).toBeGreaterThanOrEqual(50);
      expect(refused.length).toBeGreaterThan(0);
      for (const r of refused) expect(Number(r.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      expect(new Set(accepted.map((a) => a.id)).size).toBe(accepted.length);

      await waitFor(
        "every accepted job to finish",
        async () => {
          const m = (await api(h.url, "/metrics")).body as string;
          return /^tessera_queue_depth 0$/m.test(m) && /^tessera_worker_busy 0$/m.test(m);
        },
        30_000,
        50,
      );
      const all: { id: string; status: string; prompt: string; attempts: number }[] = [];
      let after = "";
      for (;;) {
        const page = await api(h.url, `/v1/videos?limit=100&order=asc${after ? `&after=${after}` : ""}`);
        all.push(...page.body.data);
        if (!page.body.has_more) break;
        after = page.body.last_id;
      }
      expect(all.map((v) => v.id).sort()).toEqual(accepted.map((a) => a.id).sort());
      expect(all.every((v) => v.status === "completed" && v.attempts === 1)).toBe(true);
      // The generator ran each accepted prompt once, and no refused one.
      const runs = new Map<string, number>();
      for (const c of h.gen.calls) runs.set(c.prompt, (runs.get(c.prompt) ?? 0) + 1);
      expect([...runs.values()].every((n) => n === 1)).toBe(true);
      expect([...runs.keys()].sort()).toEqual(accepted.map((a) => a.prompt).sort());
      // They ran in submission order (one worker, oldest first).
      expect(h.gen.calls.map((c) => c.prompt)).toEqual(all.map((v) => v.prompt));
      const m = (await api(h.url, "/metrics")).body as string;
      expect(m).toContain(`tessera_jobs_finished_total{outcome="completed"} ${accepted.length}`);
      expect(m).toContain(`tessera_requests_rejected_total{reason="queue_full"} ${refused.length}`);
    } finally {
      await h.close();
    }
  });
});

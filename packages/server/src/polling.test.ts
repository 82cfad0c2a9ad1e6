// Clients poll job status hard while jobs run: every poll must succeed, and the
// latency distribution is reported (not asserted as a timing: shared CI machines vary).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, type Harness, startFake, waitForStatus } from "./testing/harness.js";

let h: Harness;
beforeAll(async () => {
  h = await startFake({ fake: { stepMs: 20 } });
});
afterAll(() => h.close());

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

describe("status polling under load", () => {
  it("answers every poll while jobs run, and reports p50/p99 latency", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await api(h.url, "/v1/videos", { json: { prompt: `polled job ${i}`, steps: 10, seed: i } });
      expect(r.status).toBe(202);
      ids.push(r.body.id);
    }
    const latencies: number[] = [];
    const errors: string[] = [];
    const deadline = Date.now() + 3_000;
    // 16 concurrent pollers, bounded by count and time.
    await Promise.all(
      Array.from({ length: 16 }, async (_, k) => {
        for (let n = 0; n < 150 && Date.now() < deadline; n++) {
          const id = ids[(k + n) % ids.length] as string;
          const t0 = performance.now();
          const r = await api(h.url, `/v1/videos/${id}`);
          latencies.push(performance.now() - t0);
          if (r.status !== 200 || r.body?.id !== id) errors.push(`${r.status} ${JSON.stringify(r.body)}`);
        }
      }),
    );
    latencies.sort((a, b) => a - b);
    const report = {
      polls: latencies.length,
      p50Ms: Number(percentile(latencies, 50).toFixed(2)),
      p99Ms: Number(percentile(latencies, 99).toFixed(2)),
      maxMs: Number((latencies.at(-1) ?? 0).toFixed(2)),
    };
    console.log(`status polling: ${JSON.stringify(report)}`);
    expect(errors).toEqual([]);
    expect(report.polls).toBeGreaterThan(100);
    for (const id of ids) await waitForStatus(h.url, id, "completed", { timeoutMs: 20_000 });
  });
});

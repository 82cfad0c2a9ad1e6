// A drain (SIGTERM, a rolling restart) is not a crash: the job it puts back is not
// counted against the interruption limit, and while it drains the server keeps
// answering, saying 503 to load balancers and to new submissions.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Store } from "./store.js";
import { api, startFake, tempDir, waitFor, waitForStatus } from "./testing/harness.js";

describe("draining", () => {
  it("survives more rolling restarts than maxAttempts: drains are not interruptions", async () => {
    const dataDir = await tempDir();
    let id = "";
    // Four servers in turn, each drained with no grace while the job runs: a long job and short drains.
    for (let i = 0; i < 4; i++) {
      const h = await startFake({ dataDir, maxAttempts: 3, fake: { stepMs: 30 } });
      if (i === 0)
        id = (await api(h.url, "/v1/videos", { json: { prompt: "a long job", steps: 40 } })).body.id;
      await waitFor("the run", async () => (await api(h.url, `/v1/videos/${id}`)).body.step >= 1);
      await h.close({ keepData: true, graceMs: 50 });
    }
    const store = new Store(join(dataDir, "tessera.db"));
    const row = store.getAnyJob(id);
    store.close();
    expect(row).toMatchObject({ status: "queued", attempts: 4, interruptions: 0 });

    const last = await startFake({ dataDir, maxAttempts: 3, fake: { stepMs: 1 } });
    try {
      const done = await waitForStatus(last.url, id, "completed");
      expect(done.attempts).toBe(5);
    } finally {
      await last.close();
    }
  });

  it("keeps answering while it drains: 503 for /healthz and submissions, the rest as usual", async () => {
    const h = await startFake({ fake: { stepMs: 40 } });
    const c = await api(h.url, "/v1/videos", { json: { prompt: "finishing", steps: 15 } });
    await waitFor("the run", async () => (await api(h.url, `/v1/videos/${c.body.id}`)).body.step >= 1);
    const closing = h.srv.close({ graceMs: 10_000 });

    const health = await api(h.url, "/healthz");
    expect(health.status).toBe(503);
    expect(health.body.status).toBe("draining");
    const refused = await api(h.url, "/v1/videos", { json: { prompt: "too late" } });
    expect(refused.status).toBe(503);
    expect(refused.body.error.code).toBe("shutting_down");
    expect(refused.headers.get("retry-after")).not.toBeNull();
    // Reads still work: a client can follow its job to the end.
    const got = await api(h.url, `/v1/videos/${c.body.id}`);
    expect(got.status).toBe(200);
    expect(got.body.status).toBe("in_progress");

    await closing;
    const store = new Store(join(h.dataDir, "tessera.db"));
    expect(store.getAnyJob(c.body.id)?.status).toBe("completed");
    store.close();
    await h.close();
  });

  it("still counts unclean stops: a job whose server dies too often fails", async () => {
    const dataDir = await tempDir();
    const h = await startFake({ dataDir, fake: { stepMs: 30 } });
    const id = (await api(h.url, "/v1/videos", { json: { prompt: "crashes", steps: 40 } })).body.id;
    await waitFor("the run", async () => (await api(h.url, `/v1/videos/${id}`)).body.step >= 1);
    await h.close({ keepData: true, graceMs: 50 });
    // Three crashes: the job found in_progress at each start.
    const store = new Store(join(dataDir, "tessera.db"));
    for (let i = 0; i < 3; i++) {
      store.markStarted(id);
      store.requeueInterrupted();
    }
    store.close();
    const h2 = await startFake({ dataDir, maxAttempts: 3 });
    try {
      const failed = await waitForStatus(h2.url, id, "failed");
      expect(failed.error).toEqual({
        code: "interrupted",
        message: "the server stopped during this job 3 times; giving up",
      });
    } finally {
      await h2.close();
    }
  });
});

// The disk under the data folder failing: full (a small tmpfs filled to the last
// byte), or not writable (the jobs folder replaced, or mounted read-only). None of it
// may end the process or leave a job in_progress forever: submissions get 507, jobs
// fail with a reason (no server paths in it), and all is well again once space returns.
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { png } from "./testing/fake-generator.js";
import { bindReadOnly, fillDisk, MOUNT_UNAVAILABLE, mountTmpfs } from "./testing/fs-faults.js";
import { api, type Harness, startFake, waitFor, waitForStatus } from "./testing/harness.js";

// Unhandled rejections fail the run; an uncaught exception in the server would too.
const SKIP_FULL = MOUNT_UNAVAILABLE ? ` (skipped: ${MOUNT_UNAVAILABLE})` : "";

describe.skipIf(MOUNT_UNAVAILABLE !== null)(`a full disk${SKIP_FULL}`, () => {
  let fs: ReturnType<typeof mountTmpfs>;
  let h: Harness;
  beforeEach(async () => {
    fs = mountTmpfs(8);
    h = await startFake({ dataDir: join(fs.dir, "data"), fake: { stepMs: 20 } });
  });
  afterEach(async () => {
    try {
      await h.close({ keepData: true });
    } finally {
      fs.unmount();
    }
  });

  it("answers submissions with 507, keeps serving, and takes them again once space is freed", async () => {
    const before = await api(h.url, "/v1/videos", { json: { prompt: "before", steps: 1 } });
    await waitForStatus(h.url, before.body.id, "completed");
    const full = await fillDisk(fs.dir);

    const json = await api(h.url, "/v1/videos", { json: { prompt: "while full", steps: 1 } });
    expect(json.status).toBe(507);
    expect(json.body.error).toMatchObject({ code: "insufficient_storage", type: "server_error" });
    expect(json.body.error.message).toMatch(/disk is full/);
    const form = new FormData();
    form.append("prompt", "an upload while full");
    form.append("image", new Blob([png(16, 16, new Uint8Array(16 * 16 * 3).fill(9))]), "still.png");
    const upload = await api(h.url, "/v1/videos", { body: form });
    expect(upload.status).toBe(507);
    expect(upload.body.error.message).toMatch(/disk is full: the upload could not be stored/);
    // Everything that only reads still works.
    expect((await api(h.url, "/healthz")).status).toBe(200);
    expect((await api(h.url, `/v1/videos/${before.body.id}`)).body.status).toBe("completed");
    expect((await api(h.url, "/metrics")).body).toMatch(/reason="storage_full"\} 2/);

    await full.free();
    const after = await api(h.url, "/v1/videos", { json: { prompt: "after", steps: 1 } });
    expect(after.status).toBe(202);
    await waitForStatus(h.url, after.body.id, "completed");
  });

  it("fails the job whose output no longer fits, and runs the next one once space is freed", async () => {
    const a = await api(h.url, "/v1/videos", { json: { prompt: "fills up", steps: 40, size: "64x64" } });
    const b = await api(h.url, "/v1/videos", { json: { prompt: "queued behind", steps: 1 } });
    await waitFor("the run", async () => (await api(h.url, `/v1/videos/${a.body.id}`)).body.step >= 2);
    // Full while the job runs: its video cannot be written, and the database cannot start the next job.
    const full = await fillDisk(fs.dir);
    // The run ends (its failure may be recordable only once space is back), and the server is still here.
    await waitFor(
      "the run to end",
      async () => (await api(h.url, "/healthz")).body.worker === "idle",
      15_000,
    );
    expect((await api(h.url, `/v1/videos/${b.body.id}`)).body.status).toBe("queued");
    await full.free();
    const done = await waitForStatus(h.url, b.body.id, "completed", { timeoutMs: 20_000 });
    expect(done.status).toBe("completed");
    const aEnd = await waitForStatus(h.url, a.body.id, "failed");
    expect(aEnd.error.code).toBe("disk_full");
    expect(aEnd.error.message).toMatch(/disk filled up during this job/);
    expect(aEnd.error.message).not.toContain(fs.dir);
  }, 60_000);
});

describe("an outputs folder that cannot be written", () => {
  let h: Harness;
  afterEach(async () => {
    await h?.close();
  });

  it("fails the job with a reason instead of leaving it in progress, and keeps running jobs", async () => {
    h = await startFake({ fake: { stepMs: 1 } });
    const jobs = join(h.dataDir, "jobs");
    // The jobs folder replaced by a file: nothing under it can be made.
    await rm(jobs, { recursive: true, force: true });
    await writeFile(jobs, "not a folder");
    const c = await api(h.url, "/v1/videos", { json: { prompt: "nowhere to write", steps: 2 } });
    expect(c.status).toBe(202);
    const failed = await waitForStatus(h.url, c.body.id, "failed");
    expect(failed.error.code).toBe("storage_error");
    expect(failed.error.message).toMatch(/could not write this job's files/);
    expect(failed.error.message).not.toContain(h.dataDir);
    const health = await api(h.url, "/healthz");
    expect(health.body).toMatchObject({ status: "ok", worker: "idle" });

    await rm(jobs, { force: true });
    await mkdir(jobs);
    const next = await api(h.url, "/v1/videos", { json: { prompt: "room again", steps: 2 } });
    await waitForStatus(h.url, next.body.id, "completed");
  });

  it.skipIf(MOUNT_UNAVAILABLE !== null)(`fails the job on a read-only data folder${SKIP_FULL}`, async () => {
    h = await startFake({ fake: { stepMs: 1 } });
    const undo = bindReadOnly(join(h.dataDir, "jobs"));
    try {
      const c = await api(h.url, "/v1/videos", { json: { prompt: "read-only", steps: 2 } });
      const failed = await waitForStatus(h.url, c.body.id, "failed");
      expect(failed.error.code).toBe("storage_error");
      // Node reports mkdir -p on a read-only mount as ENOENT (the report), else EROFS.
      expect(failed.error.message).toMatch(/EROFS|ENOENT/);
    } finally {
      undo();
    }
    const next = await api(h.url, "/v1/videos", { json: { prompt: "writable again", steps: 2 } });
    await waitForStatus(h.url, next.body.id, "completed");
  });
});

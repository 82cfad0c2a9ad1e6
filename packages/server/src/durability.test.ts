// Jobs survive the server: a drain that runs out of time requeues the running job,
// a SIGKILLed server's job runs again on the next start, SIGTERM finishes the job
// before exiting, and a job that keeps killing the server eventually fails.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readdir, readFile, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer } from "./app.js";
import { Store } from "./store.js";
import { compileForChildProcesses } from "./testing/compile.js";
import { FakeVideoGenerator } from "./testing/fake-generator.js";
import { api, parseY4m, startFake, tempDir, waitFor, waitForStatus } from "./testing/harness.js";

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), "..");

describe("in-process restarts", () => {
  it("requeues the running job when a drain runs out of time, and the next server completes it", async () => {
    const h = await startFake({ fake: { stepMs: 50 } });
    const c = await api(h.url, "/v1/videos", { json: { prompt: "survive a restart", steps: 20, seed: 5 } });
    await waitFor("progress", async () => (await api(h.url, `/v1/videos/${c.body.id}`)).body.step >= 2);
    const queuedBehind = await api(h.url, "/v1/videos", { json: { prompt: "behind it", steps: 1 } });
    await h.close({ keepData: true, graceMs: 0 });
    expect(h.gen.completed).toEqual([]);

    const store = new Store(join(h.dataDir, "tessera.db"));
    const row = store.getAnyJob(c.body.id);
    store.close();
    expect(row?.status).toBe("queued");
    expect(row?.progress).toBe(0);
    expect(await readdir(join(h.dataDir, "jobs", c.body.id)).catch(() => [])).toEqual([]);

    const h2 = await startFake({ dataDir: h.dataDir, fake: { stepMs: 1 } });
    try {
      const done = await waitForStatus(h2.url, c.body.id, "completed");
      expect(done.attempts).toBe(2);
      expect(done.seed).toBe(5);
      await waitForStatus(h2.url, queuedBehind.body.id, "completed");
      // The interrupted job ran first again: the queue keeps submission order across restarts.
      expect(h2.gen.calls.map((x) => x.prompt)).toEqual(["survive a restart", "behind it"]);
      const content = await fetch(`${h2.url}${done.content.url}`);
      expect(parseY4m(Buffer.from(await content.arrayBuffer()))).toEqual({
        width: 32,
        height: 32,
        frames: 9,
      });
    } finally {
      await h2.close();
    }
  });

  it("lets the running job finish when the drain has time, and refuses new work meanwhile", async () => {
    const h = await startFake({ fake: { stepMs: 30 } });
    const c = await api(h.url, "/v1/videos", { json: { prompt: "finish me", steps: 8 } });
    await waitFor(
      "the job to start",
      async () => (await api(h.url, `/v1/videos/${c.body.id}`)).body.step >= 1,
    );
    const closing = h.srv.close({ graceMs: 10_000 });
    // The listener is closed at once: nothing new gets in.
    const refused = await fetch(`${h.url}/v1/videos`, { method: "POST" }).then(
      (r) => r.status,
      () => "connection refused",
    );
    expect([503, "connection refused"]).toContain(refused);
    await closing;
    expect(h.gen.completed.map((x) => x.prompt)).toEqual(["finish me"]);
    const store = new Store(join(h.dataDir, "tessera.db"));
    expect(store.getAnyJob(c.body.id)?.status).toBe("completed");
    store.close();
    await rm(h.dataDir, { recursive: true, force: true });
  });

  it("fails a job that was interrupted max-attempts times instead of running it forever", async () => {
    const dataDir = await tempDir();
    const store = new Store(join(dataDir, "tessera.db"));
    const id = "11111111-2222-4333-8444-555555555555";
    const request = {
      model: "fake",
      prompt: "crashes the server",
      negativePrompt: "",
      width: 32,
      height: 32,
      frames: 9,
      fps: 8,
      steps: 4,
      guidance: 5,
      seed: 1,
    };
    store.insertJob({ id, keyId: null, request, totalSteps: 4 }, 10);
    for (let i = 0; i < 3; i++) {
      store.markStarted(id);
      if (i < 2) store.requeue(id);
    }
    store.close();
    const gen = new FakeVideoGenerator();
    const srv = await createServer({ dataDir, generator: gen, maxAttempts: 3 });
    try {
      expect(srv.requeuedAtStart).toBe(1);
      const job = await waitFor("the job to fail", () => {
        const j = srv.store.getJob(id, null);
        return j?.status === "failed" ? j : undefined;
      });
      expect(job.error?.code).toBe("interrupted");
      expect(gen.calls).toEqual([]);
    } finally {
      await srv.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe("a restart with another model", () => {
  it("fails the jobs queued for the old model instead of running them on the new one", async () => {
    const h = await startFake({ fake: { stepMs: 200 } });
    await api(h.url, "/v1/videos", { json: { prompt: "hold", steps: 50 } });
    const c = await api(h.url, "/v1/videos", { json: { prompt: "for the fake model" } });
    await h.close({ keepData: true, graceMs: 0 });
    const gen = new FakeVideoGenerator({ info: { model: "other" } });
    const srv = await createServer({ dataDir: h.dataDir, generator: gen });
    try {
      const job = await waitFor("the job to fail", () => {
        const j = srv.store.getJob(c.body.id, null);
        return j?.status === "failed" ? j : undefined;
      });
      expect(job.error).toEqual({
        code: "model_unavailable",
        message: "this job is for model 'fake' but the server now runs 'other'",
      });
      expect(gen.calls).toEqual([]);
    } finally {
      await srv.close();
      await rm(h.dataDir, { recursive: true, force: true });
    }
  });
});

describe("a server process killed mid-run", () => {
  const outDir = join(pkgDir, "node_modules", ".cache", "tessera-server-test");
  const script = join(outDir, "testing", "child-server.js");
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    await compileForChildProcesses(outDir, script);
  }, 60_000);

  afterAll(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  });

  function startChild(
    dataDir: string,
    stepMs: number,
  ): Promise<{ child: ChildProcess; url: string; line: string }> {
    const child = spawn(process.execPath, [script, "--data", dataDir, "--step-ms", String(stepMs)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(child);
    return new Promise((resolve, reject) => {
      let out = "";
      let err = "";
      const timer = setTimeout(() => reject(new Error(`child server did not start: ${out}${err}`)), 20_000);
      child.stderr?.on("data", (d) => {
        err += d;
      });
      child.stdout?.on("data", (d) => {
        out += d;
        const m = /LISTENING (\S+)(.*)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve({ child, url: m[1] as string, line: m[0] });
        }
      });
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`child server exited (${code ?? signal}) before listening: ${out}${err}`));
      });
    });
  }

  const exited = (child: ChildProcess) =>
    new Promise<{ code: number | null; signal: string | null }>((r) =>
      child.exitCode !== null || child.signalCode !== null
        ? r({ code: child.exitCode, signal: child.signalCode })
        : child.once("exit", (code, signal) => r({ code, signal })),
    );

  it("runs the job again after SIGKILL and a restart, producing a valid video", async () => {
    const dataDir = await tempDir();
    try {
      const a = await startChild(dataDir, 100);
      const c = await api(a.url, "/v1/videos", {
        json: { prompt: "killed mid-run", size: "48x32", frames: 13, steps: 30 },
      });
      expect(c.status).toBe(202);
      await waitFor(
        "the run to be under way",
        async () => (await api(a.url, `/v1/videos/${c.body.id}`)).body.step >= 2,
      );
      a.child.kill("SIGKILL");
      expect((await exited(a.child)).signal).toBe("SIGKILL");

      // What the killed server left: the job still marked in progress, a staging folder, no output.
      const store = new Store(join(dataDir, "tessera.db"));
      expect(store.getAnyJob(c.body.id)?.status).toBe("in_progress");
      store.close();
      expect(existsSync(join(dataDir, "jobs", c.body.id, "out"))).toBe(false);

      const b = await startChild(dataDir, 2);
      expect(b.line).toContain("requeued=1");
      const done = await waitForStatus(b.url, c.body.id, "completed", { timeoutMs: 15_000 });
      expect(done.attempts).toBe(2);
      const r = await fetch(`${b.url}${done.content.url}`);
      expect(r.status).toBe(200);
      const buf = Buffer.from(await r.arrayBuffer());
      expect(buf.length).toBe(done.content.bytes);
      expect(parseY4m(buf)).toEqual({ width: 48, height: 32, frames: 13 });
      expect(await readdir(join(dataDir, "jobs", c.body.id))).toEqual(["out"]);
      expect((await readFile(join(dataDir, "jobs", c.body.id, "out", "video.y4m"))).equals(buf)).toBe(true);

      // SIGTERM drains: the running job finishes, then the process exits cleanly.
      const last = await api(b.url, "/v1/videos", { json: { prompt: "finish before exit", steps: 50 } });
      await waitFor(
        "the last job to start",
        async () => (await api(b.url, `/v1/videos/${last.body.id}`)).body.step >= 1,
      );
      b.child.kill("SIGTERM");
      expect(await exited(b.child)).toEqual({ code: 0, signal: null });
      const after = new Store(join(dataDir, "tessera.db"));
      expect(after.getAnyJob(last.body.id)?.status).toBe("completed");
      after.close();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});

// Redis mode (serve --queue): a real redis-server of the test's own on a free
// loopback port, the API in this process, and `tessera worker`s as child processes
// over the fake generator. Skipped, visibly, where redis-server is not installed.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readdir, readFile, rm } from "node:fs/promises";
import { createServer as netServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type TesseraServer } from "./app.js";
import { queueUrlProblem } from "./redis-queue.js";
import { Store } from "./store.js";
import { compileForChildProcesses } from "./testing/compile.js";
import { FakeVideoGenerator } from "./testing/fake-generator.js";
import { api, parseY4m, readSse, tempDir, UNDER_CI, waitFor, waitForStatus } from "./testing/harness.js";

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), "..");

function findRedis(): string | null {
  try {
    return execFileSync("sh", ["-c", "command -v redis-server"], { encoding: "utf8" }).trim() || null;
  } catch {
    return null;
  }
}
const redisServer = findRedis();
const SKIP = "skipped: redis-server is not installed (apt-get install redis-server)";
if (!redisServer) console.warn(`redis.test.ts: ${SKIP}`);

describe.runIf(!redisServer && UNDER_CI)("redis mode under CI", () => {
  it("needs redis-server (CI=true makes a missing one a failure, not a skip)", () => {
    throw new Error("redis-server is not installed: apt-get install redis-server (as .ci/run does)");
  });
});

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = netServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

const exited = (child: ChildProcess) =>
  new Promise<{ code: number | null; signal: string | null }>((r) =>
    child.exitCode !== null || child.signalCode !== null
      ? r({ code: child.exitCode, signal: child.signalCode })
      : child.once("exit", (code, signal) => r({ code, signal })),
  );

describe("queue URLs", () => {
  it("accepts redis:// and rediss:// only", () => {
    expect(queueUrlProblem("redis://127.0.0.1:6379")).toBeNull();
    expect(queueUrlProblem("rediss://user:pw@cache.example:6380/2")).toBeNull();
    expect(queueUrlProblem("http://127.0.0.1:6379")).toMatch(/not a redis/);
    expect(queueUrlProblem("127.0.0.1:6379")).toMatch(/not a redis|not a URL/);
    expect(queueUrlProblem("nonsense")).toMatch(/not a URL/);
  });
});

describe.skipIf(!redisServer)(`redis mode${redisServer ? "" : ` (${SKIP})`}`, () => {
  const outDir = join(pkgDir, "node_modules", ".cache", "tessera-server-redis-test");
  const script = join(outDir, "testing", "child-worker.js");
  const children: ChildProcess[] = [];
  let redis: ChildProcess | null = null;
  let redisDir = "";
  let queue = "";
  let dataDir = "";
  let logFile = "";
  let srv: TesseraServer | null = null;
  let url = "";
  const workers = new Map<number, { child: ChildProcess; out: () => string }>();

  async function startApi(): Promise<void> {
    srv = await createServer({
      dataDir,
      // As an API host without the model: what the model was given comes from the workers.
      generator: new FakeVideoGenerator({ noPreparePrompt: true }),
      port: 0,
      rateLimit: false,
      queue,
      queueSweepIntervalMs: 500,
    });
    url = await srv.listen();
  }

  function startWorker(stepMs = 50, rewrites = false): Promise<number> {
    const child = spawn(
      process.execPath,
      [
        script,
        "--queue",
        queue,
        "--data",
        dataDir,
        "--log",
        logFile,
        "--step-ms",
        String(stepMs),
        ...(rewrites ? ["--rewrites"] : []),
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    children.push(child);
    let out = "";
    child.stdout?.on("data", (d) => {
      out += d;
    });
    child.stderr?.on("data", (d) => {
      out += d;
    });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`worker did not start: ${out}`)), 20_000);
      const poll = setInterval(() => {
        const m = /READY (\d+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          clearInterval(poll);
          workers.set(Number(m[1]), { child, out: () => out });
          resolve(Number(m[1]));
        }
      }, 10);
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        clearInterval(poll);
        reject(new Error(`worker exited (${code ?? signal}) before it was ready: ${out}`));
      });
    });
  }

  async function logLines(): Promise<string[]> {
    return existsSync(logFile) ? (await readFile(logFile, "utf8")).split("\n").filter(Boolean) : [];
  }
  const count = (lines: string[], kind: string, prompt: string) =>
    lines.filter((l) => l.startsWith(`${kind} ${prompt} `)).length;

  async function submit(prompt: string, steps: number) {
    const r = await api(url, "/v1/videos", { json: { prompt, size: "48x32", frames: 13, steps } });
    expect(r.status).toBe(202);
    return r.body.id as string;
  }

  async function checkVideo(id: string) {
    const job = await waitForStatus(url, id, "completed", { timeoutMs: 20_000 });
    const r = await fetch(`${url}${job.content.url}`);
    expect(r.status).toBe(200);
    const buf = Buffer.from(await r.arrayBuffer());
    expect(buf.length).toBe(job.content.bytes);
    expect(parseY4m(buf)).toEqual({ width: 48, height: 32, frames: 13 });
    expect(await readdir(join(dataDir, "jobs", id))).toEqual(["out"]);
    return job;
  }

  beforeAll(async () => {
    const compile = compileForChildProcesses(outDir, script);
    redisDir = await tempDir("tessera-redis-");
    dataDir = await tempDir();
    logFile = join(dataDir, "executions.log");
    const port = await freePort();
    queue = `redis://127.0.0.1:${port}`;
    redis = spawn(
      redisServer as string,
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", redisDir],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let rout = "";
    redis.stdout?.on("data", (d) => {
      rout += d;
    });
    await waitFor("redis-server to accept connections", () => rout.includes("Ready to accept"), 10_000);
    await compile;
    await startApi();
  }, 90_000);

  afterAll(async () => {
    await srv?.close({ graceMs: 0 }).catch(() => {});
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await Promise.all(children.map(exited));
    if (redis && redis.exitCode === null) {
      redis.kill("SIGTERM");
      await exited(redis);
    }
    await rm(redisDir, { recursive: true, force: true });
    await rm(dataDir, { recursive: true, force: true });
  }, 30_000);

  it("two workers take the jobs; each runs exactly once, with progress over SSE", async () => {
    await startWorker();
    await startWorker();
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(await submit(`batch-${i}`, 6));
    const sse = readSse(url, `/v1/videos/${ids[5]}/events`, undefined, 20_000);
    for (const id of ids) await checkVideo(id);
    const lines = await logLines();
    for (let i = 0; i < 6; i++) {
      expect(count(lines, "start", `batch-${i}`)).toBe(1);
      expect(count(lines, "done", `batch-${i}`)).toBe(1);
    }
    // Both workers took part.
    const pids = new Set(lines.filter((l) => l.startsWith("done batch-")).map((l) => l.split(" ")[2]));
    expect(pids.size).toBe(2);
    const { events } = await sse;
    expect(events.at(-1)?.event).toBe("completed");
    expect(events.some((e) => e.event === "progress")).toBe(true);
    const list = await api(url, "/v1/videos?limit=10");
    expect(list.body.data.filter((v: { status: string }) => v.status === "completed")).toHaveLength(6);
  }, 40_000);

  it("a job whose worker is SIGKILLed mid-run is finished by the other, once", async () => {
    const id = await submit("killed-worker", 40);
    const line = await waitFor("a worker to start the job", async () =>
      (await logLines()).find((l) => l.startsWith("start killed-worker ")),
    );
    await waitFor("a few steps", async () => (await api(url, `/v1/videos/${id}`)).body.step >= 3);
    const pid = Number(line.split(" ")[2]);
    const victim = workers.get(pid);
    expect(victim).toBeDefined();
    victim?.child.kill("SIGKILL");
    expect((await exited(victim?.child as ChildProcess)).signal).toBe("SIGKILL");
    workers.delete(pid);
    const job = await checkVideo(id);
    expect(job.attempts).toBe(2);
    const lines = await logLines();
    expect(count(lines, "start", "killed-worker")).toBe(2);
    expect(count(lines, "done", "killed-worker")).toBe(1);
    expect(lines.find((l) => l.startsWith("done killed-worker "))).not.toContain(` ${pid}`);
    // A replacement, for the tests below.
    await startWorker();
  }, 40_000);

  it("cancelling a running job stops it on the worker", async () => {
    const id = await submit("cancel-me", 100);
    await waitFor("the run to be under way", async () => (await api(url, `/v1/videos/${id}`)).body.step >= 2);
    const del = await api(url, `/v1/videos/${id}`, { method: "DELETE" });
    expect(del.body.status).toBe("cancelled");
    await waitFor(
      "a worker to report the cancellation",
      () => [...workers.values()].some((w) => w.out().includes(`${id} cancelled`)),
      5_000,
    );
    expect(count(await logLines(), "done", "cancel-me")).toBe(0);
    expect((await api(url, `/v1/videos/${id}`)).body.status).toBe("cancelled");
    expect(existsSync(join(dataDir, "jobs", id, "out"))).toBe(false);
    // A finished job can then be deleted, and its queue entry is gone.
    const gone = await api(url, `/v1/videos/${id}`, { method: "DELETE" });
    expect(gone.body.deleted).toBe(true);
  }, 20_000);

  it("the API restarts without losing jobs: work finished while it was down, and one never enqueued", async () => {
    const a = await submit("while-down-a", 20);
    const b = await submit("while-down-b", 20);
    await srv?.close({ graceMs: 0 });
    srv = null;
    // A crash between the SQLite insert and the enqueue leaves a job only in SQLite.
    const store = new Store(join(dataDir, "tessera.db"));
    const orphan = "00000000-0000-4000-8000-000000000001";
    const req = (await (async () => store.getAnyJob(a)?.request)()) as NonNullable<
      ReturnType<Store["getAnyJob"]>
    >["request"];
    expect(
      store.insertJob({ id: orphan, keyId: null, request: { ...req, prompt: "orphan" }, totalSteps: 20 }, 100)
        .ok,
    ).toBe(true);
    store.close();
    await waitFor(
      "both jobs to finish on the workers",
      async () => {
        const l = await logLines();
        return count(l, "done", "while-down-a") === 1 && count(l, "done", "while-down-b") === 1;
      },
      15_000,
    );
    await startApi();
    for (const id of [a, b, orphan]) await checkVideo(id);
    const lines = await logLines();
    for (const p of ["while-down-a", "while-down-b", "orphan"]) {
      expect(count(lines, "start", p)).toBe(1);
      expect(count(lines, "done", p)).toBe(1);
    }
  }, 40_000);

  it("a worker stopped with SIGTERM mid-job puts it back for another; a cancelled queued job never runs", async () => {
    const id = await submit("handed-back", 40);
    const line = await waitFor("a worker to start the job", async () =>
      (await logLines()).find((l) => l.startsWith("start handed-back ")),
    );
    await waitFor("a few steps", async () => (await api(url, `/v1/videos/${id}`)).body.step >= 3);
    const pid = Number(line.split(" ")[2]);
    const w = workers.get(pid) as { child: ChildProcess };
    w.child.kill("SIGTERM");
    expect(await exited(w.child)).toEqual({ code: 0, signal: null });
    workers.delete(pid);
    const job = await checkVideo(id);
    expect(job.attempts).toBe(2);
    const lines = await logLines();
    expect(count(lines, "start", "handed-back")).toBe(2);
    expect(count(lines, "done", "handed-back")).toBe(1);

    // With no worker left, a job waits in the queue; cancelling it there means no worker ever runs it.
    for (const [p, x] of workers) {
      x.child.kill("SIGTERM");
      expect(await exited(x.child)).toEqual({ code: 0, signal: null });
      workers.delete(p);
    }
    const waiting = await submit("never-run", 4);
    expect((await api(url, `/v1/videos/${waiting}`)).body.status).toBe("queued");
    expect((await api(url, `/v1/videos/${waiting}`, { method: "DELETE" })).body.status).toBe("cancelled");
    const check = await submit("after-cancel", 4);
    await startWorker();
    await checkVideo(check);
    await new Promise((r) => setTimeout(r, 300));
    expect(count(await logLines(), "start", "never-run")).toBe(0);
    expect((await api(url, `/v1/videos/${waiting}`)).body.status).toBe("cancelled");
  }, 40_000);

  it("takes prompt_used and the rewriter's report from the worker's result when the API has no model", async () => {
    for (const [p, x] of workers) {
      x.child.kill("SIGTERM");
      await exited(x.child);
      workers.delete(p);
    }
    await startWorker(5, true);
    const body = { prompt: "a blue  ball zooming", size: "48x32", frames: 13, steps: 3 };
    const a = await api(url, "/v1/videos", { json: body });
    const b = await api(url, "/v1/videos", { json: { ...body, rewrite: false } });
    expect([a.status, b.status]).toEqual([202, 202]);
    // The API cannot know it yet.
    expect([a.body.prompt_used, a.body.rewrite]).toEqual([null, null]);
    const ja = await checkVideo(a.body.id);
    expect(ja.prompt).toBe("a blue  ball zooming");
    expect(ja.prompt_used).toBe("fake caption: a blue ball");
    expect(ja.rewrite).toEqual({ unknown_words: ["zooming"], filled_defaults: [], changed: true });
    const jb = await checkVideo(b.body.id);
    expect([jb.prompt_used, jb.rewrite]).toEqual(["a blue ball zooming", null]);
    // Stored in SQLite with the result, so it outlives the API process.
    expect(srv?.store.getAnyJob(a.body.id)?.prepared?.prompt).toBe("fake caption: a blue ball");
  }, 30_000);
});

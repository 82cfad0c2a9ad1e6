// Scale-out: `tessera serve --queue redis://…` puts jobs on a BullMQ queue, and
// any number of `tessera worker --queue redis://…` processes take them.
//
// Where state lives:
// - The API's SQLite stays the one source of truth for job metadata (status,
//   attempts, results, keys). Workers never open it (SQLite over a network file
//   system is not safe); they report through Redis instead: BullMQ job progress
//   while running, and the job's return value at the end. The API applies both
//   with the same guarded transitions as in-process mode, so a status becomes
//   completed at most once.
// - Redis holds only the work: one BullMQ job per video (BullMQ job id = video
//   id, so adding it twice is a no-op), carrying the resolved request, plus a
//   `cancel` key per cancelled video that workers check between steps.
// - Inputs and outputs live in the data folder, which must be the same folder
//   (a shared mount: NFS, CephFS…) on the API host and every worker host.
//   Workers write into a private staging folder and rename it into place, so a
//   client never sees half a video.
//
// Exactly once: BullMQ gives a job to one worker under a lock that the worker
// renews every lockDuration/2. A worker that dies stops renewing; after
// lockDuration its lock expires and the next stalled-job check (every
// stalledInterval, by any live worker) puts the job back in the queue, where
// another worker runs it again from scratch (old staging folders are removed
// first). Just before publishing, the worker extends its lock once more and
// gives up if it no longer holds it, so a worker that was merely slow cannot
// publish over a run that another worker owns. Completing in BullMQ also checks
// the lock token, and the API's SQLite transition (in_progress → completed)
// happens once whatever duplicates arrive (QueueEvents + the periodic sweep).
import { EventEmitter } from "node:events";
import { mkdir, rename, rm } from "node:fs/promises";
import { type Job, Queue, QueueEvents, WaitingError, Worker } from "bullmq";
import { Redis } from "ioredis";
import type { GeneratedVideo, GenerationProgress, PreparedPrompt, VideoGenerator } from "./generator.js";
import { isAbortError } from "./generator.js";
import type { JobEvent, LivePreview, LiveProgress } from "./jobs.js";
import type { Metrics } from "./metrics.js";
import { checkOutputs, prefixed } from "./outputs.js";
import { type DataDir, isJobId } from "./paths.js";
import { PreviewEncoder } from "./preview.js";
import { runError, withoutPaths } from "./storage.js";
import type { JobRow, Store, StoredRequest, StoredResult } from "./store.js";
import { requestFromStored } from "./validation.js";

export const QUEUE_NAME = "tessera-videos";
const DENOISE_SHARE = 99;
const CANCEL_TTL_S = 7 * 24 * 3600;

/** Checks a --queue value: a redis:// or rediss:// URL. Returns an error message, or null if fine. */
export function queueUrlProblem(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `'${url}' is not a URL; use redis://HOST:PORT (or rediss:// for TLS)`;
  }
  if (u.protocol !== "redis:" && u.protocol !== "rediss:")
    return `'${url}' is not a redis:// or rediss:// URL`;
  if (!u.hostname) return `'${url}' names no host; use redis://HOST:PORT`;
  return null;
}

function connect(url: string, into: Redis[]): Redis {
  // BullMQ needs blocking commands to wait forever, hence maxRetriesPerRequest: null.
  const r = new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true });
  r.on("error", () => {}); // ioredis reconnects by itself; errors surface on the commands
  into.push(r);
  return r;
}

const cancelKey = (id: string) => `tessera:cancel:${id}`;

/** What a worker puts on the queue's job. */
interface QueuedData {
  id: string;
  request: StoredRequest;
  createdAt: number;
}

/** What a worker's run returns (BullMQ's return value). */
export type RunOutcome =
  | {
      outcome: "completed";
      result: StoredResult;
      timings: Record<string, number>;
      /** The prompt the model was given (absent from older workers). */
      prepared?: PreparedPrompt;
    }
  | { outcome: "cancelled" }
  | { outcome: "failed"; error: { code: string; message: string }; timings?: Record<string, number> };

export interface RedisRunnerOptions {
  url: string;
  /** Milliseconds between sweeps that reconcile SQLite with the queue (default 5000). */
  sweepIntervalMs?: number;
  progressWriteIntervalMs: number;
}

/**
 * The API side in Redis mode: the same surface as JobRunner (what the routes use; see
 * Runner in http/context.ts), but jobs run on `tessera worker` processes.
 */
export class RedisJobRunner {
  readonly events = new EventEmitter();
  readonly #queue: Queue;
  readonly #queueEvents: QueueEvents;
  readonly #redis: Redis;
  /** Connections we made (BullMQ does not close connections it was handed). */
  readonly #conns: Redis[] = [];
  readonly #live = new Map<string, LiveProgress>();
  readonly #previews = new Map<string, LivePreview>();
  readonly #lastWrite = new Map<string, number>();
  #sweepTimer: NodeJS.Timeout | null = null;
  #sweeping: Promise<void> | null = null;
  #stopped = false;
  #avgRunMs: number | null = null;

  constructor(
    private readonly store: Store,
    private readonly data: DataDir,
    private readonly metrics: Metrics,
    private readonly opts: RedisRunnerOptions,
  ) {
    this.events.setMaxListeners(0);
    this.#redis = connect(opts.url, this.#conns);
    this.#queue = new Queue(QUEUE_NAME, { connection: connect(opts.url, this.#conns) });
    this.#queue.on("error", () => {});
    this.#queueEvents = new QueueEvents(QUEUE_NAME, { connection: connect(opts.url, this.#conns) });
    this.#queueEvents.on("error", () => {});
  }

  get busy(): boolean {
    return this.#live.size > 0;
  }

  get currentId(): string | null {
    return this.#live.keys().next().value ?? null;
  }

  live(id: string): LiveProgress | null {
    return this.#live.get(id) ?? null;
  }

  lastPreview(id: string): LivePreview | null {
    return this.#previews.get(id) ?? null;
  }

  /** Seconds until a queue slot is likely free: the soonest end among the running jobs, else a typical run. */
  retryAfterSeconds(): number {
    let ms = this.#avgRunMs ?? 10_000;
    for (const l of this.#live.values()) if (l.etaMs > 0) ms = Math.min(ms, l.etaMs);
    return Math.max(1, Math.min(3600, Math.ceil(ms / 1000)));
  }

  /** Connects and reconciles before the API takes requests. */
  async init(timeoutMs = 10_000): Promise<void> {
    await withTimeout(
      Promise.all([this.#queue.waitUntilReady(), this.#queueEvents.waitUntilReady()]),
      timeoutMs,
      `connecting to the queue at ${this.opts.url.replace(/\/\/[^@/]*@/, "//***@")}`,
    );
    const qe = this.#queueEvents;
    // The database may refuse a write (its disk full): that must not escape an event handler.
    qe.on("active", ({ jobId }) => guarded(() => this.#onActive(jobId)));
    qe.on("progress", ({ jobId, data }) => guarded(() => this.#onProgress(jobId, data)));
    qe.on("completed", ({ jobId, returnvalue }) => {
      void this.#finish(jobId, parseOutcome(returnvalue)).catch(logError);
    });
    qe.on("failed", ({ jobId, failedReason }) => {
      void this.#finish(jobId, {
        outcome: "failed",
        error: /stalled/i.test(failedReason)
          ? {
              code: "interrupted",
              message: `workers stopped during this job too often: ${withoutPaths(failedReason)}`,
            }
          : { code: "generation_failed", message: withoutPaths(failedReason) },
      }).catch(logError);
    });
    await this.#sweep();
  }

  start(): void {
    if (this.#sweepTimer) return;
    this.#sweepTimer = setInterval(() => {
      if (!this.#sweeping)
        this.#sweeping = this.#sweep()
          .catch(logError)
          .finally(() => {
            this.#sweeping = null;
          });
    }, this.opts.sweepIntervalMs ?? 5000);
  }

  /** After a submission: puts the job on the queue. A failure here is retried by the sweep. */
  async wake(id?: string): Promise<void> {
    if (id === undefined) return;
    const job = this.store.getAnyJob(id);
    // Bounded: with Redis unreachable the request must not hang; the job is in SQLite and the sweep adds it.
    if (job) await withTimeout(this.#enqueue(job), 2000, "enqueueing").catch(logError);
  }

  cancel(id: string): boolean {
    if (!this.store.markCancelled(id)) return false;
    this.#live.delete(id);
    this.#previews.delete(id);
    this.#emit({ type: "status", id, status: "cancelled" });
    this.metrics.finished("cancelled");
    // The worker checks this key between steps; a waiting job is simply taken off the queue.
    void this.#redis
      .set(cancelKey(id), "1", "EX", CANCEL_TTL_S)
      .then(() => this.#queue.remove(id).catch(() => 0)) // refused while a worker holds it: fine
      .catch(logError);
    return true;
  }

  async settled(_id: string): Promise<void> {}

  /** Stops listening; jobs keep running on the workers, and the next start reconciles. */
  async drain(_graceMs: number): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#sweepTimer) clearInterval(this.#sweepTimer);
    await this.#sweeping;
    await this.#queueEvents.close().catch(() => {});
    await this.#queue.close().catch(() => {});
    for (const c of this.#conns) c.disconnect();
  }

  #emit(e: JobEvent): void {
    this.events.emit(e.id, e);
  }

  async #enqueue(job: JobRow): Promise<void> {
    const data: QueuedData = { id: job.id, request: job.request, createdAt: job.createdAt };
    // jobId = video id: adding a job that is already there does nothing.
    await this.#queue.add("generate", data, { jobId: job.id, attempts: 1 });
  }

  #onActive(id: string): void {
    if (this.store.closed) return;
    this.#live.set(id, { step: 0, total: this.store.getAnyJob(id)?.totalSteps ?? 0, progress: 0, etaMs: 0 });
    if (this.store.markStarted(id)) this.#emit({ type: "status", id, status: "in_progress" });
    // A run after a worker died: count it, and start its progress over.
    else
      this.store.db
        .prepare(
          `UPDATE jobs SET attempts = attempts + 1, progress = 0, step = 0 WHERE id = ? AND status = 'in_progress'`,
        )
        .run(id);
  }

  #onProgress(id: string, data: unknown): void {
    if (this.store.closed || typeof data !== "object" || data === null) return;
    const p = data as Partial<LiveProgress>;
    if (typeof p.step !== "number" || typeof p.total !== "number") return;
    const live: LiveProgress = {
      step: p.step,
      total: p.total,
      progress: Number(p.progress) || 0,
      etaMs: Number(p.etaMs) || 0,
    };
    this.#live.set(id, live);
    const now = Date.now();
    if (now - (this.#lastWrite.get(id) ?? 0) >= this.opts.progressWriteIntervalMs || p.step === p.total) {
      this.#lastWrite.set(id, now);
      this.store.setProgress(id, live.progress, live.step, live.total);
    }
    this.#emit({ type: "progress", id, live: { ...live } });
    const preview = (data as { preview?: unknown }).preview;
    if (isPreview(preview)) {
      this.#previews.set(id, preview);
      this.#emit({ type: "preview", id, preview });
    }
  }

  /** Applies a run's outcome to SQLite (at most once, by the guarded transitions), then drops the queue job. */
  async #finish(id: string, o: RunOutcome): Promise<void> {
    if (this.store.closed || !isJobId(id)) return;
    this.#live.delete(id);
    this.#lastWrite.delete(id);
    this.#previews.delete(id);
    const job = this.store.getAnyJob(id);
    if (!job) {
      // Deleted meanwhile: whatever the worker wrote belongs to nobody.
      await this.data.removeJob(id).catch(() => {});
    } else if (o.outcome === "completed") {
      if (job.status === "queued") this.store.markStarted(id); // its "active" event was missed
      if (this.store.markCompleted(id, o.result, o.timings, o.prepared)) {
        const runMs = o.timings.run_ms ?? 0;
        this.metrics.generation(runMs / 1000);
        this.metrics.finished("completed");
        this.#avgRunMs = this.#avgRunMs === null ? runMs : 0.7 * this.#avgRunMs + 0.3 * runMs;
        this.#emit({ type: "status", id, status: "completed" });
      } else if (job.status !== "completed") {
        // Cancelled while the last step or the publish ran: nobody wants this output.
        await rm(this.data.outDir(id), { recursive: true, force: true }).catch(() => {});
      }
    } else if (o.outcome === "failed") {
      if (this.store.markFailed(id, o.error, o.timings)) {
        this.#emit({ type: "status", id, status: "failed" });
        this.metrics.finished("failed");
      }
      // A run that gave up (or a worker that died) may have left its staging folder.
      await this.data.removeStaging(id).catch(() => {});
    }
    // outcome cancelled: cancel() already marked it. Either way the queue job is done with.
    if (!this.store.closed) {
      const after = this.store.getAnyJob(id);
      if (!after || after.status === "completed" || after.status === "failed" || after.status === "cancelled")
        await this.#queue.remove(id).catch(() => {});
    }
  }

  /** Makes the queue agree with SQLite: catches events missed while the API was down or Redis unreachable. */
  async #sweep(): Promise<void> {
    if (this.#stopped || this.store.closed) return;
    const rows = (
      this.store.db
        .prepare(`SELECT id FROM jobs WHERE status IN ('queued', 'in_progress') ORDER BY seq`)
        .all() as {
        id: string;
      }[]
    ).map((r) => r.id);
    for (const id of rows) {
      if (this.#stopped || this.store.closed) return;
      const job = await this.#queue.getJob(id);
      if (!job) {
        const row = this.store.getAnyJob(id);
        if (row && (row.status === "queued" || row.status === "in_progress")) await this.#enqueue(row);
        continue;
      }
      const state = await job.getState();
      if (state === "active") {
        // Its "active" event came while the API was down.
        if (this.store.markStarted(id)) this.#emit({ type: "status", id, status: "in_progress" });
      } else if (state === "completed") await this.#finish(id, parseOutcome(job.returnvalue));
      else if (state === "failed")
        await this.#finish(id, {
          outcome: "failed",
          error: { code: "generation_failed", message: job.failedReason ?? "failed" },
        });
    }
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms; is Redis reachable?`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function parseOutcome(v: unknown): RunOutcome {
  let o = v;
  if (typeof v === "string") {
    try {
      o = JSON.parse(v);
    } catch {
      o = null;
    }
  }
  if (o && typeof o === "object" && "outcome" in o) return o as RunOutcome;
  return { outcome: "failed", error: { code: "internal_error", message: "a worker returned no outcome" } };
}

/** A worker's preview, as PreviewEncoder makes it (anything else from Redis is dropped). */
function isPreview(v: unknown): v is LivePreview {
  const p = v as Partial<LivePreview> | null;
  return (
    typeof p === "object" &&
    p !== null &&
    typeof p.image === "string" &&
    p.image.startsWith("data:image/png;base64,") &&
    typeof p.step === "number" &&
    typeof p.width === "number" &&
    typeof p.height === "number" &&
    typeof p.frames === "number"
  );
}

function guarded(f: () => void): void {
  try {
    f();
  } catch (e) {
    logError(e);
  }
}

function logError(e: unknown): void {
  console.error("tessera-server (redis):", e instanceof Error ? e.message : e);
}

// --- the worker side ---

export interface QueueWorkerOptions {
  /** redis:// or rediss:// URL of the queue. */
  url: string;
  /** The data folder shared with the API (same path contents on every host). */
  dataDir: DataDir;
  generator: VideoGenerator;
  /**
   * How long a worker's claim on a job lasts without renewal (default 60 s). It is
   * renewed every half of it from the event loop, so it must exceed the longest
   * time a step can block the event loop; a killed worker's job is taken again
   * after about lockDurationMs + stalledIntervalMs.
   */
  lockDurationMs?: number;
  /** How often workers look for jobs whose lock expired (default 30 s). */
  stalledIntervalMs?: number;
  /** Runs a dying worker may interrupt before the job fails (default 2, so at most 3 runs). */
  maxStalledCount?: number;
  /** Milliseconds between progress reports and between cancellation checks (default 250). */
  reportIntervalMs?: number;
  log?: (s: string) => void;
}

export interface QueueWorker {
  /**
   * Stops taking jobs; lets the running one finish for up to graceMs, then aborts it
   * and puts it back on the queue for another worker.
   */
  close(graceMs: number): Promise<void>;
}

class Drain extends Error {
  constructor() {
    super("worker is shutting down");
    this.name = "AbortError";
  }
}
class Cancelled extends Error {
  constructor() {
    super("cancelled by DELETE");
    this.name = "AbortError";
  }
}

export async function startQueueWorker(o: QueueWorkerOptions): Promise<QueueWorker> {
  const lockDuration = o.lockDurationMs ?? 60_000;
  const reportMs = o.reportIntervalMs ?? 250;
  const log = o.log ?? (() => {});
  const gen = o.generator;
  const conns: Redis[] = [];
  const redis = connect(o.url, conns);
  let current: AbortController | null = null;

  const processor = async (job: Job<QueuedData>, token?: string): Promise<RunOutcome> => {
    const { id, request: r, createdAt } = job.data;
    if (!isJobId(id)) return { outcome: "failed", error: { code: "internal_error", message: "bad job id" } };
    if (await redis.exists(cancelKey(id))) return { outcome: "cancelled" };
    const started = Date.now();
    if (r.model !== gen.info.model)
      return {
        outcome: "failed",
        error: {
          code: "model_unavailable",
          message: `this job is for model '${r.model}' but the worker runs '${gen.info.model}'`,
        },
      };
    log(`tessera worker: running ${id} (attempt ${job.attemptsStarted ?? 1})`);
    // A run after a stall starts from scratch: what an earlier run left is dropped.
    let staging: string;
    try {
      await o.dataDir.removeStaging(id);
      staging = o.dataDir.stagingDir(id);
      await mkdir(staging, { recursive: true });
    } catch (e) {
      return { outcome: "failed", error: runError(e, "storage_error") };
    }
    const controller = new AbortController();
    current = controller;
    const req = requestFromStored(r, (name) => o.dataDir.inputFile(id, name));
    let lastReport = 0;
    let checking = false;
    const previews = new PreviewEncoder();
    const onProgress = (p: GenerationProgress) => {
      if (controller.signal.aborted) return;
      const now = Date.now();
      if (now - lastReport < reportMs && p.step !== p.total) return;
      lastReport = now;
      const live: LiveProgress = {
        step: p.step,
        total: p.total,
        etaMs: Math.max(0, Math.round(p.eta)),
        progress: p.total > 0 ? Math.min(DENOISE_SHARE, Math.floor((DENOISE_SHARE * p.step) / p.total)) : 0,
      };
      const preview = previews.take(p);
      job.updateProgress(preview ? { ...live, preview } : live).catch(() => {});
      if (!checking) {
        checking = true;
        redis
          .exists(cancelKey(id))
          .then((n) => {
            if (n) controller.abort(new Cancelled());
          })
          .catch(() => {})
          .finally(() => {
            checking = false;
          });
      }
    };
    try {
      let out: GeneratedVideo;
      try {
        out = await gen.generate(req, { outputDir: staging, onProgress, signal: controller.signal });
        if (controller.signal.aborted) throw controller.signal.reason;
      } catch (e) {
        await rm(staging, { recursive: true, force: true }).catch(() => {});
        const reason = controller.signal.reason;
        if (isAbortError(e, controller.signal) && reason instanceof Cancelled) {
          log(`tessera worker: ${id} cancelled`);
          return { outcome: "cancelled" };
        }
        if (isAbortError(e, controller.signal) && reason instanceof Drain) {
          log(`tessera worker: ${id} put back on the queue`);
          await job.moveToWait(token);
          throw new WaitingError();
        }
        return {
          outcome: "failed",
          error: runError(e, "generation_failed"),
          timings: { queued_ms: started - createdAt, run_ms: Date.now() - started },
        };
      }
      const tWrite = Date.now();
      let result: StoredResult;
      try {
        result = await checkOutputs(staging, out);
      } catch (e) {
        await rm(staging, { recursive: true, force: true }).catch(() => {});
        return {
          outcome: "failed",
          error: runError(e, "output_invalid"),
        };
      }
      // Publish only while this worker still owns the job (see the header).
      const held = await job.extendLock(token as string, lockDuration).catch(() => 0);
      if (Number(held) !== 1) {
        await rm(staging, { recursive: true, force: true }).catch(() => {});
        throw new Error(`lost the lock on ${id} before publishing: another worker runs it now`);
      }
      if (await redis.exists(cancelKey(id))) {
        await rm(staging, { recursive: true, force: true }).catch(() => {});
        return { outcome: "cancelled" };
      }
      try {
        const final = o.dataDir.outDir(id);
        await rm(final, { recursive: true, force: true });
        await rename(staging, final);
      } catch (e) {
        await rm(staging, { recursive: true, force: true }).catch(() => {});
        return { outcome: "failed", error: runError(e, "storage_error") };
      }
      log(`tessera worker: ${id} completed`);
      return {
        outcome: "completed",
        result,
        timings: {
          queued_ms: started - createdAt,
          run_ms: Date.now() - started,
          ...prefixed(out.timings),
          publish_ms: Date.now() - tWrite,
        },
        ...(out.prepared ? { prepared: out.prepared } : {}),
      };
    } finally {
      current = null;
    }
  };

  const worker = new Worker<QueuedData, RunOutcome>(QUEUE_NAME, processor, {
    connection: connect(o.url, conns),
    // One job at a time: a generation already uses the whole device.
    concurrency: 1,
    lockDuration,
    stalledInterval: o.stalledIntervalMs ?? 30_000,
    maxStalledCount: o.maxStalledCount ?? 2,
    // The API removes jobs once it has recorded them; these bound what is left if it never does.
    removeOnComplete: { age: 7 * 24 * 3600 },
    removeOnFail: { age: 7 * 24 * 3600 },
  });
  worker.on("error", (e) => log(`tessera worker: ${e.message}`));
  try {
    await withTimeout(worker.waitUntilReady(), 10_000, "connecting to the queue");
  } catch (e) {
    await worker.close(true).catch(() => {});
    for (const c of conns) c.disconnect();
    throw e;
  }

  let closing: Promise<void> | null = null;
  return {
    close(graceMs: number) {
      closing ??= (async () => {
        const done = worker.close();
        let timer: NodeJS.Timeout | undefined;
        const timedOut = await Promise.race([
          done.then(() => false),
          new Promise<boolean>((res) => {
            timer = setTimeout(() => res(true), graceMs);
          }),
        ]);
        clearTimeout(timer);
        if (timedOut) current?.abort(new Drain());
        await done;
        for (const c of conns) c.disconnect();
      })();
      return closing;
    },
  };
}

// The worker: one loop that takes queued jobs oldest first and runs them one at a
// time, because a generation already uses the whole device (every CPU core, or
// the GPU's memory). Everything a job does to its state goes through guarded
// transitions in the store, so a job completes at most once whatever races
// between DELETE, a drain and the run itself.
import { EventEmitter } from "node:events";
import { mkdir, rename, rm } from "node:fs/promises";
import type { GeneratedVideo, GenerationProgress, VideoGenerator } from "./generator.js";
import { isAbortError } from "./generator.js";
import type { Metrics } from "./metrics.js";
import { checkOutputs, prefixed } from "./outputs.js";
import type { DataDir } from "./paths.js";
import { PreviewEncoder } from "./preview.js";
import { runError } from "./storage.js";
import type { JobRow, JobStatus, Store, StoredResult } from "./store.js";
import { requestFromStored } from "./validation.js";

export interface LiveProgress {
  step: number;
  total: number;
  progress: number;
  etaMs: number;
}

/** A small picture of the current denoised estimate (see preview.ts). */
export interface LivePreview {
  step: number;
  /** data:image/png;base64,… : the clip's frames side by side. */
  image: string;
  width: number;
  height: number;
  frames: number;
}

export type JobEvent =
  | { type: "progress"; id: string; live: LiveProgress }
  | { type: "preview"; id: string; preview: LivePreview }
  | { type: "status"; id: string; status: JobStatus };

/** Why a run was aborted: the client cancelled it, or the server is shutting down and will run it again. */
class StopReason extends Error {
  constructor(readonly kind: "cancel" | "drain") {
    super(kind === "cancel" ? "cancelled by DELETE" : "server is shutting down");
    this.name = "AbortError";
  }
}

export interface RunnerOptions {
  /** A job interrupted this many times (server killed mid-run; a drain does not count) fails instead of running again. */
  maxAttempts: number;
  /** Minimum milliseconds between progress writes to SQLite (events still go out every step). */
  progressWriteIntervalMs: number;
}

// While denoising, progress tops out below 100: the video still has to be decoded
// and written, and 100 should mean "the file is there".
const DENOISE_SHARE = 99;

export class JobRunner {
  readonly events = new EventEmitter();
  #current: {
    id: string;
    controller: AbortController;
    live: LiveProgress;
    done: Promise<void>;
    startedAt: number;
    preview: LivePreview | null;
  } | null = null;
  #wake: (() => void) | null = null;
  #stopping = false;
  #loop: Promise<void> | null = null;
  /** Moving average of whole-run milliseconds, for Retry-After. */
  #avgRunMs: number | null = null;
  /**
   * Outcomes that could not be written (the database's disk was full), by job id,
   * retried before the next job is taken: a job always ends.
   */
  readonly #unwritten = new Map<string, () => void>();
  #storageTrouble = 0;

  constructor(
    private readonly store: Store,
    private readonly data: DataDir,
    private readonly generator: VideoGenerator,
    private readonly metrics: Metrics,
    private readonly opts: RunnerOptions,
  ) {
    // Every SSE client is a listener; there is no fixed bound to warn about.
    this.events.setMaxListeners(0);
  }

  get busy(): boolean {
    return this.#current !== null;
  }

  get currentId(): string | null {
    return this.#current?.id ?? null;
  }

  /** The running job's progress, fresher than the throttled copy in SQLite. */
  live(id: string): LiveProgress | null {
    return this.#current?.id === id ? this.#current.live : null;
  }

  /** The running job's latest preview, for a client that starts following it mid-run. */
  lastPreview(id: string): LivePreview | null {
    return this.#current?.id === id ? this.#current.preview : null;
  }

  /**
   * Seconds until a queue slot is likely free (for Retry-After): a slot frees when the
   * running job ends and the next one starts, so this is the running job's time left.
   */
  retryAfterSeconds(): number {
    const c = this.#current;
    const avg = this.#avgRunMs ?? 10_000;
    const ms = !c ? 1000 : c.live.etaMs > 0 ? c.live.etaMs : Math.max(1000, avg - (Date.now() - c.startedAt));
    return Math.max(1, Math.min(3600, Math.ceil(ms / 1000)));
  }

  start(): void {
    if (this.#loop) return;
    this.#loop = this.#run();
  }

  /** Tells an idle loop to look at the queue again (after a submission). */
  wake(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }

  /**
   * DELETE of a queued or running job. A running job is marked cancelled at once
   * (what clients see) and its generator is aborted; it stops at the next step.
   */
  cancel(id: string): boolean {
    if (!this.store.markCancelled(id)) return false;
    this.#emit({ type: "status", id, status: "cancelled" });
    this.metrics.finished("cancelled");
    if (this.#current?.id === id) this.#current.controller.abort(new StopReason("cancel"));
    return true;
  }

  /** Resolves once a run of `id` (if one is going) has stopped touching its files. */
  async settled(id: string): Promise<void> {
    const c = this.#current;
    if (c && c.id === id) await c.done;
  }

  /**
   * Stops taking jobs; lets the running one finish for up to `graceMs`, then aborts
   * it and puts it back in the queue, so the next start runs it again (a drain is not
   * a crash: it does not count towards maxAttempts).
   */
  async drain(graceMs: number): Promise<void> {
    this.#stopping = true;
    this.wake();
    const c = this.#current;
    if (c) {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        c.done.then(() => false),
        new Promise<boolean>((r) => {
          timer = setTimeout(() => r(true), graceMs);
        }),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        c.controller.abort(new StopReason("drain"));
        await c.done;
      }
    }
    await this.#loop;
    try {
      this.#writeUnwritten();
    } catch (e) {
      // Left in_progress: the next start requeues it (as an interruption, the one case a drain costs one).
      console.error(
        `tessera-server: could not record the last outcomes before stopping: ${(e as Error).message}`,
      );
    }
  }

  #emit(e: JobEvent): void {
    this.events.emit(e.id, e);
  }

  async #run(): Promise<void> {
    while (!this.#stopping) {
      let job: JobRow | null;
      let started = false;
      try {
        this.#writeUnwritten();
        job = this.store.nextQueued();
        if (job && job.interruptions >= this.opts.maxAttempts) {
          // A job that keeps taking the server down with it must not do so forever.
          await this.data.removeStaging(job.id).catch(() => {});
          this.#fail(job.id, {
            code: "interrupted",
            message: `the server stopped during this job ${job.interruptions} times; giving up`,
          });
          continue;
        }
        if (job) started = this.store.markStarted(job.id);
        this.#storageTrouble = 0;
      } catch (e) {
        // The database cannot be read or written (its disk is full, say): the job stays
        // queued, and the loop waits and tries again rather than ending the process.
        await this.#backOff(e);
        continue;
      }
      if (!job) {
        await new Promise<void>((r) => {
          this.#wake = r;
        });
        continue;
      }
      if (!started) continue; // a DELETE got there first
      this.#emit({ type: "status", id: job.id, status: "in_progress" });
      const controller = new AbortController();
      const live: LiveProgress = { step: 0, total: job.request.steps, progress: 0, etaMs: 0 };
      let finish!: () => void;
      const done = new Promise<void>((r) => {
        finish = r;
      });
      this.#current = { id: job.id, controller, live, done, startedAt: Date.now(), preview: null };
      try {
        await this.#runOne(job, controller, live);
      } catch (e) {
        // #runOne turns a run's failures into outcomes; whatever escaped it must still end the job.
        console.error(`tessera-server: internal error running job ${job.id}:`, e);
        this.#fail(job.id, runError(e, "internal_error"));
      } finally {
        this.#current = null;
        finish();
      }
    }
  }

  async #backOff(e: unknown): Promise<void> {
    this.#storageTrouble++;
    const ms = Math.min(4000, 250 * 2 ** Math.min(this.#storageTrouble, 4));
    if (this.#storageTrouble === 1 || this.#storageTrouble % 20 === 0)
      console.error(
        `tessera-server: the job database cannot be used (${e instanceof Error ? e.message : String(e)}); retrying every ${ms / 1000} s`,
      );
    await new Promise<void>((r) => {
      const t = setTimeout(r, ms);
      this.#wake = () => {
        clearTimeout(t);
        r();
      };
    });
  }

  /** Applies `write` (a guarded transition) now, or, if the database refuses, before the next job. */
  #settle(id: string, write: () => void): void {
    this.#unwritten.delete(id);
    try {
      write();
    } catch (e) {
      console.error(
        `tessera-server: could not record the end of job ${id} (${e instanceof Error ? e.message : String(e)}); will retry`,
      );
      this.#unwritten.set(id, write);
    }
  }

  #writeUnwritten(): void {
    for (const [id, write] of [...this.#unwritten]) {
      write();
      this.#unwritten.delete(id);
    }
  }

  #fail(id: string, error: { code: string; message: string }, timings?: Record<string, number>): void {
    this.#settle(id, () => {
      if (this.store.markFailed(id, error, timings)) {
        this.#emit({ type: "status", id, status: "failed" });
        this.metrics.finished("failed");
      }
    });
  }

  async #runOne(job: JobRow, controller: AbortController, live: LiveProgress): Promise<void> {
    const id = job.id;
    const started = Date.now();
    const queuedMs = started - job.createdAt;
    this.metrics.queueWait(queuedMs / 1000);
    const r = job.request;
    if (r.model !== this.generator.info.model) {
      // Queued for a model this server (restarted with another --model) does not have.
      await this.data.removeStaging(id).catch(() => {});
      this.#fail(id, {
        code: "model_unavailable",
        message: `this job is for model '${r.model}' but the server now runs '${this.generator.info.model}'`,
      });
      return;
    }
    let staging: string;
    try {
      await this.data.removeStaging(id);
      staging = this.data.stagingDir(id);
      await mkdir(staging, { recursive: true });
    } catch (e) {
      this.#fail(id, runError(e, "storage_error"), { queued_ms: queuedMs, run_ms: Date.now() - started });
      return;
    }
    const req = requestFromStored(r, (name) => this.data.inputFile(id, name));
    let lastWrite = 0;
    let lastElapsed = 0;
    const previews = new PreviewEncoder();
    const onProgress = (p: GenerationProgress) => {
      if (controller.signal.aborted) return;
      const stepMs = p.elapsed - lastElapsed;
      lastElapsed = p.elapsed;
      if (stepMs >= 0) this.metrics.step(stepMs / 1000);
      live.step = p.step;
      live.total = p.total;
      live.etaMs = Math.max(0, Math.round(p.eta));
      live.progress =
        p.total > 0 ? Math.min(DENOISE_SHARE, Math.floor((DENOISE_SHARE * p.step) / p.total)) : 0;
      const now = Date.now();
      if (now - lastWrite >= this.opts.progressWriteIntervalMs || p.step === p.total) {
        lastWrite = now;
        try {
          this.store.setProgress(id, live.progress, live.step, live.total);
        } catch {
          // Progress is advisory: a database that cannot take it (disk full) must not fail the run.
        }
      }
      this.#emit({ type: "progress", id, live: { ...live } });
      const preview = previews.take(p);
      if (preview) {
        if (this.#current?.id === id) this.#current.preview = preview;
        this.#emit({ type: "preview", id, preview });
      }
    };

    let out: GeneratedVideo;
    try {
      out = await this.generator.generate(req, { outputDir: staging, onProgress, signal: controller.signal });
      if (controller.signal.aborted) throw controller.signal.reason;
    } catch (e) {
      await rm(staging, { recursive: true, force: true }).catch(() => {});
      const reason = controller.signal.reason;
      if (isAbortError(e, controller.signal) && reason instanceof StopReason) {
        if (reason.kind === "drain")
          this.#settle(id, () => {
            if (this.store.requeueDrained(id)) this.#emit({ type: "status", id, status: "queued" });
          });
        // kind "cancel": cancel() already marked it and told the listeners.
        return;
      }
      this.#fail(id, runError(e, "generation_failed"), { queued_ms: queuedMs, run_ms: Date.now() - started });
      return;
    }

    let result: StoredResult;
    const tWrite = Date.now();
    try {
      result = await this.#publish(id, staging, out);
    } catch (e) {
      await rm(staging, { recursive: true, force: true }).catch(() => {});
      this.#fail(id, runError(e, "output_invalid"));
      return;
    }
    const runMs = Date.now() - started;
    const timings: Record<string, number> = {
      queued_ms: queuedMs,
      run_ms: runMs,
      ...prefixed(out.timings),
      publish_ms: Date.now() - tWrite,
    };
    this.#settle(id, () => {
      if (this.store.markCompleted(id, result, timings, out.prepared)) {
        this.metrics.generation(runMs / 1000);
        this.metrics.finished("completed");
        this.#avgRunMs = this.#avgRunMs === null ? runMs : 0.7 * this.#avgRunMs + 0.3 * runMs;
        this.#emit({ type: "status", id, status: "completed" });
      } else {
        // Cancelled (or deleted) while the last step or the file write ran: nobody wants this output.
        void rm(this.data.outDir(id), { recursive: true, force: true }).catch(() => {});
      }
    });
  }

  // Checks what the generator says it wrote, then moves the staging folder into place in one rename.
  async #publish(id: string, staging: string, out: GeneratedVideo): Promise<StoredResult> {
    const result = await checkOutputs(staging, out);
    const final = this.data.outDir(id);
    await rm(final, { recursive: true, force: true });
    await rename(staging, final);
    return result;
  }
}

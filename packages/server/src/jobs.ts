// The worker: one loop that takes queued jobs oldest first and runs them one at a
// time, because a generation already uses the whole device (every CPU core, or
// the GPU's memory). Everything a job does to its state goes through guarded
// transitions in the store, so a job completes at most once whatever races
// between DELETE, a drain and the run itself.
import { EventEmitter } from "node:events";
import { mkdir, rename, rm } from "node:fs/promises";
import type { GeneratedVideo, VideoGenerator } from "./generator.js";
import { isAbortError } from "./generator.js";
import type { Metrics } from "./metrics.js";
import { checkOutputs, prefixed } from "./outputs.js";
import type { DataDir } from "./paths.js";
import type { JobRow, JobStatus, Store, StoredResult } from "./store.js";
import { requestFromStored } from "./validation.js";

export interface LiveProgress {
  step: number;
  total: number;
  progress: number;
  etaMs: number;
}

export type JobEvent =
  | { type: "progress"; id: string; live: LiveProgress }
  | { type: "status"; id: string; status: JobStatus };

/** Why a run was aborted: the client cancelled it, or the server is shutting down and will run it again. */
class StopReason extends Error {
  constructor(readonly kind: "cancel" | "drain") {
    super(kind === "cancel" ? "cancelled by DELETE" : "server is shutting down");
    this.name = "AbortError";
  }
}

export interface RunnerOptions {
  /** A job interrupted this many times (server killed mid-run) fails instead of running again. */
  maxAttempts: number;
  /** Minimum milliseconds between progress writes to SQLite (events still go out every step). */
  progressWriteIntervalMs: number;
}

// While denoising, progress tops out below 100: the video still has to be decoded
// and written, and 100 should mean "the file is there".
const DENOISE_SHARE = 99;

export class JobRunner {
  readonly events = new EventEmitter();
  #current: { id: string; controller: AbortController; live: LiveProgress; done: Promise<void> } | null =
    null;
  #wake: (() => void) | null = null;
  #stopping = false;
  #loop: Promise<void> | null = null;
  /** Moving average of whole-run milliseconds, for Retry-After. */
  #avgRunMs: number | null = null;

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

  /** Seconds until a slot is likely free when `queued` jobs wait (for Retry-After). */
  estimateWaitSeconds(queued: number): number {
    const per = this.#avgRunMs ?? 10_000;
    return Math.max(1, Math.min(3600, Math.ceil((per * Math.max(1, queued)) / 1000)));
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
   * it and puts it back in the queue, so the next start runs it again.
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
  }

  #emit(e: JobEvent): void {
    this.events.emit(e.id, e);
  }

  async #run(): Promise<void> {
    while (!this.#stopping) {
      const job = this.store.nextQueued();
      if (!job) {
        await new Promise<void>((r) => {
          this.#wake = r;
        });
        continue;
      }
      if (job.attempts >= this.opts.maxAttempts) {
        // A job that keeps taking the server down with it must not do so forever.
        if (
          this.store.markFailed(job.id, {
            code: "interrupted",
            message: `the server stopped during this job ${job.attempts} times; giving up`,
          })
        ) {
          this.#emit({ type: "status", id: job.id, status: "failed" });
          this.metrics.finished("failed");
        }
        continue;
      }
      if (!this.store.markStarted(job.id)) continue;
      this.#emit({ type: "status", id: job.id, status: "in_progress" });
      const controller = new AbortController();
      const live: LiveProgress = { step: 0, total: job.request.steps, progress: 0, etaMs: 0 };
      let finish!: () => void;
      const done = new Promise<void>((r) => {
        finish = r;
      });
      this.#current = { id: job.id, controller, live, done };
      try {
        await this.#runOne(job, controller, live);
      } catch (e) {
        // #runOne handles its own failures; reaching here is a bug, and the loop must survive it.
        console.error(`tessera-server: internal error running job ${job.id}:`, e);
      } finally {
        this.#current = null;
        finish();
      }
    }
  }

  async #runOne(job: JobRow, controller: AbortController, live: LiveProgress): Promise<void> {
    const id = job.id;
    const started = Date.now();
    const queuedMs = started - job.createdAt;
    this.metrics.queueWait(queuedMs / 1000);
    await this.data.removeStaging(id);
    const staging = this.data.stagingDir(id);
    await mkdir(staging, { recursive: true });
    const r = job.request;
    if (r.model !== this.generator.info.model) {
      // Queued for a model this server (restarted with another --model) does not have.
      await rm(staging, { recursive: true, force: true });
      if (
        this.store.markFailed(id, {
          code: "model_unavailable",
          message: `this job is for model '${r.model}' but the server now runs '${this.generator.info.model}'`,
        })
      ) {
        this.#emit({ type: "status", id, status: "failed" });
        this.metrics.finished("failed");
      }
      return;
    }
    const req = requestFromStored(r, (name) => this.data.inputFile(id, name));
    let lastWrite = 0;
    let lastElapsed = 0;
    const onProgress = (p: { step: number; total: number; elapsed: number; eta: number }) => {
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
        this.store.setProgress(id, live.progress, live.step, live.total);
      }
      this.#emit({ type: "progress", id, live: { ...live } });
    };

    let out: GeneratedVideo;
    try {
      out = await this.generator.generate(req, { outputDir: staging, onProgress, signal: controller.signal });
      if (controller.signal.aborted) throw controller.signal.reason;
    } catch (e) {
      await rm(staging, { recursive: true, force: true }).catch(() => {});
      const reason = controller.signal.reason;
      if (isAbortError(e, controller.signal) && reason instanceof StopReason) {
        if (reason.kind === "drain" && this.store.requeue(id))
          this.#emit({ type: "status", id, status: "queued" });
        // kind "cancel": cancel() already marked it and told the listeners.
        return;
      }
      const message = e instanceof Error ? e.message : String(e);
      if (
        this.store.markFailed(
          id,
          { code: "generation_failed", message },
          { queued_ms: queuedMs, run_ms: Date.now() - started },
        )
      ) {
        this.#emit({ type: "status", id, status: "failed" });
        this.metrics.finished("failed");
      }
      return;
    }

    try {
      const tWrite = Date.now();
      const result = await this.#publish(id, staging, out);
      const runMs = Date.now() - started;
      const timings: Record<string, number> = {
        queued_ms: queuedMs,
        run_ms: runMs,
        ...prefixed(out.timings),
        publish_ms: Date.now() - tWrite,
      };
      if (this.store.markCompleted(id, result, timings, out.prepared)) {
        this.metrics.generation(runMs / 1000);
        this.metrics.finished("completed");
        this.#avgRunMs = this.#avgRunMs === null ? runMs : 0.7 * this.#avgRunMs + 0.3 * runMs;
        this.#emit({ type: "status", id, status: "completed" });
      } else {
        // Cancelled (or deleted) while the last step or the file write ran: nobody wants this output.
        await rm(this.data.outDir(id), { recursive: true, force: true }).catch(() => {});
      }
    } catch (e) {
      await rm(staging, { recursive: true, force: true }).catch(() => {});
      const message = e instanceof Error ? e.message : String(e);
      if (this.store.markFailed(id, { code: "output_invalid", message })) {
        this.#emit({ type: "status", id, status: "failed" });
        this.metrics.finished("failed");
      }
    }
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

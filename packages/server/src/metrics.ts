// Prometheus metrics on a registry of the server's own (not prom-client's global
// one), so several servers in one process — as in the tests — do not collide.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { JOB_STATUSES, type Store } from "./store.js";

export class Metrics {
  readonly registry = new Registry();
  readonly #step: Histogram;
  readonly #generation: Histogram;
  readonly #queueWait: Histogram;
  readonly #finished: Counter;
  readonly #rejected: Counter;

  constructor(store: () => Store | null, worker: () => { busy: boolean }) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: "tessera_" });
    new Gauge({
      name: "tessera_queue_depth",
      help: "Jobs waiting to run.",
      registers,
      collect() {
        const s = store();
        if (s && !s.closed) this.set(s.queuedCount());
      },
    });
    new Gauge({
      name: "tessera_jobs",
      help: "Jobs in the data folder by state.",
      labelNames: ["state"],
      registers,
      collect() {
        const s = store();
        if (!s || s.closed) return;
        const c = s.counts();
        for (const st of JOB_STATUSES) this.set({ state: st }, c[st]);
      },
    });
    new Gauge({
      name: "tessera_worker_busy",
      help: "1 while a generation is running.",
      registers,
      collect() {
        this.set(worker().busy ? 1 : 0);
      },
    });
    this.#step = new Histogram({
      name: "tessera_step_seconds",
      help: "Time of one denoising step.",
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
      registers,
    });
    this.#generation = new Histogram({
      name: "tessera_generation_seconds",
      help: "Time from a job starting to its video being on disk.",
      buckets: [0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1200, 3600],
      registers,
    });
    this.#queueWait = new Histogram({
      name: "tessera_queue_wait_seconds",
      help: "Time a job waited in the queue before it started.",
      buckets: [0.01, 0.1, 1, 5, 15, 60, 300, 900, 3600],
      registers,
    });
    this.#finished = new Counter({
      name: "tessera_jobs_finished_total",
      help: "Jobs that reached a final state, by outcome.",
      labelNames: ["outcome"],
      registers,
    });
    this.#rejected = new Counter({
      name: "tessera_requests_rejected_total",
      help: "Requests refused, by reason (queue_full, rate_limited, invalid, too_big_for_memory, storage_full, draining, bad_host, cross_site).",
      labelNames: ["reason"],
      registers,
    });
  }

  step(seconds: number): void {
    this.#step.observe(seconds);
  }
  generation(seconds: number): void {
    this.#generation.observe(seconds);
  }
  queueWait(seconds: number): void {
    this.#queueWait.observe(seconds);
  }
  finished(outcome: "completed" | "failed" | "cancelled"): void {
    this.#finished.inc({ outcome });
  }
  rejected(
    reason:
      | "queue_full"
      | "rate_limited"
      | "invalid"
      | "too_big_for_memory"
      | "storage_full"
      | "draining"
      | "bad_host"
      | "cross_site",
  ): void {
    this.#rejected.inc({ reason });
  }
}

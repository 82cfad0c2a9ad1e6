// What every route module is handed: the server's parts, built once by createServer
// (app.ts), plus the helpers handlers share: the validator compiler, and the two
// lookups nearly every /v1/videos/:id handler starts with.
import type { ServerResponse } from "node:http";
import type { Ajv } from "ajv";
import type { FastifyRequest, FastifySchemaCompiler } from "fastify";
import type { VideoGenerator } from "../generator.js";
import type { JobRunner } from "../jobs.js";
import type { Metrics } from "../metrics.js";
import { type DataDir, isJobId } from "../paths.js";
import type { RedisJobRunner } from "../redis-queue.js";
import type { JobRow, Store } from "../store.js";
import type { Limits } from "../validation.js";
import { ApiError, truncate } from "./errors.js";
import { jobView } from "./video-view.js";

/** Runs the jobs: in this process, or on `tessera worker` processes through Redis. */
export type Runner = JobRunner | RedisJobRunner;

export interface ServerContext {
  readonly store: Store;
  readonly data: DataDir;
  readonly runner: Runner;
  readonly generator: VideoGenerator;
  readonly limits: Limits;
  /** Queued jobs beyond which submissions get 429. */
  readonly maxQueued: number;
  /** Bytes a generation may take (from the generator's estimate), and where that figure comes from; null: no check. */
  readonly memoryBudget: { bytes: number; from: string } | null;
  readonly metrics: Metrics;
  /** Request bodies are checked strictly; params and query strings with type coercion. */
  readonly ajv: { readonly strict: Ajv; readonly coercing: Ajv };
  readonly sseHeartbeatMs: number;
  /** Open SSE responses, which close() ends so the listener can shut. */
  readonly streams: Set<ServerResponse>;
  /** Set by close(): new jobs are refused (503) and /healthz answers 503, while the listener still answers. */
  draining: boolean;
}

/** fastify's validator compiler: bodies checked strictly, params and query strings coerced. */
export function validatorCompiler(ajv: ServerContext["ajv"]): FastifySchemaCompiler<unknown> {
  return ({ schema, httpPart }) =>
    (httpPart === "body" ? ajv.strict : ajv.coercing).compile(schema as object);
}

/** The job the request's :id names, if the caller's key owns it; else a 404 naming the id. */
export function findJob(ctx: ServerContext, req: FastifyRequest<{ Params: { id: string } }>): JobRow {
  const id = req.params.id;
  // Anything that is not one of our UUIDs (../../etc/passwd included) is simply not a video.
  const job = isJobId(id) ? ctx.store.getJob(id, req.keyId) : null;
  if (!job) throw new ApiError(404, "not_found", `no video '${truncate(id, 64)}'`, "id");
  return job;
}

/** The API's view of a job, with the runner's live progress and its place in the queue. */
export function viewJob(ctx: ServerContext, job: JobRow) {
  return jobView(
    job,
    ctx.runner.live(job.id),
    job.status === "queued" ? ctx.store.queuePosition(job.seq) : null,
  );
}

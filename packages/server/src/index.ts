// @tessera/server: the HTTP video API (fastify) over a durable SQLite job queue.
export { createServer, type ServerOptions, type TesseraServer } from "./app.js";
export { DataFolderLockedError, DataLock } from "./data-lock.js";
export {
  type GenerateContext,
  type GeneratedVideo,
  type GenerationProgress,
  type GenerationRequest,
  type GeneratorInfo,
  type InputToCheck,
  isAbortError,
  type PreviewFrames,
  RequestFieldError,
  type VideoGenerator,
} from "./generator.js";
export { jobView } from "./http/video-view.js";
export { DataDir } from "./paths.js";
export { loadPipelineGenerator, type PipelineGeneratorOptions } from "./pipeline-generator.js";
export type { RateLimitOptions } from "./ratelimit.js";
export {
  type QueueWorker,
  type QueueWorkerOptions,
  queueUrlProblem,
  startQueueWorker,
} from "./redis-queue.js";
export { type ApiKeyInfo, type JobStatus, Store } from "./store.js";
export { DEFAULT_LIMITS, type Limits } from "./validation.js";

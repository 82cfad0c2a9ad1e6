// The composition root of the video API: builds the server's parts (store, runner,
// metrics) into one ServerContext, wires fastify and the route modules onto it, and
// owns start and the draining close. Each resource's routes live in routes/; the
// shared request plumbing (errors, keys, job lookup) in http/.
import { mkdir } from "node:fs/promises";
import type { ServerResponse } from "node:http";
import multipart from "@fastify/multipart";
import Fastify, { type FastifyInstance } from "fastify";
import { DataLock } from "./data-lock.js";
import type { VideoGenerator } from "./generator.js";
import { installAuth } from "./http/auth.js";
import { type Runner, type ServerContext, validatorCompiler } from "./http/context.js";
import { installErrorHandlers } from "./http/errors.js";
import { installOriginChecks, OriginPolicy } from "./http/origin.js";
import { JobRunner } from "./jobs.js";
import { defaultMemoryBudget } from "./memory-budget.js";
import { Metrics } from "./metrics.js";
import { DataDir } from "./paths.js";
import type { RateLimitOptions } from "./ratelimit.js";
import { registerContentRoutes } from "./routes/content.js";
import { registerEventRoutes } from "./routes/events.js";
import { registerLoraRoutes } from "./routes/loras.js";
import { registerOpenApi, registerOperationRoutes } from "./routes/operations.js";
import { registerVideoRoutes } from "./routes/videos.js";
import { Store } from "./store.js";
import { DEFAULT_LIMITS, type Limits, makeAjv } from "./validation.js";
import { registerWebPage } from "./web/index.js";

export interface ServerOptions {
  /** Folder for the database, inputs and outputs; made if missing. */
  dataDir: string;
  generator: VideoGenerator;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Queued jobs beyond which submissions get 429 (default 100). */
  maxQueued?: number;
  limits?: Partial<Limits>;
  /** Per API key (per client address in open mode); false turns it off (default 600/min, burst 120). */
  rateLimit?: RateLimitOptions | false;
  /** Runs of one job a killed server may interrupt before the job fails (default 3). */
  maxAttempts?: number;
  /** How long close() lets the running job finish before requeueing it (default 30 s). */
  drainTimeoutMs?: number;
  /** Seconds between SSE keep-alive comments (default 15). */
  sseHeartbeatSeconds?: number;
  progressWriteIntervalMs?: number;
  /** fastify's logger option (default off). */
  logger?: boolean | Record<string, unknown>;
  /**
   * redis:// URL: jobs go on this BullMQ queue for `tessera worker` processes instead of
   * running here (see redis-queue.ts); the data folder must be shared with the workers.
   */
  queue?: string;
  /** Redis mode: milliseconds between reconciling sweeps of SQLite against the queue (default 5000). */
  queueSweepIntervalMs?: number;
  /**
   * URLs the server is reached at besides its own addresses (behind a proxy, under a DNS
   * name): requests naming another Host are refused (DNS rebinding), and pages from these
   * origins may submit.
   */
  publicUrls?: string[];
  /** Serve without keys even after every key was revoked (with none ever made, the server is open anyway). */
  open?: boolean;
  /**
   * The data folder's lock, when the caller took it already (to fail before loading a
   * model); the server then owns it and releases it on close. Else createServer takes it.
   */
  dataLock?: DataLock;
  /**
   * Bytes a generation may take by the generator's estimate; larger requests get a 400.
   * Default: 90% of the GPU's memory, or on the CPU of the container's limit (cgroup),
   * else of the machine's RAM. False: no check.
   */
  memoryBudgetBytes?: number | false;
}

export interface TesseraServer {
  app: FastifyInstance;
  /** The budget requests are checked against, and where it comes from; null when off. */
  memoryBudget: { bytes: number; from: string } | null;
  store: Store;
  runner: Runner;
  data: DataDir;
  generator: VideoGenerator;
  /** Jobs found in_progress at start (left by a killed server) and queued again. */
  requeuedAtStart: number;
  /** Starts listening; resolves to the base URL. */
  listen(): Promise<string>;
  /**
   * Drains: refuses new jobs at once (503, and /healthz says "draining", so load
   * balancers see it while every request is still answered), lets the running job
   * finish for up to graceMs (default drainTimeoutMs), requeues it if it did not (not
   * counted as an interruption), then closes the listener, the database and releases
   * the data folder. Safe to call more than once.
   */
  close(o?: { graceMs?: number }): Promise<void>;
}

export async function createServer(o: ServerOptions): Promise<TesseraServer> {
  const data = new DataDir(o.dataDir);
  await mkdir(data.root, { recursive: true });
  // Before anything touches a job or tmp/: a second server on this folder stops here.
  const lock = o.dataLock ?? (await DataLock.acquire(data.root));
  let store: Store | null = null;
  try {
    await data.init();
    store = new Store(data.dbFile);
    return await startOn(o, data, store, lock);
  } catch (e) {
    store?.close();
    await lock.release();
    throw e;
  }
}

async function startOn(
  o: ServerOptions,
  data: DataDir,
  store: Store,
  lock: DataLock,
): Promise<TesseraServer> {
  // In Redis mode a job in_progress may well be running on a worker right now.
  const requeuedAtStart = o.queue ? 0 : store.requeueInterrupted();
  let runner: Runner | null = null;
  const metrics = new Metrics(
    () => store,
    () => ({ busy: runner?.busy ?? false }),
  );
  runner = await openRunner(o, store, data, metrics);
  const memoryBudget =
    o.memoryBudgetBytes === false
      ? null
      : o.memoryBudgetBytes !== undefined
        ? { bytes: o.memoryBudgetBytes, from: "as configured" }
        : defaultMemoryBudget(o.generator.info);
  const ctx: ServerContext = {
    store,
    data,
    runner,
    generator: o.generator,
    limits: { ...DEFAULT_LIMITS, ...o.limits },
    maxQueued: o.maxQueued ?? 100,
    memoryBudget,
    metrics,
    ajv: { strict: makeAjv(false), coercing: makeAjv(true) },
    sseHeartbeatMs: (o.sseHeartbeatSeconds ?? 15) * 1000,
    streams: new Set<ServerResponse>(),
    draining: false,
  };
  const app = await buildApp(ctx, o);
  runner.start();

  const drainTimeoutMs = o.drainTimeoutMs ?? 30_000;
  let closing: Promise<void> | null = null;
  return {
    app,
    memoryBudget,
    store,
    runner,
    data,
    generator: o.generator,
    requeuedAtStart,
    async listen() {
      await app.listen({ host: o.host ?? "127.0.0.1", port: o.port ?? 8080 });
      const addr = app.server.address();
      const port = typeof addr === "object" && addr ? addr.port : o.port;
      const host = o.host ?? "127.0.0.1";
      return `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
    },
    close(c = {}) {
      closing ??= (async () => {
        ctx.draining = true;
        try {
          // The listener keeps answering while the running job finishes: 503 to submissions
          // and to /healthz, everything else as usual.
          await ctx.runner.drain(c.graceMs ?? drainTimeoutMs);
          for (const s of ctx.streams) s.end();
          // Resolves once in-flight requests end; a client still sending a body nobody will
          // read (a refused upload) or a slow download gets a few seconds, then is cut off.
          const closed = app.close();
          const cutOff = setTimeout(() => app.server.closeAllConnections(), 5000);
          await closed;
          clearTimeout(cutOff);
          store.close();
        } finally {
          await lock.release();
        }
      })();
      return closing;
    },
  };
}

/** Jobs run here, or (with a queue URL) on `tessera worker` processes through Redis. */
async function openRunner(o: ServerOptions, store: Store, data: DataDir, metrics: Metrics): Promise<Runner> {
  const progressWriteIntervalMs = o.progressWriteIntervalMs ?? 250;
  if (!o.queue)
    return new JobRunner(store, data, o.generator, metrics, {
      maxAttempts: o.maxAttempts ?? 3,
      progressWriteIntervalMs,
    });
  // Loaded only here, so a server without a queue never loads BullMQ.
  const { RedisJobRunner } = await import("./redis-queue.js");
  const r = new RedisJobRunner(store, data, metrics, {
    url: o.queue,
    progressWriteIntervalMs,
    ...(o.queueSweepIntervalMs !== undefined ? { sweepIntervalMs: o.queueSweepIntervalMs } : {}),
  });
  try {
    await r.init();
  } catch (e) {
    await r.drain(0);
    store.close();
    throw e;
  }
  return r;
}

/** The fastify app with its parsers, validators, error shape, auth hook and every route, ready. */
async function buildApp(ctx: ServerContext, o: ServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: o.logger ?? false,
    // Prompts are short; uploads go through multipart, which has its own limits.
    bodyLimit: 1024 * 1024,
    // Clients and proxies add trailing slashes; /v1/videos/ is the same collection.
    routerOptions: { ignoreTrailingSlash: true },
  });
  app.setValidatorCompiler(validatorCompiler(ctx.ajv));
  // Plain JSON.stringify: response schemas are documentation, and must never drop a field.
  app.setSerializerCompiler(() => (d) => JSON.stringify(d));

  await registerOpenApi(app);
  await app.register(multipart, { limits: { fileSize: ctx.limits.maxUploadBytes } });
  // JSON and multipart only: a text/plain body would otherwise reach handlers as a string.
  app.removeContentTypeParser("text/plain");
  installErrorHandlers(app, ctx.metrics);
  installOriginChecks(
    app,
    new OriginPolicy({ host: o.host ?? "127.0.0.1", publicUrls: o.publicUrls ?? [] }),
    ctx.metrics,
  );
  installAuth(app, {
    store: ctx.store,
    metrics: ctx.metrics,
    rateLimit: o.rateLimit ?? { perMinute: 600, burst: 120 },
    ...(o.open ? { open: true } : {}),
  });

  // Registration order is the order of /openapi.json's paths.
  registerVideoRoutes(app, ctx);
  registerContentRoutes(app, ctx);
  registerEventRoutes(app, ctx);
  registerLoraRoutes(app, ctx);
  // The web page at / (HTML, CSS and a small ES module; no key needed to load it).
  registerWebPage(app);
  registerOperationRoutes(app, ctx);

  await app.ready();
  return app;
}

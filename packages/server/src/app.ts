// The video API: a fastify app over the job store and the worker loop.
import { randomInt, randomUUID } from "node:crypto";
import { mkdir, rename, rm } from "node:fs/promises";
import type { ServerResponse } from "node:http";
import multipart from "@fastify/multipart";
import swagger from "@fastify/swagger";
import type { ErrorObject } from "ajv";
import Fastify, { type FastifyError, type FastifyInstance, type FastifyRequest } from "fastify";
import { sendFile } from "./content.js";
import { RequestFieldError, type VideoGenerator } from "./generator.js";
import { type JobEvent, JobRunner, type LiveProgress } from "./jobs.js";
import { Metrics } from "./metrics.js";
import { DataDir, isJobId } from "./paths.js";
import { RateLimiter, type RateLimitOptions } from "./ratelimit.js";
import type { RedisJobRunner } from "./redis-queue.js";
import * as S from "./schemas.js";
import { type JobRow, Store, TERMINAL } from "./store.js";
import { readMultipart, type Upload } from "./upload.js";
import {
  createVideoBodySchema,
  DEFAULT_LIMITS,
  describeSchemaError,
  type Limits,
  makeAjv,
  resolveRequest,
  type VideoBody,
  validateWithGenerator,
} from "./validation.js";
import { registerWebPage } from "./web/index.js";

declare module "fastify" {
  interface FastifyRequest {
    /** The API key's id, or null in open mode. */
    keyId: string | null;
  }
  interface FastifyContextConfig {
    /** Routes under /v1 that need a key (when any exists) and count against the rate limit. */
    auth?: boolean;
  }
}

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
}

export interface TesseraServer {
  app: FastifyInstance;
  store: Store;
  runner: JobRunner | RedisJobRunner;
  data: DataDir;
  generator: VideoGenerator;
  /** Jobs found in_progress at start (left by a killed server) and queued again. */
  requeuedAtStart: number;
  /** Starts listening; resolves to the base URL. */
  listen(): Promise<string>;
  /**
   * Drains: refuses new jobs at once, closes the listener, lets the running job
   * finish for up to graceMs (default drainTimeoutMs), requeues it if it did not,
   * then closes the database. Safe to call more than once.
   */
  close(o?: { graceMs?: number }): Promise<void>;
}

const healthSchema = {
  type: "object",
  properties: {
    status: { type: "string", enum: ["ok", "draining"] },
    model: { type: "string" },
    device: { type: "string" },
    worker: { type: "string", enum: ["idle", "busy"] },
    queued: { type: "integer" },
    caption_style: {
      type: ["string", "null"],
      description:
        "The caption style the model was trained on (tessera-world: prompts are rewritten onto it unless a job sends rewrite: false); null for free text.",
    },
  },
} as const;

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const API_DESCRIPTION = `Text-to-video jobs on Tessera.

Submit with POST /v1/videos (JSON, or multipart/form-data to upload an input image or video), then poll
GET /v1/videos/{id}, or follow GET /v1/videos/{id}/events (Server-Sent Events), and fetch
GET /v1/videos/{id}/content once the status is completed.

Authentication: when the server's data folder holds at least one API key (made with \`tessera keys create\`),
every /v1 request needs \`Authorization: Bearer <key>\`, and each key sees only its own videos. With no key at
all the server runs in open mode: no header is needed and every client shares one job list — use it only on a
trusted network.`;

export async function createServer(o: ServerOptions): Promise<TesseraServer> {
  const limits: Limits = { ...DEFAULT_LIMITS, ...o.limits };
  const maxQueued = o.maxQueued ?? 100;
  const drainTimeoutMs = o.drainTimeoutMs ?? 30_000;
  const heartbeatMs = (o.sseHeartbeatSeconds ?? 15) * 1000;
  const generator = o.generator;
  const data = new DataDir(o.dataDir);
  await data.init();
  const store = new Store(data.dbFile);
  // In Redis mode a job in_progress may well be running on a worker right now.
  const requeuedAtStart = o.queue ? 0 : store.requeueInterrupted();
  let runner: JobRunner | RedisJobRunner | null = null;
  const metrics = new Metrics(
    () => store,
    () => ({ busy: runner?.busy ?? false }),
  );
  if (o.queue) {
    const { RedisJobRunner } = await import("./redis-queue.js");
    const r = new RedisJobRunner(store, data, metrics, {
      url: o.queue,
      progressWriteIntervalMs: o.progressWriteIntervalMs ?? 250,
      ...(o.queueSweepIntervalMs !== undefined ? { sweepIntervalMs: o.queueSweepIntervalMs } : {}),
    });
    try {
      await r.init();
    } catch (e) {
      await r.drain(0);
      store.close();
      throw e;
    }
    runner = r;
  } else
    runner = new JobRunner(store, data, generator, metrics, {
      maxAttempts: o.maxAttempts ?? 3,
      progressWriteIntervalMs: o.progressWriteIntervalMs ?? 250,
    });
  const worker = runner;
  const limiter =
    o.rateLimit === false ? null : new RateLimiter(o.rateLimit ?? { perMinute: 600, burst: 120 });
  let draining = false;
  const streams = new Set<ServerResponse>();
  const touched = new Map<string, number>();

  const app = Fastify({
    logger: o.logger ?? false,
    // Prompts are short; uploads go through multipart, which has its own limits.
    bodyLimit: 1024 * 1024,
    // Clients and proxies add trailing slashes; /v1/videos/ is the same collection.
    routerOptions: { ignoreTrailingSlash: true },
  });

  const strictAjv = makeAjv(false);
  const coercingAjv = makeAjv(true);
  app.setValidatorCompiler(({ schema, httpPart }) =>
    (httpPart === "body" ? strictAjv : coercingAjv).compile(schema as object),
  );
  // Plain JSON.stringify: response schemas are documentation, and must never drop a field.
  app.setSerializerCompiler(() => (d) => JSON.stringify(d));
  app.decorateRequest("keyId", null);

  const bodySchema = createVideoBodySchema(limits);
  const validateBody = strictAjv.compile(bodySchema);

  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: { title: "Tessera video API", version: "0.1.0", description: API_DESCRIPTION },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
      security: [{ bearer: [] }],
      tags: [
        { name: "videos", description: "Video generation jobs" },
        { name: "operations", description: "Health, metrics and this document" },
      ],
    },
  });
  await app.register(multipart, { limits: { fileSize: limits.maxUploadBytes } });
  // JSON and multipart only: a text/plain body would otherwise reach handlers as a string.
  app.removeContentTypeParser("text/plain");

  app.setErrorHandler((err: FastifyError & Partial<ApiError>, req, reply) => {
    if (err instanceof ApiError) {
      reply.headers(err.headers);
      return reply.code(err.status).send(errorBody(err.code, err.message, err.param));
    }
    if (err instanceof RequestFieldError) {
      metrics.rejected("invalid");
      return reply.code(400).send(errorBody("invalid_field", err.message, err.field));
    }
    if (err.validation) {
      const d = describeSchemaError(err.validation[0] as ErrorObject, err.validationContext ?? "body");
      if (req.method === "POST") metrics.rejected("invalid");
      return reply.code(400).send(errorBody("invalid_field", d.message, d.field));
    }
    switch (err.code) {
      case "FST_ERR_CTP_INVALID_JSON_BODY":
      case "FST_ERR_CTP_EMPTY_JSON_BODY":
        return reply
          .code(400)
          .send(errorBody("invalid_json", `the body is not valid JSON: ${err.message}`, "body"));
      case "FST_ERR_CTP_BODY_TOO_LARGE":
        return reply.code(413).send(errorBody("body_too_large", err.message, "body"));
      case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
        return reply
          .code(415)
          .send(
            errorBody(
              "unsupported_media_type",
              "send application/json or multipart/form-data",
              "content-type",
            ),
          );
    }
    if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500)
      return reply.code(err.statusCode).send(errorBody(err.code ?? "bad_request", err.message, null));
    req.log.error(err);
    return reply.code(500).send(errorBody("internal_error", "internal server error", null, "server_error"));
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send(errorBody("not_found", `no route ${req.method} ${req.url.split("?")[0]}`, null)),
  );

  // Authentication, then the per-key rate limit. An onRequest hook runs before the
  // body is read, so an unauthenticated client cannot make the server store an upload.
  app.addHook("onRequest", async (req, reply) => {
    if (!req.routeOptions.config.auth) return;
    const header = req.headers.authorization;
    if (store.hasActiveKeys()) {
      const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
      const keyId = m ? store.keyIdFor(m[1] as string) : null;
      if (!keyId) {
        reply.header("www-authenticate", 'Bearer realm="tessera"');
        throw new ApiError(
          401,
          header ? "invalid_api_key" : "missing_api_key",
          header ? "the API key is not valid (revoked, or never issued)" : "send Authorization: Bearer <key>",
        );
      }
      req.keyId = keyId;
      // For `tessera keys list`; at most one write a minute per key.
      const now = Date.now();
      if ((touched.get(keyId) ?? 0) < now - 60_000) {
        touched.set(keyId, now);
        store.touchKey(keyId);
      }
    }
    if (limiter) {
      const wait = limiter.take(req.keyId ?? `ip:${req.ip}`);
      if (wait > 0) {
        metrics.rejected("rate_limited");
        throw new ApiError(429, "rate_limited", `too many requests; retry in ${wait} s`, null, {
          "retry-after": String(wait),
        });
      }
    }
  });

  const view = (job: JobRow) =>
    jobView(job, worker.live(job.id), job.status === "queued" ? store.queuePosition(job.seq) : null);
  const findJob = (req: FastifyRequest<{ Params: { id: string } }>): JobRow => {
    const id = req.params.id;
    // Anything that is not one of our UUIDs (../../etc/passwd included) is simply not a video.
    const job = isJobId(id) ? store.getJob(id, req.keyId) : null;
    if (!job) throw new ApiError(404, "not_found", `no video '${truncate(id, 64)}'`, "id");
    return job;
  };

  app.post(
    "/v1/videos",
    {
      config: { auth: true },
      schema: {
        tags: ["videos"],
        summary: "Create a video",
        description:
          "Queues a generation. JSON, or multipart/form-data with the same fields as text parts plus an optional " +
          "`image` (image-to-video) or `video` (video-to-video) file part. Returns 202 with the job; 429 with " +
          "Retry-After when the queue is full.",
        body: {
          content: {
            "application/json": { schema: bodySchema },
            "multipart/form-data": {
              schema: {
                type: "object",
                properties: {
                  ...bodySchema.properties,
                  image: { type: "string", format: "binary", description: "PNG, JPEG, WebP or GIF" },
                  video: { type: "string", format: "binary", description: "MP4, MOV, WebM, GIF or Y4M" },
                },
                required: ["prompt"],
              },
            },
          },
        },
        response: { 202: S.videoSchema, 400: S.errorSchema, 401: S.errorSchema, 429: S.errorSchema },
      },
      // The multipart schema above is for the docs; multipart bodies are checked in the handler.
      validatorCompiler: ({ schema, httpPart }) => {
        if (httpPart === "body" && (schema as { properties?: { image?: unknown } }).properties?.image)
          return () => true;
        return (httpPart === "body" ? strictAjv : coercingAjv).compile(schema as object);
      },
    },
    async (req, reply) => {
      if (draining)
        throw new ApiError(503, "shutting_down", "the server is shutting down; retry on another instance");
      // Cheap early refusal, before reading an upload; the insert re-checks atomically.
      if (store.queuedCount() >= maxQueued) throw queueFull(store.queuedCount());
      let candidate: unknown = req.body;
      let uploads: Upload[] = [];
      if (req.isMultipart()) {
        const form = await readMultipart(req, data, {
          maxUploadBytes: limits.maxUploadBytes,
          maxFieldBytes: limits.maxPromptChars * 4 + 64,
        });
        uploads = form.uploads;
        candidate = form.fields;
      }
      // Multipart fields are checked here; JSON bodies were checked by the route, and are
      // checked again because fastify skips body validation for a content type the
      // schema does not list — this keeps any parser added later from bypassing it.
      if (!validateBody(candidate)) {
        await removeUploads(uploads);
        const d = describeSchemaError((validateBody.errors as ErrorObject[])[0] as ErrorObject, "body");
        throw new RequestFieldError(d.field, d.message);
      }
      const body = candidate as VideoBody;
      const id = randomUUID();
      let moved = false;
      try {
        const inputs: { image?: string; video?: string } = {};
        for (const u of uploads) inputs[u.field] = `input-${u.field}.${u.ext}`;
        const request = resolveRequest(body, generator.info, limits, inputs, () => randomInt(0, 2 ** 32));
        validateWithGenerator(generator, request);
        // What the text encoder will get, so the job shows it at once (a worker's run reports it again).
        const prepared = generator.preparePrompt?.(request.prompt, request.rewrite !== false) ?? null;
        if (uploads.length > 0) {
          await mkdir(data.jobDir(id), { recursive: true });
          moved = true;
          for (const u of uploads) await rename(u.tmp, data.inputFile(id, inputs[u.field] as string));
        }
        const res = store.insertJob(
          { id, keyId: req.keyId, request, totalSteps: request.steps, prepared },
          maxQueued,
        );
        if (!res.ok) throw queueFull(res.queued);
      } catch (e) {
        await removeUploads(uploads);
        if (moved) await data.removeJob(id);
        throw e;
      }
      // Redis mode enqueues here (a failure is retried by its sweep); in-process mode wakes the loop.
      const enqueued = worker.wake(id);
      const body202 = view(store.getJob(id, req.keyId) as JobRow);
      await enqueued;
      reply.header("location", `/v1/videos/${id}`);
      return reply.code(202).send(body202);
    },
  );

  app.get(
    "/v1/videos",
    {
      config: { auth: true },
      schema: {
        tags: ["videos"],
        summary: "List videos",
        description: "Newest first by default. Page with `after` set to the previous page's last_id.",
        querystring: S.listQuery,
        response: { 200: S.listSchema, 400: S.errorSchema },
      },
    },
    async (req) => {
      const q = req.query as { limit: number; after?: string; order: "asc" | "desc" };
      const page = store.listJobs(req.keyId, {
        limit: q.limit,
        order: q.order,
        ...(q.after ? { after: q.after } : {}),
      });
      if (!page)
        throw new ApiError(
          400,
          "invalid_field",
          `after '${truncate(q.after ?? "", 64)}' is not one of your videos`,
          "after",
        );
      const items = page.rows.map(view);
      return {
        object: "list",
        data: items,
        first_id: items[0]?.id ?? null,
        last_id: items.at(-1)?.id ?? null,
        has_more: page.hasMore,
      };
    },
  );

  app.get<{ Params: { id: string } }>(
    "/v1/videos/:id",
    {
      config: { auth: true },
      schema: {
        tags: ["videos"],
        summary: "Get a video's status",
        params: S.idParams,
        response: { 200: S.videoSchema, 404: S.errorSchema },
      },
    },
    async (req) => view(findJob(req)),
  );

  app.delete<{ Params: { id: string } }>(
    "/v1/videos/:id",
    {
      config: { auth: true },
      schema: {
        tags: ["videos"],
        summary: "Cancel or delete a video",
        description:
          "A queued or running job is cancelled (a running one stops at its next denoising step) and returned with " +
          "status cancelled. A finished job (completed, failed or cancelled) is deleted with its files.",
        params: S.idParams,
        response: {
          200: {
            oneOf: [
              S.videoSchema,
              {
                type: "object",
                properties: {
                  id: { type: "string" },
                  object: { type: "string" },
                  deleted: { type: "boolean" },
                },
              },
            ],
          },
          404: S.errorSchema,
        },
      },
    },
    async (req) => {
      let job = findJob(req);
      if (!TERMINAL.has(job.status)) {
        if (worker.cancel(job.id)) return view(store.getJob(job.id, req.keyId) as JobRow);
        // It finished in the meantime: treat the DELETE as a delete of the finished job.
        job = findJob(req);
      }
      // A cancelled run may still be between steps; let it let go of its files first.
      await worker.settled(job.id);
      if (store.deleteFinished(job.id)) await data.removeJob(job.id);
      return { id: job.id, object: "video", deleted: true };
    },
  );

  app.route<{ Params: { id: string }; Querystring: { variant: "video" | "thumbnail" } }>({
    // HEAD by hand: fastify's automatic HEAD would read the whole file and report length 0.
    method: ["GET", "HEAD"],
    url: "/v1/videos/:id/content",
    config: { auth: true },
    schema: {
      tags: ["videos"],
      summary: "Download a video (or its thumbnail)",
      description: "Honours Range requests (206, or 416 outside the file) so players can seek.",
      params: S.idParams,
      querystring: S.contentQuery,
      response: {
        200: { description: "The video file (or PNG thumbnail)", type: "string", format: "binary" },
        206: { description: "Part of the file", type: "string", format: "binary" },
        404: S.errorSchema,
        409: S.errorSchema,
        416: S.errorSchema,
      },
    },
    handler: async (req, reply) => {
      const job = findJob(req);
      if (job.status !== "completed" || !job.result)
        throw new ApiError(
          409,
          "video_not_ready",
          `video ${job.id} is ${job.status}; its content exists once it is completed`,
          "id",
        );
      const r = job.result;
      const thumb = req.query.variant === "thumbnail";
      if (thumb && !r.thumbnail)
        throw new ApiError(404, "not_found", `video ${job.id} has no thumbnail`, "variant");
      const name = thumb ? (r.thumbnail as string) : r.file;
      const ext = name.includes(".") ? name.slice(name.lastIndexOf(".")) : "";
      try {
        return await sendFile(req, reply, data.outFile(job.id, name), {
          contentType: thumb ? "image/png" : r.contentType,
          downloadName: `${job.id}${thumb ? "-thumbnail" : ""}${ext}`,
        });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT")
          throw new ApiError(
            404,
            "not_found",
            `video ${job.id}'s file is missing from the data folder`,
            "id",
          );
        throw e;
      }
    },
  });

  app.get<{ Params: { id: string } }>(
    "/v1/videos/:id/events",
    {
      config: { auth: true },
      schema: {
        tags: ["videos"],
        summary: "Follow a video's progress (Server-Sent Events)",
        description:
          "A text/event-stream. First a `status` event with the job, then `progress` events " +
          "({progress, step, total_steps, eta_ms}) and `status` events as it changes, and finally one event named " +
          "after the final status (completed, failed or cancelled) with the whole job, after which the stream ends.",
        params: S.idParams,
        response: { 200: { description: "text/event-stream", type: "string" }, 404: S.errorSchema },
      },
    },
    async (req, reply) => {
      const job = findJob(req);
      const id = job.id;
      const keyId = req.keyId;
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache, no-transform",
        connection: "keep-alive",
        // nginx and similar proxies buffer responses unless told not to.
        "x-accel-buffering": "no",
      });
      let seq = 0;
      const send = (event: string, payload: unknown) => {
        if (!res.writableEnded)
          res.write(`id: ${++seq}\nevent: ${event}\ndata: ${JSON.stringify(payload)}\n\n`);
      };
      res.write("retry: 3000\n\n");
      send("status", view(job));
      if (TERMINAL.has(job.status)) {
        send(job.status, view(job));
        res.end();
        return;
      }
      const heartbeat = setInterval(() => {
        if (!res.writableEnded && !res.destroyed) res.write(": keep-alive\n\n");
      }, heartbeatMs);
      const finish = () => {
        clearInterval(heartbeat);
        worker.events.off(id, onEvent);
        streams.delete(res);
        if (!res.writableEnded) res.end();
      };
      const onEvent = (e: JobEvent) => {
        if (e.type === "progress") {
          send("progress", { id, status: "in_progress", ...progressFields(e.live) });
          return;
        }
        if (store.closed) return finish();
        const now = store.getJob(id, keyId);
        if (!now) return finish();
        send(TERMINAL.has(now.status) ? now.status : "status", view(now));
        if (TERMINAL.has(now.status)) finish();
      };
      // Subscribing straight after the read above, with no await between, so no event is missed.
      worker.events.on(id, onEvent);
      streams.add(res);
      res.on("close", finish);
      res.on("error", finish);
    },
  );

  // The web page at / (HTML, CSS and a small ES module; no key needed to load it).
  registerWebPage(app);

  app.get(
    "/healthz",
    {
      schema: {
        tags: ["operations"],
        summary: "Liveness and what is served",
        security: [],
        description: "503 with status draining while the server shuts down.",
        response: { 200: healthSchema, 503: healthSchema },
      },
    },
    async (_req, reply) => {
      const body = {
        status: draining ? "draining" : "ok",
        model: generator.info.model,
        device: generator.info.device,
        worker: worker.busy ? "busy" : "idle",
        queued: store.closed ? 0 : store.queuedCount(),
        caption_style: generator.info.captionStyle ?? null,
      };
      return reply.code(draining ? 503 : 200).send(body);
    },
  );

  app.get(
    "/metrics",
    { schema: { tags: ["operations"], summary: "Prometheus metrics", security: [] } },
    async (_req, reply) => {
      reply.header("content-type", metrics.registry.contentType);
      return reply.send(await metrics.registry.metrics());
    },
  );

  app.get(
    "/openapi.json",
    { schema: { tags: ["operations"], summary: "This API as OpenAPI 3.1", security: [] } },
    async () => app.swagger(),
  );

  app.get(
    "/v1/devices",
    { config: { auth: true }, schema: { tags: ["operations"], summary: "Devices Tessera can run on" } },
    async () => {
      // Loaded on first use so the API (and its tests) run without the native addon.
      const native = await import("@tessera/native").catch((e: Error) => {
        throw new ApiError(503, "native_unavailable", `the native runtime is not available: ${e.message}`);
      });
      return {
        data: native.devices().map((d) => ({ ...d.info(), memory: d.memoryStats() })),
        cuda: native.cudaStatus(),
      };
    },
  );

  await app.ready();
  worker.start();

  let closing: Promise<void> | null = null;
  return {
    app,
    store,
    runner: worker,
    data,
    generator,
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
        draining = true;
        // Stops the listener now; resolves once in-flight requests (and SSE streams) end.
        const http = app.close();
        await worker.drain(c.graceMs ?? drainTimeoutMs);
        for (const s of streams) s.end();
        await http;
        store.close();
      })();
      return closing;
    },
  };

  function queueFull(queued: number): ApiError {
    metrics.rejected("queue_full");
    const wait = worker.estimateWaitSeconds(queued);
    return new ApiError(
      429,
      "queue_full",
      `the queue is full (${queued} jobs waiting, at most ${maxQueued}); retry in about ${wait} s`,
      null,
      { "retry-after": String(wait) },
    );
  }
}

async function removeUploads(uploads: Upload[]): Promise<void> {
  await Promise.all(uploads.map((u) => rm(u.tmp, { force: true })));
}

function errorBody(code: string, message: string, param: string | null, type = "invalid_request_error") {
  return { error: { type, code, message, param } };
}

function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

const sec = (ms: number | null) => (ms === null ? null : Math.floor(ms / 1000));

function progressFields(live: LiveProgress) {
  return { progress: live.progress, step: live.step, total_steps: live.total, eta_ms: live.etaMs };
}

export function jobView(job: JobRow, live: LiveProgress | null, queuePosition: number | null) {
  const r = job.request;
  const res = job.result;
  const base = `/v1/videos/${job.id}`;
  return {
    id: job.id,
    object: "video" as const,
    status: job.status,
    progress: job.status === "completed" ? 100 : (live?.progress ?? Math.round(job.progress)),
    model: r.model,
    prompt: r.prompt,
    // What the model's text encoder got (rewritten for a model with a caption style); null until known.
    prompt_used: job.prepared?.prompt ?? null,
    rewrite: job.prepared?.rewrite
      ? {
          unknown_words: job.prepared.rewrite.unknownWords,
          filled_defaults: job.prepared.rewrite.filledDefaults,
          changed: job.prepared.rewrite.changed,
        }
      : null,
    negative_prompt: r.negativePrompt,
    mode: r.image ? "image-to-video" : r.video ? "video-to-video" : "text-to-video",
    size: `${r.width}x${r.height}`,
    width: r.width,
    height: r.height,
    frames: r.frames,
    fps: r.fps,
    seconds: Math.round((r.frames / r.fps) * 1000) / 1000,
    steps: r.steps,
    guidance: r.guidance,
    seed: r.seed,
    ...(r.strength !== undefined ? { strength: r.strength } : {}),
    step: live?.step ?? job.step,
    total_steps: live?.total ?? job.totalSteps,
    eta_ms: job.status === "in_progress" ? (live?.etaMs ?? null) : null,
    queue_position: queuePosition,
    attempts: job.attempts,
    created_at: sec(job.createdAt) as number,
    started_at: sec(job.startedAt),
    completed_at: sec(job.completedAt),
    timings: job.timings,
    error: job.error,
    content:
      job.status === "completed" && res
        ? {
            url: `${base}/content`,
            content_type: res.contentType,
            bytes: res.bytes,
            thumbnail_url: res.thumbnail ? `${base}/content?variant=thumbnail` : null,
          }
        : null,
  };
}

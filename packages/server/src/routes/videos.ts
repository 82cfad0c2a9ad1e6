// The video collection: create (POST /v1/videos), list, get and cancel/delete.
import type { FastifyInstance } from "fastify";
import { AUTH } from "../http/auth.js";
import { findJob, type ServerContext, validatorCompiler, viewJob } from "../http/context.js";
import { ApiError, truncate } from "../http/errors.js";
import * as S from "../schemas.js";
import { type JobRow, TERMINAL } from "../store.js";
import { createVideoBodySchema } from "../validation.js";
import { insertSubmission, queueFull, readSubmission } from "./submission.js";

export function registerVideoRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { store, runner, data } = ctx;
  const bodySchema = createVideoBodySchema(ctx.limits);
  const validateBody = ctx.ajv.strict.compile(bodySchema);
  const compile = validatorCompiler(ctx.ajv);

  app.post(
    "/v1/videos",
    {
      config: AUTH,
      schema: {
        tags: ["videos"],
        summary: "Create a video",
        description:
          "Queues a generation. JSON, or multipart/form-data with the same fields as text parts plus an optional " +
          "`image` (image-to-video; with an `end_image` part, the clip ends on it: a Wan2.1 FLF2V model needs " +
          "both) or `video` (video-to-video) file part. Returns 202 with the job; 429 with " +
          "Retry-After when the queue is full; 400 `exceeds_memory_budget` when the model estimates the request " +
          "needs more memory than the server allows; 503 while the server drains; 507 when its disk is full.",
        body: {
          content: {
            "application/json": { schema: bodySchema },
            "multipart/form-data": {
              schema: {
                type: "object",
                properties: {
                  ...bodySchema.properties,
                  image: { type: "string", format: "binary", description: "PNG, JPEG, WebP or GIF" },
                  end_image: {
                    type: "string",
                    format: "binary",
                    description: "PNG, JPEG, WebP or GIF: the last frame (first-last-frame)",
                  },
                  video: { type: "string", format: "binary", description: "MP4, MOV, WebM, GIF or Y4M" },
                },
                required: ["prompt"],
              },
            },
          },
        },
        response: {
          202: S.videoSchema,
          400: S.errorSchema,
          401: S.errorSchema,
          403: S.errorSchema,
          429: S.errorSchema,
          503: S.errorSchema,
          507: S.errorSchema,
        },
      },
      // The multipart schema above is for the docs; multipart bodies are checked in the handler.
      validatorCompiler: (route) =>
        route.httpPart === "body" && (route.schema as { properties?: { image?: unknown } }).properties?.image
          ? () => true
          : compile(route),
    },
    async (req, reply) => {
      if (ctx.draining) {
        ctx.metrics.rejected("draining");
        throw new ApiError(
          503,
          "shutting_down",
          "the server is shutting down; retry in a few seconds (or on another instance)",
          null,
          { "retry-after": "5" },
        );
      }
      // Cheap early refusal, before reading an upload; the insert re-checks atomically.
      if (store.queuedCount() >= ctx.maxQueued) throw queueFull(ctx, store.queuedCount());
      const id = await insertSubmission(ctx, req.keyId, await readSubmission(ctx, req, validateBody));
      // Redis mode enqueues here (a failure is retried by its sweep); in-process mode wakes the loop.
      const enqueued = runner.wake(id);
      const body202 = viewJob(ctx, store.getJob(id, req.keyId) as JobRow);
      await enqueued;
      reply.header("location", `/v1/videos/${id}`);
      return reply.code(202).send(body202);
    },
  );

  app.get(
    "/v1/videos",
    {
      config: AUTH,
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
      const items = page.rows.map((job) => viewJob(ctx, job));
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
      config: AUTH,
      schema: {
        tags: ["videos"],
        summary: "Get a video's status",
        params: S.idParams,
        response: { 200: S.videoSchema, 404: S.errorSchema },
      },
    },
    async (req) => viewJob(ctx, findJob(ctx, req)),
  );

  app.delete<{ Params: { id: string } }>(
    "/v1/videos/:id",
    {
      config: AUTH,
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
      let job = findJob(ctx, req);
      if (!TERMINAL.has(job.status)) {
        if (runner.cancel(job.id)) return viewJob(ctx, store.getJob(job.id, req.keyId) as JobRow);
        // It finished in the meantime: treat the DELETE as a delete of the finished job.
        job = findJob(ctx, req);
      }
      // A cancelled run may still be between steps; let it let go of its files first.
      await runner.settled(job.id);
      if (store.deleteFinished(job.id)) await data.removeJob(job.id);
      return { id: job.id, object: "video", deleted: true };
    },
  );
}

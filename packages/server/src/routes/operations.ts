// What operators and tools read: /healthz, /metrics, /openapi.json and /v1/devices,
// and the OpenAPI document itself (built by @fastify/swagger from every route's schema).
import swagger from "@fastify/swagger";
import type { FastifyInstance } from "fastify";
import { AUTH } from "../http/auth.js";
import type { ServerContext } from "../http/context.js";
import { ApiError } from "../http/errors.js";

const API_DESCRIPTION = `Text-to-video jobs on Tessera.

Submit with POST /v1/videos (JSON, or multipart/form-data to upload an input image or video), then poll
GET /v1/videos/{id}, or follow GET /v1/videos/{id}/events (Server-Sent Events), and fetch
GET /v1/videos/{id}/content once the status is completed.

Authentication: when the server's data folder holds at least one API key (made with \`tessera keys create\`),
every /v1 request needs \`Authorization: Bearer <key>\`, and each key sees only its own videos. With no key at
all the server runs in open mode: no header is needed and every client shares one job list — use it only on a
trusted network.`;

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

/** Starts collecting routes for /openapi.json; register it before any route. */
export async function registerOpenApi(app: FastifyInstance): Promise<void> {
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
}

export function registerOperationRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { generator, runner, store, metrics } = ctx;
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
        status: ctx.draining ? "draining" : "ok",
        model: generator.info.model,
        device: generator.info.device,
        worker: runner.busy ? "busy" : "idle",
        queued: store.closed ? 0 : store.queuedCount(),
        caption_style: generator.info.captionStyle ?? null,
      };
      return reply.code(ctx.draining ? 503 : 200).send(body);
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
    { config: AUTH, schema: { tags: ["operations"], summary: "Devices Tessera can run on" } },
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
}

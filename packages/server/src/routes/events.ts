// A video's progress as Server-Sent Events: the job at once, then progress and
// status events from the runner, and one final event named after the end state.
import type { FastifyInstance } from "fastify";
import { AUTH } from "../http/auth.js";
import { findJob, type ServerContext, viewJob } from "../http/context.js";
import { progressFields } from "../http/video-view.js";
import type { JobEvent } from "../jobs.js";
import * as S from "../schemas.js";
import { TERMINAL } from "../store.js";

export function registerEventRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { store, runner, streams } = ctx;
  app.get<{ Params: { id: string } }>(
    "/v1/videos/:id/events",
    {
      config: AUTH,
      schema: {
        tags: ["videos"],
        summary: "Follow a video's progress (Server-Sent Events)",
        description:
          "A text/event-stream. First a `status` event with the job, then `progress` events " +
          "({progress, step, total_steps, eta_ms}) and `status` events as it changes, and finally one event named " +
          "after the final status (completed, failed or cancelled) with the whole job, after which the stream ends. " +
          "While it runs, `preview` events ({step, image, width, height, frames}) carry a small picture of the " +
          "current denoised estimate: `image` is a PNG data: URL of `frames` frames of width×height side by side " +
          "(a few a second at most; a model without a preview projection sends none).",
        params: S.idParams,
        response: { 200: { description: "text/event-stream", type: "string" }, 404: S.errorSchema },
      },
    },
    async (req, reply) => {
      const job = findJob(ctx, req);
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
      send("status", viewJob(ctx, job));
      if (TERMINAL.has(job.status)) {
        send(job.status, viewJob(ctx, job));
        res.end();
        return;
      }
      const heartbeat = setInterval(() => {
        if (!res.writableEnded && !res.destroyed) res.write(": keep-alive\n\n");
      }, ctx.sseHeartbeatMs);
      const finish = () => {
        clearInterval(heartbeat);
        runner.events.off(id, onEvent);
        streams.delete(res);
        if (!res.writableEnded) res.end();
      };
      const onEvent = (e: JobEvent) => {
        if (e.type === "progress") {
          send("progress", { id, status: "in_progress", ...progressFields(e.live) });
          return;
        }
        if (e.type === "preview") {
          send("preview", { id, ...e.preview });
          return;
        }
        if (store.closed) return finish();
        const now = store.getJob(id, keyId);
        if (!now) return finish();
        send(TERMINAL.has(now.status) ? now.status : "status", viewJob(ctx, now));
        if (TERMINAL.has(now.status)) finish();
      };
      // Subscribing straight after the read above, with no await between, so no event is missed.
      runner.events.on(id, onEvent);
      const last = runner.lastPreview(id);
      if (last) send("preview", { id, ...last });
      streams.add(res);
      res.on("close", finish);
      res.on("error", finish);
    },
  );
}

// A finished video's file, or its PNG thumbnail: GET and HEAD, with Range support
// (see ../content.ts) so players can seek.
import type { FastifyInstance } from "fastify";
import { sendFile } from "../content.js";
import { AUTH } from "../http/auth.js";
import { findJob, type ServerContext } from "../http/context.js";
import { ApiError } from "../http/errors.js";
import * as S from "../schemas.js";

export function registerContentRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.route<{ Params: { id: string }; Querystring: { variant: "video" | "thumbnail" } }>({
    // HEAD by hand: fastify's automatic HEAD would read the whole file and report length 0.
    method: ["GET", "HEAD"],
    url: "/v1/videos/:id/content",
    config: AUTH,
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
      const job = findJob(ctx, req);
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
        return await sendFile(req, reply, ctx.data.outFile(job.id, name), {
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
}

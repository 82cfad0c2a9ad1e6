// Serving a finished file with single-range support (RFC 9110 §14), which is what
// a <video> element or a player needs to seek: it asks for `bytes=N-` and expects
// 206 with Content-Range. Multi-range requests get the whole file (allowed by the
// RFC, and no player depends on them).
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import type { FastifyReply, FastifyRequest } from "fastify";

export type Range = { start: number; end: number } | "unsatisfiable" | null;

/** Parses a Range header against a file of `size` bytes; null means "send it all". */
export function parseRange(header: string | undefined, size: number): Range {
  if (!header) return null;
  const m = /^\s*bytes\s*=\s*(.+)$/i.exec(header);
  if (!m) return null;
  const specs = (m[1] as string).split(",");
  if (specs.length !== 1) return null;
  const r = /^\s*(\d*)\s*-\s*(\d*)\s*$/.exec(specs[0] as string);
  if (!r) return null;
  const [, a, b] = r as unknown as [string, string, string];
  if (a === "" && b === "") return null;
  if (a === "") {
    // Suffix range: the last N bytes.
    const n = Number(b);
    if (n === 0) return "unsatisfiable";
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  let end = b === "" ? size - 1 : Number(b);
  if (b !== "" && end < start) return null;
  if (start >= size) return "unsatisfiable";
  if (end >= size) end = size - 1;
  return { start, end };
}

export async function sendFile(
  req: FastifyRequest,
  reply: FastifyReply,
  path: string,
  o: { contentType: string; downloadName: string },
): Promise<FastifyReply> {
  const s = await stat(path);
  const size = s.size;
  const etag = `"${size.toString(16)}-${Math.floor(s.mtimeMs).toString(16)}"`;
  reply.header("accept-ranges", "bytes");
  reply.header("etag", etag);
  reply.header("last-modified", s.mtime.toUTCString());
  reply.header("content-type", o.contentType);
  reply.header("content-disposition", `inline; filename="${o.downloadName}"`);
  // Outputs never change once written (a re-run replaces the whole job folder and mtime).
  reply.header("cache-control", "private, max-age=3600");
  if (req.headers["if-none-match"] === etag) return reply.code(304).send();

  let range = parseRange(req.headers.range, size);
  // If-Range: only honour the range when the client's copy is the one we have.
  const ifRange = req.headers["if-range"];
  if (range && ifRange && ifRange !== etag && ifRange !== s.mtime.toUTCString()) range = null;
  if (range === "unsatisfiable") {
    reply.header("content-range", `bytes */${size}`);
    reply.header("content-type", "application/json; charset=utf-8");
    return reply.code(416).send({
      error: {
        type: "invalid_request_error",
        code: "range_not_satisfiable",
        message: `the range '${req.headers.range}' is outside the file's ${size} bytes`,
        param: "range",
      },
    });
  }
  if (range) {
    reply.code(206);
    reply.header("content-range", `bytes ${range.start}-${range.end}/${size}`);
    reply.header("content-length", range.end - range.start + 1);
    if (req.method === "HEAD") return reply.send();
    return reply.send(createReadStream(path, { start: range.start, end: range.end }));
  }
  reply.header("content-length", size);
  if (req.method === "HEAD") return reply.send();
  return reply.send(createReadStream(path));
}

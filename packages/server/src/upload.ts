// multipart/form-data submissions: text parts become the same fields a JSON body
// has, and an `image` or `video` file part is streamed to the data folder's tmp/
// (never buffered whole in memory) under a name of ours. What a file is comes from
// its first bytes, not from the client's file name or Content-Type.
import { createWriteStream } from "node:fs";
import { open, rm } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import type { FastifyRequest } from "fastify";
import { RequestFieldError } from "./generator.js";
import type { DataDir } from "./paths.js";
import { isDiskFull, StorageFullError } from "./storage.js";
import { BOOLEAN_FIELDS, LIST_FIELDS, NUMERIC_FIELDS } from "./validation.js";

export type UploadField = "image" | "end_image" | "video";

export interface Upload {
  field: UploadField;
  /** Where the bytes are now (data/tmp/…). */
  tmp: string;
  /** Extension matching the content, e.g. "png", "mp4". */
  ext: string;
  bytes: number;
}

const IMAGE_KINDS = ["png", "jpg", "webp", "gif"];
const VIDEO_KINDS = ["mp4", "mov", "webm", "gif", "y4m"];

/** The container or image format from its magic bytes, or null. */
export function sniff(b: Buffer): string | null {
  const ascii = (from: number, to: number) => b.subarray(from, to).toString("latin1");
  if (b.length >= 8 && b.readUInt32BE(0) === 0x89504e47 && b.readUInt32BE(4) === 0x0d0a1a0a) return "png";
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return "jpg";
  if (b.length >= 12 && ascii(0, 4) === "RIFF" && ascii(8, 12) === "WEBP") return "webp";
  if (b.length >= 6 && (ascii(0, 6) === "GIF87a" || ascii(0, 6) === "GIF89a")) return "gif";
  if (b.length >= 12 && ascii(4, 8) === "ftyp") return ascii(8, 10) === "qt" ? "mov" : "mp4";
  if (b.length >= 4 && b.readUInt32BE(0) === 0x1a45dfa3) return "webm";
  if (b.length >= 10 && ascii(0, 10) === "YUV4MPEG2 ") return "y4m";
  return null;
}

async function head(path: string, n: number): Promise<Buffer> {
  const fh = await open(path, "r");
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/**
 * Reads a multipart submission. Throws RequestFieldError naming the part at fault;
 * on any error, files already written are removed.
 */
export async function readMultipart(
  req: FastifyRequest,
  data: DataDir,
  o: { maxUploadBytes: number; maxFieldBytes: number },
): Promise<{ fields: Record<string, unknown>; uploads: Upload[] }> {
  const fields: Record<string, unknown> = {};
  const uploads: Upload[] = [];
  let current: string | null = null;
  try {
    const parts = req.parts({
      limits: {
        fileSize: o.maxUploadBytes,
        // An image and an end image (first-last-frame), or one video.
        files: 2,
        fields: 16,
        parts: 18,
        fieldSize: o.maxFieldBytes,
        fieldNameSize: 100,
      },
    });
    for await (const part of parts) {
      const name = part.fieldname;
      current = name;
      if (Object.hasOwn(fields, name) || uploads.some((u) => u.field === name))
        throw new RequestFieldError(name, `${name} is given more than once`);
      if (part.type === "file") {
        if (name !== "image" && name !== "end_image" && name !== "video") {
          part.file.resume();
          throw new RequestFieldError(
            name,
            `unknown file field '${name}'; upload an 'image' (and an 'end_image') or a 'video'`,
          );
        }
        const tmp = data.tmpFile();
        const u: Upload = { field: name, tmp, ext: "", bytes: 0 };
        uploads.push(u);
        await pipeline(part.file, createWriteStream(tmp, { flags: "wx" }));
        if (part.file.truncated)
          throw new RequestFieldError(
            name,
            `${name} is larger than this server's upload limit of ${o.maxUploadBytes} bytes`,
          );
        u.bytes = part.file.bytesRead;
        if (u.bytes === 0) throw new RequestFieldError(name, `${name} is empty`);
        const kind = sniff(await head(tmp, 16));
        const isImage = name !== "video";
        const allowed = isImage ? IMAGE_KINDS : VIDEO_KINDS;
        if (!kind || !allowed.includes(kind))
          throw new RequestFieldError(
            name,
            `${name} is not a ${isImage ? "PNG, JPEG, WebP or GIF image" : "MP4, MOV, WebM, GIF or Y4M video"}` +
              (kind ? ` (it looks like ${kind})` : ""),
          );
        u.ext = kind;
      } else {
        if (part.valueTruncated)
          throw new RequestFieldError(
            name,
            `${name} is longer than this server allows (${o.maxFieldBytes} bytes)`,
          );
        const v = part.value;
        if (typeof v !== "string") throw new RequestFieldError(name, `${name} must be text`);
        fields[name] =
          NUMERIC_FIELDS.has(name) && /^\s*-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?\s*$/.test(v)
            ? Number(v)
            : BOOLEAN_FIELDS.has(name) && /^\s*(true|false)\s*$/.test(v)
              ? v.trim() === "true"
              : LIST_FIELDS.has(name) && /^\s*\[/.test(v)
                ? jsonList(name, v)
                : v;
      }
      current = null;
    }
    return { fields, uploads };
  } catch (e) {
    await Promise.all(uploads.map((u) => rm(u.tmp, { force: true })));
    if (e instanceof RequestFieldError) throw e;
    // The server's disk, not the client's upload: a 507, and the message says so.
    if (isDiskFull(e)) throw new StorageFullError(`the upload could not be stored`, { cause: e });
    const code = (e as { code?: string }).code ?? "";
    const field = current ?? "body";
    if (code === "FST_REQ_FILE_TOO_LARGE")
      throw new RequestFieldError(
        field,
        `${field} is larger than this server's upload limit of ${o.maxUploadBytes} bytes`,
      );
    if (code === "FST_FILES_LIMIT")
      throw new RequestFieldError(field, "upload one file (an image or a video) at most");
    if (code === "FST_FIELDS_LIMIT" || code === "FST_PARTS_LIMIT")
      throw new RequestFieldError("body", "the form has too many fields");
    throw new RequestFieldError(field, `the multipart body could not be read: ${(e as Error).message}`);
  }
}

/** A multipart text part holding a JSON list (loras, timesteps); the schema checks what is in it. */
function jsonList(name: string, v: string): unknown {
  try {
    return JSON.parse(v);
  } catch {
    throw new RequestFieldError(name, `${name} must be a JSON list, e.g. [1000, 750, 500, 250]`);
  }
}

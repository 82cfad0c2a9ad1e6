// What every runner (in-process or a Redis worker) does with a finished generation:
// check the files the generator says it wrote before anything is published, and
// name its timings for the stored result.
import { stat } from "node:fs/promises";
import type { GeneratedVideo } from "./generator.js";
import { isSafeFileName } from "./paths.js";
import type { StoredResult } from "./store.js";

export async function checkOutputs(staging: string, out: GeneratedVideo): Promise<StoredResult> {
  if (!isSafeFileName(out.file))
    throw new Error(`the generator returned a bad file name '${String(out.file)}'`);
  if (out.thumbnail !== undefined && !isSafeFileName(out.thumbnail))
    throw new Error(`the generator returned a bad thumbnail name '${String(out.thumbnail)}'`);
  const s = await stat(`${staging}/${out.file}`);
  if (!s.isFile() || s.size === 0)
    throw new Error(`the generator wrote no video (${out.file} is empty or not a file)`);
  if (out.thumbnail !== undefined && !(await stat(`${staging}/${out.thumbnail}`)).isFile())
    throw new Error(`the generator's thumbnail ${out.thumbnail} is not a file`);
  return {
    file: out.file,
    contentType: out.contentType,
    bytes: s.size,
    ...(out.thumbnail !== undefined ? { thumbnail: out.thumbnail } : {}),
    width: out.width,
    height: out.height,
    frames: out.frames,
    fps: out.fps,
  };
}

export function prefixed(t: Record<string, number> | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  if (!t) return out;
  for (const [k, v] of Object.entries(t))
    if (typeof v === "number" && Number.isFinite(v))
      out[`${k.replace(/[^a-z0-9_]/gi, "_")}_ms`] = Math.round(v * 10) / 10;
  return out;
}

// Where the video goes: the -o path checked before anything runs (its format, its
// folder, ffmpeg where the format needs it), and the frames written at the end.
import { existsSync, statSync } from "node:fs";
import { delimiter, dirname, extname, join } from "node:path";
import { framesFromTensor, type GenerateResult, type VideoFrames, writeVideo } from "@tessera/core";
import { UsageError } from "../../args.js";

const VIDEO_EXTS = [".mp4", ".m4v", ".webm", ".gif", ".y4m"];

/** -o: a video file of a known format, or a folder (PNG frames), in a folder that exists. */
export function checkOutput(path: string): void {
  const isFolder = /[/\\]$/.test(path) || (existsSync(path) && statSync(path).isDirectory());
  if (!isFolder && !VIDEO_EXTS.includes(extname(path).toLowerCase()))
    throw new UsageError(
      `-o must end in ${VIDEO_EXTS.join(", ")}, or '/' for a folder of PNG frames, got '${path}'`,
    );
  const parent = isFolder ? dirname(path.replace(/[/\\]+$/, "")) : dirname(path);
  if (!existsSync(parent) || !statSync(parent).isDirectory())
    throw new UsageError(`-o: folder '${parent}' does not exist`);
}

export function needsFfmpeg(path: string): boolean {
  return [".mp4", ".m4v", ".webm"].includes(extname(path).toLowerCase());
}

// Mirrors how the video writer finds ffmpeg ($TESSERA_FFMPEG, else PATH), to fail
// before generating rather than after.
export function ffmpegAvailable(): boolean {
  const env = process.env.TESSERA_FFMPEG;
  if (env?.includes("/")) return existsSync(env);
  const name = env || "ffmpeg";
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir && existsSync(join(dir, name))) return true;
  }
  return false;
}

export type Written = Awaited<ReturnType<typeof writeVideo>>;

/**
 * Writes the generated video to `output` and frees the result's tensors. An
 * extension is written whole: the input clip, then what follows its last frames.
 */
export async function writeOutput(
  output: string,
  result: GenerateResult,
  fps: number,
  extended: VideoFrames | undefined,
): Promise<Written> {
  try {
    const gen = await framesFromTensor(result.video, { fps });
    const all = extended ? [...extended.frames, ...gen.frames.slice(result.contextFrames)] : gen.frames;
    return await writeVideo(output, { width: gen.width, height: gen.height, frames: all, fps });
  } finally {
    result.video.dispose();
    result.latents.dispose();
  }
}

// The system ffmpeg, used for codecs we will not write ourselves (H.264, VP9)
// and for decoding arbitrary input video. Frames go through pipes as raw RGB,
// never through temporary image files.
import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";
import { delimiter, join } from "node:path";
import { VideoIOError } from "./errors.js";
import { fpsToRational, type VideoFrames } from "./frames.js";

const BUILTIN_WRITE = "GIF (.gif), YUV4MPEG2 (.y4m) and PNG frame folders (a path ending in '/')";
const BUILTIN_READ = "YUV4MPEG2 (.y4m), GIF (.gif), PNG frame folders, and still images via readImage";

function isExecutable(p: string): boolean {
  try {
    if (!statSync(p).isFile()) return false;
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function searchPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    if (isExecutable(p)) return p;
  }
  return null;
}

/**
 * The ffmpeg binary to run: $TESSERA_FFMPEG when set, else `ffmpeg` on PATH.
 * Looked up on every call (it is cheap) so a changed environment takes effect.
 * Throws a VideoIOError that says how to get ffmpeg and what works without it.
 */
export function findFfmpeg(purpose: string, reading = false): string {
  const env = process.env.TESSERA_FFMPEG;
  const found = env
    ? env.includes("/")
      ? isExecutable(env)
        ? env
        : null
      : searchPath(env)
    : searchPath("ffmpeg");
  if (found) return found;
  const why = env
    ? `ffmpeg was not found: TESSERA_FFMPEG=${env} is not an executable file`
    : "ffmpeg was not found on PATH";
  throw new VideoIOError(
    `${why}, and ${purpose} needs it.\n` +
      "Install it with `apt-get install ffmpeg` (Debian/Ubuntu) or `brew install ffmpeg` (macOS), " +
      "or set TESSERA_FFMPEG=/path/to/ffmpeg.\n" +
      `These formats work without ffmpeg: ${reading ? BUILTIN_READ : BUILTIN_WRITE}.`,
  );
}

/** The last lines of ffmpeg's stderr: where it says what went wrong. */
function tail(text: string, lines = 15): string {
  const kept = text
    .split(/\r?\n|\r/)
    .map((l) => l.trimEnd())
    .filter((l) => l.length > 0);
  return kept.slice(-lines).join("\n");
}

/** Keeps only the end of a long stream of text, so a chatty ffmpeg cannot grow memory without bound. */
class TextTail {
  #s = "";
  constructor(readonly limit: number) {}
  push(chunk: Buffer | string): void {
    this.#s += chunk.toString();
    if (this.#s.length > 2 * this.limit) this.#s = this.#s.slice(-this.limit);
  }
  get text(): string {
    return this.#s;
  }
}

function exitOf(
  child: ChildProcess,
  bin: string,
  purpose: string,
): Promise<{ code: number | null; signal: string | null }> {
  return new Promise((resolve, reject) => {
    child.once("error", (e: NodeJS.ErrnoException) =>
      reject(
        e.code === "ENOENT" || e.code === "EACCES"
          ? new VideoIOError(`could not run ffmpeg at '${bin}' (${e.code}) for ${purpose}`, undefined, {
              cause: e,
            })
          : new VideoIOError(`could not run ffmpeg at '${bin}' for ${purpose}: ${e.message}`, undefined, {
              cause: e,
            }),
      ),
    );
    child.once("close", (code, signal) => resolve({ code, signal }));
  });
}

function failure(
  purpose: string,
  code: number | null,
  signal: string | null,
  stderr: string,
  path?: string,
): VideoIOError {
  const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
  const t = tail(stderr);
  return new VideoIOError(`ffmpeg ${how} while ${purpose}${t ? `:\n${t}` : " (it printed nothing)"}`, path);
}

/**
 * Runs ffmpeg with raw RGB frames of `width`x`height` on stdin, writing `out`
 * with the given output arguments. Honours pipe back-pressure so a long video
 * never sits in memory twice.
 */
export async function ffmpegEncode(opts: {
  bin: string;
  width: number;
  height: number;
  fps: number;
  frames: Iterable<Uint8Array>;
  outputArgs: string[];
  out: string;
  purpose: string;
}): Promise<void> {
  const [num, den] = fpsToRational(opts.fps);
  const args = [
    "-hide_banner",
    "-nostdin",
    "-loglevel",
    "error",
    "-y",
    "-f",
    "rawvideo",
    "-pix_fmt",
    "rgb24",
    "-video_size",
    `${opts.width}x${opts.height}`,
    "-framerate",
    `${num}/${den}`,
    "-i",
    "pipe:0",
    ...opts.outputArgs,
    opts.out,
  ];
  const child = spawn(opts.bin, args, { stdio: ["pipe", "ignore", "pipe"] });
  const exit = exitOf(child, opts.bin, opts.purpose);
  exit.catch(() => {}); // observed below; this only stops an early rejection counting as unhandled
  const err = new TextTail(16_384);
  child.stderr?.on("data", (c: Buffer) => err.push(c));
  const stdin = child.stdin;
  let gone = false;
  child.once("close", () => {
    gone = true;
  });
  child.once("error", () => {
    gone = true;
  });
  if (stdin) {
    // EPIPE when ffmpeg dies early: its exit status and stderr explain why, so report those instead.
    stdin.on("error", () => {
      gone = true;
    });
    for (const f of opts.frames) {
      if (gone) break;
      if (!stdin.write(f))
        await new Promise<void>((resolve) => {
          const done = () => resolve();
          stdin.once("drain", done);
          stdin.once("close", done);
          child.once("close", done);
          child.once("error", done);
        });
    }
    stdin.end();
  }
  const { code, signal } = await exit;
  if (code !== 0) throw failure(opts.purpose, code, signal, err.text, opts.out);
}

export type Fit = "cover" | "contain" | "fill";

export interface DecodeOptions {
  maxFrames?: number;
  width?: number;
  height?: number;
  fps?: number;
  fit?: Fit;
}

function scaleFilter(o: DecodeOptions): string[] {
  // Lanczos with exact rounding and full-resolution chroma: the defaults trade
  // accuracy for speed, which conditioning inputs should not.
  const flags = "flags=lanczos+accurate_rnd+full_chroma_int";
  const { width: w, height: h } = o;
  if (w && h) {
    const fit = o.fit ?? "cover";
    if (fit === "fill") return [`scale=${w}:${h}:${flags}`];
    if (fit === "cover")
      return [`scale=${w}:${h}:force_original_aspect_ratio=increase:${flags}`, `crop=${w}:${h}`];
    return [
      `scale=${w}:${h}:force_original_aspect_ratio=decrease:${flags}`,
      `pad=${w}:${h}:(ow-iw)/2:(oh-ih)/2:color=black`,
    ];
  }
  if (w) return [`scale=${w}:-1:${flags}`];
  if (h) return [`scale=-1:${h}:${flags}`];
  return [`scale=${flags}`];
}

/** Parses the size and rate of the raw output stream from ffmpeg's stream summary. */
function parseOutputStream(stderr: string): { width: number; height: number; fps: number } | null {
  const at = stderr.indexOf("Output #0");
  if (at < 0) return null;
  const line = stderr
    .slice(at)
    .split(/\r?\n/)
    .find((l) => /Stream #0:\d+.*Video:/.test(l));
  if (!line) return null;
  const size = /,\s(\d+)x(\d+)[\s,[]/.exec(`${line} `);
  if (!size) return null;
  const rate = /,\s(\d+(?:\.\d+)?)(k?)\s(?:fps|tbr)/.exec(line);
  let fps = rate ? Number(rate[1]) * (rate[2] ? 1000 : 1) : 0;
  // ffmpeg prints rates rounded (29.97); snap NTSC-style ones back to their exact n*1000/1001.
  for (const base of [24, 30, 48, 60, 120])
    if (Math.abs(fps - (base * 1000) / 1001) < 0.006) fps = (base * 1000) / 1001;
  return { width: Number(size[1]), height: Number(size[2]), fps };
}

/** Decodes any video ffmpeg can read into RGB8 frames (resized and re-timed by ffmpeg when asked). */
export async function ffmpegDecode(bin: string, path: string, o: DecodeOptions): Promise<VideoFrames> {
  const filters: string[] = [];
  if (o.fps) {
    const [num, den] = fpsToRational(o.fps);
    filters.push(`fps=${num}/${den}`);
  }
  filters.push(...scaleFilter(o), "format=rgb24");
  const args = [
    "-hide_banner",
    "-nostdin",
    "-nostats",
    "-i",
    path,
    "-map",
    "0:v:0",
    "-vf",
    filters.join(","),
  ];
  if (o.maxFrames !== undefined && Number.isFinite(o.maxFrames)) args.push("-frames:v", String(o.maxFrames));
  args.push("-an", "-sn", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1");
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  const exit = exitOf(child, bin, `reading ${path}`);
  exit.catch(() => {});
  const chunks: Buffer[] = [];
  let total = 0;
  child.stdout?.on("data", (c: Buffer) => {
    chunks.push(c);
    total += c.length;
  });
  // The stream summary comes near the start; the head is kept whole so it
  // cannot be pushed out by later warnings, and the tail for error messages.
  let head = "";
  const err = new TextTail(16_384);
  child.stderr?.on("data", (c: Buffer) => {
    if (head.length < 65_536) head += c.toString();
    err.push(c);
  });
  const { code, signal } = await exit;
  if (code !== 0) throw failure(`reading ${path}`, code, signal, err.text, path);
  const info = parseOutputStream(head);
  if (!info)
    throw new VideoIOError(`${path}: could not find the video size in ffmpeg's output:\n${tail(head)}`, path);
  const frameBytes = info.width * info.height * 3;
  if (total === 0) throw new VideoIOError(`${path}: ffmpeg decoded no video frames`, path);
  if (total % frameBytes !== 0)
    throw new VideoIOError(
      `${path}: ffmpeg produced ${total} bytes, not a whole number of ${info.width}x${info.height} RGB frames`,
      path,
    );
  const all = Buffer.concat(chunks, total);
  const frames: Uint8Array[] = [];
  // Views into one buffer: copying each frame out would briefly double the memory of a long video.
  for (let off = 0; off < total; off += frameBytes)
    frames.push(new Uint8Array(all.buffer, all.byteOffset + off, frameBytes));
  return { width: info.width, height: info.height, frames, fps: o.fps ?? (info.fps || 25) };
}

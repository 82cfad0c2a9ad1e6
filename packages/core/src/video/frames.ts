// The in-memory video format every reader returns and every writer takes:
// 8-bit RGB, row-major, one Uint8Array per frame. Plain bytes keep this module
// free of device memory and let any encoder consume frames without conversion.
import { VideoIOError } from "./errors.js";

export interface VideoFrames {
  width: number;
  height: number;
  /** Each frame is width*height*3 bytes, row-major RGB. */
  frames: Uint8Array[];
  fps: number;
}

/** One RGB8 picture. */
export interface RgbImage {
  width: number;
  height: number;
  /** width*height*3 bytes, row-major RGB. */
  data: Uint8Array;
}

/** Throws a VideoIOError naming the first thing wrong with `video`, so encoders never see bad input. */
export function checkFrames(video: VideoFrames, what = "video"): void {
  if (video === null || typeof video !== "object")
    throw new VideoIOError(`${what}: expected { width, height, frames, fps }, got ${typeof video}`);
  const { width, height, frames, fps } = video;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0)
    throw new VideoIOError(`${what}: width and height must be positive integers, got ${width}x${height}`);
  if (!Array.isArray(frames)) throw new VideoIOError(`${what}: 'frames' must be an array of Uint8Array`);
  if (frames.length === 0) throw new VideoIOError(`${what}: has zero frames; there is nothing to write`);
  if (typeof fps !== "number" || !Number.isFinite(fps) || fps <= 0)
    throw new VideoIOError(`${what}: fps must be a positive number, got ${fps}`);
  const need = width * height * 3;
  for (let i = 0; i < frames.length; i++) {
    const f = frames[i];
    if (!(f instanceof Uint8Array))
      throw new VideoIOError(`${what}: frame ${i} is not a Uint8Array (got ${describe(f)})`);
    if (f.length !== need)
      throw new VideoIOError(
        `${what}: frame ${i} has ${f.length} bytes but ${width}x${height} RGB needs ${need} (width*height*3)`,
      );
  }
}

export function checkImage(image: RgbImage, what = "image"): void {
  checkFrames(
    { width: image?.width, height: image?.height, frames: [image?.data], fps: 1 } as VideoFrames,
    what,
  );
}

function describe(x: unknown): string {
  if (x === null) return "null";
  if (typeof x === "object") return (x as object).constructor?.name ?? "object";
  return typeof x;
}

/**
 * A frame rate as a fraction. Containers store rationals, and NTSC-style rates
 * (29.97 = 30000/1001) would drift if written as rounded decimals.
 */
export function fpsToRational(fps: number): [number, number] {
  if (Number.isInteger(fps)) return [fps, 1];
  for (const base of [24, 25, 30, 48, 50, 60, 120]) {
    if (Math.abs(fps - (base * 1000) / 1001) < 0.005) return [base * 1000, 1001];
  }
  // Best approximation by continued fractions with a bounded denominator.
  let [h0, h1, k0, k1] = [0, 1, 1, 0];
  let x = fps;
  for (let i = 0; i < 32; i++) {
    const a = Math.floor(x);
    const h2 = a * h1 + h0;
    const k2 = a * k1 + k0;
    if (k2 > 100_000) break;
    [h0, h1, k0, k1] = [h1, h2, k1, k2];
    const frac = x - a;
    if (frac < 1e-9 || Math.abs(h1 / k1 - fps) < 1e-9) break;
    x = 1 / frac;
  }
  return [h1, k1];
}

/** Picks frames nearest in time so a video plays at `dst` fps (same duration); used where ffmpeg's fps filter is not. */
export function resampleFps(frames: Uint8Array[], src: number, dst: number): Uint8Array[] {
  if (Math.abs(src - dst) < 1e-9) return frames;
  const n = Math.max(1, Math.round((frames.length * dst) / src));
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const j = Math.min(frames.length - 1, Math.round((i * src) / dst));
    out.push(frames[j] as Uint8Array);
  }
  return out;
}

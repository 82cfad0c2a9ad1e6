// Frames <-> tensors in the layout the pipelines use: [1, T, H, W, 3] floats in
// [-1, 1] (pixel p maps to p/127.5 - 1).
import { type DeviceLike, type DType, isFloat, Tensor } from "@tessera/native";
import { VideoIOError } from "./errors.js";
import { checkFrames, type VideoFrames } from "./frames.js";

/** The frame rate framesFromTensor assumes when told none: what Wan models generate at. */
export const DEFAULT_VIDEO_FPS = 16;

/**
 * Reads a [1, T, H, W, 3] float tensor (any float dtype, any device) back as
 * RGB8 frames, rounding to the nearest level and clamping out-of-range values
 * (and NaN, to 0) rather than failing: model outputs overshoot [-1, 1] a little.
 */
export async function framesFromTensor(t: Tensor, opts: { fps?: number } = {}): Promise<VideoFrames> {
  if (!(t instanceof Tensor)) throw new VideoIOError("framesFromTensor: expected a Tensor");
  const s = t.shape;
  if (s.length !== 5 || s[0] !== 1 || s[4] !== 3)
    throw new VideoIOError(
      `framesFromTensor: expected shape [1, T, H, W, 3], got [${s.join(", ")}]` +
        (s.length === 5 && s[0] !== 1 ? " (take one batch item with narrow(0, i, 1))" : ""),
    );
  if (!isFloat(t.dtype)) throw new VideoIOError(`framesFromTensor: expected a float tensor, got ${t.dtype}`);
  const [, T, H, W] = s as [number, number, number, number, number];
  if (T === 0 || H === 0 || W === 0)
    throw new VideoIOError(`framesFromTensor: tensor [${s.join(", ")}] holds no pixels`);
  const fps = opts.fps ?? DEFAULT_VIDEO_FPS;
  const x = await t.toFloat32Array();
  const n = H * W * 3;
  const frames: Uint8Array[] = [];
  for (let f = 0; f < T; f++) {
    const out = new Uint8Array(n);
    const base = f * n;
    for (let i = 0; i < n; i++) {
      const v = Math.round(((x[base + i] as number) + 1) * 127.5);
      // Uint8Array stores values modulo 256, so clamp first; NaN passes through and is stored as 0.
      out[i] = Math.min(255, Math.max(0, v));
    }
    frames.push(out);
  }
  const video = { width: W, height: H, frames, fps };
  checkFrames(video, "framesFromTensor");
  return video;
}

/** Makes a [1, T, H, W, 3] tensor in [-1, 1] from RGB8 frames (default f32 on the CPU). */
export function tensorFromFrames(
  video: VideoFrames,
  opts: { device?: DeviceLike; dtype?: DType } = {},
): Tensor {
  checkFrames(video, "tensorFromFrames");
  const dtype = opts.dtype ?? "f32";
  if (!isFloat(dtype))
    throw new VideoIOError(`tensorFromFrames: dtype must be f32, bf16 or f16, got ${dtype}`);
  const { width: W, height: H, frames } = video;
  const n = W * H * 3;
  const data = new Float32Array(frames.length * n);
  for (let f = 0; f < frames.length; f++) {
    const src = frames[f] as Uint8Array;
    const base = f * n;
    for (let i = 0; i < n; i++) data[base + i] = (src[i] as number) / 127.5 - 1;
  }
  return Tensor.from(data, [1, frames.length, H, W, 3], { dtype, device: opts.device ?? "cpu" });
}

// Synthetic RGB8 clips for the video tests (not exported from the package).
import type { VideoFrames } from "./frames.js";

/** A clip of `n` frames whose pixel (x, y) at frame t is px(x, y, t) = [r, g, b]. */
export function syntheticVideo(
  width: number,
  height: number,
  n: number,
  px: (x: number, y: number, t: number) => number[],
  fps = 16,
): VideoFrames {
  const frames: Uint8Array[] = [];
  for (let t = 0; t < n; t++) {
    const f = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) f.set(px(x, y, t), (y * width + x) * 3);
    frames.push(f);
  }
  return { width, height, frames, fps };
}

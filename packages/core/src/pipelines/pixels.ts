// Pixels in and out of the pipeline: 8-bit RGB frames (what the video readers
// return) resized to the generation size and turned into [-1, 1] tensors, and
// back.
import { affine, cast, type DeviceLike, type DType, Tensor } from "@tessera/native";

/**
 * Scales `src` (w×h RGB) to cover W×H and crops the centre, so the aspect ratio is
 * kept and nothing is letterboxed. Each output pixel averages a grid of bilinear
 * samples over its footprint, which is plain bilinear when enlarging and an area
 * filter when shrinking (plain bilinear would alias).
 */
export function resizeCover(src: Uint8Array, w: number, h: number, W: number, H: number): Uint8Array {
  if (w === W && h === H) return src;
  const scale = Math.max(W / w, H / h);
  const cw = W / scale;
  const ch = H / scale;
  const x0 = (w - cw) / 2;
  const y0 = (h - ch) / 2;
  const n = Math.min(8, Math.max(1, Math.ceil(1 / scale)));
  const out = new Uint8Array(W * H * 3);
  const acc = [0, 0, 0];
  for (let oy = 0; oy < H; oy++) {
    for (let ox = 0; ox < W; ox++) {
      acc[0] = acc[1] = acc[2] = 0;
      for (let sy = 0; sy < n; sy++) {
        const fy = Math.min(h - 1, Math.max(0, y0 + (oy + (sy + 0.5) / n) / scale - 0.5));
        const yA = Math.floor(fy);
        const yB = Math.min(h - 1, yA + 1);
        const ty = fy - yA;
        for (let sx = 0; sx < n; sx++) {
          const fx = Math.min(w - 1, Math.max(0, x0 + (ox + (sx + 0.5) / n) / scale - 0.5));
          const xA = Math.floor(fx);
          const xB = Math.min(w - 1, xA + 1);
          const tx = fx - xA;
          for (let c = 0; c < 3; c++) {
            const p00 = src[(yA * w + xA) * 3 + c] as number;
            const p01 = src[(yA * w + xB) * 3 + c] as number;
            const p10 = src[(yB * w + xA) * 3 + c] as number;
            const p11 = src[(yB * w + xB) * 3 + c] as number;
            acc[c] =
              (acc[c] as number) + (p00 * (1 - tx) + p01 * tx) * (1 - ty) + (p10 * (1 - tx) + p11 * tx) * ty;
          }
        }
      }
      const o = (oy * W + ox) * 3;
      for (let c = 0; c < 3; c++) out[o + c] = Math.round((acc[c] as number) / (n * n));
    }
  }
  return out;
}

/** Frames (each w×h RGB8) as a [1, T, H, W, 3] tensor in [-1, 1], resized to W×H. */
export function pixelsToTensor(
  frames: readonly Uint8Array[],
  w: number,
  h: number,
  W: number,
  H: number,
  opts: { device: DeviceLike; dtype: DType },
): Tensor {
  const plane = W * H * 3;
  const all = new Uint8Array(frames.length * plane);
  frames.forEach((f, i) => {
    all.set(resizeCover(f, w, h, W, H), i * plane);
  });
  const u8 = Tensor.fromBytes(all, [1, frames.length, H, W, 3], { dtype: "u8", device: opts.device });
  const f32 = cast(u8, "f32");
  u8.dispose();
  const unit = affine(f32, 1 / 127.5, -1);
  f32.dispose();
  if (opts.dtype === "f32") return unit;
  const out = cast(unit, opts.dtype);
  unit.dispose();
  return out;
}

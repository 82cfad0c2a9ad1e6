// Live previews: the generator hands over small RGB8 frames of its current denoised
// estimate with some progress reports (see GenerationProgress.preview); this turns
// them, at most a few times a second, into one PNG strip of the clip's frames side by
// side, as a data: URL a web page can show as it is.
import type { GenerationProgress, PreviewFrames } from "./generator.js";
import type { LivePreview } from "./jobs.js";
import { encodePng } from "./png.js";

export interface PreviewOptions {
  /** Least milliseconds between two previews of one run (default 500); the last step's always goes out. */
  minIntervalMs?: number;
  /** Frames of the clip the strip shows at most, evenly spaced (default 8). */
  maxFrames?: number;
  /** Frames are enlarged (nearest neighbour, whole factors up to 4) until their longer side is this (default 96). */
  minSide?: number;
}

export class PreviewEncoder {
  #last = Number.NEGATIVE_INFINITY;
  readonly #o: Required<PreviewOptions>;

  constructor(o: PreviewOptions = {}) {
    this.#o = {
      minIntervalMs: o.minIntervalMs ?? 500,
      maxFrames: o.maxFrames ?? 8,
      minSide: o.minSide ?? 96,
    };
  }

  /** The preview to send for this progress report, or null (none given, or too soon after the last). */
  take(p: GenerationProgress): LivePreview | null {
    if (!p.preview) return null;
    const now = Date.now();
    if (now - this.#last < this.#o.minIntervalMs && p.step !== p.total) return null;
    this.#last = now;
    return { step: p.step, ...previewStrip(p.preview, this.#o.maxFrames, this.#o.minSide) };
  }
}

/** Up to `maxFrames` evenly spaced frames, enlarged to about `minSide`, side by side in one PNG data URL. */
export function previewStrip(
  v: PreviewFrames,
  maxFrames: number,
  minSide: number,
): { image: string; width: number; height: number; frames: number } {
  const n = v.frames.length;
  const picked =
    n <= maxFrames
      ? v.frames
      : Array.from({ length: maxFrames }, (_, i) => v.frames[Math.round((i * (n - 1)) / (maxFrames - 1))]);
  const k = Math.max(1, Math.min(4, Math.floor(minSide / Math.max(v.width, v.height))));
  const w = v.width * k;
  const h = v.height * k;
  const stripW = w * picked.length;
  const out = new Uint8Array(stripW * h * 3);
  picked.forEach((f, i) => {
    const src = f as Uint8Array;
    for (let y = 0; y < h; y++) {
      const sy = Math.floor(y / k);
      for (let x = 0; x < w; x++) {
        const s = (sy * v.width + Math.floor(x / k)) * 3;
        const d = (y * stripW + i * w + x) * 3;
        out[d] = src[s] as number;
        out[d + 1] = src[s + 1] as number;
        out[d + 2] = src[s + 2] as number;
      }
    }
  });
  const png = encodePng(stripW, h, out);
  return {
    image: `data:image/png;base64,${png.toString("base64")}`,
    width: w,
    height: h,
    frames: picked.length,
  };
}

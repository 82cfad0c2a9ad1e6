// Live previews: a picture of the current denoised estimate while a video is being
// generated, cheap enough to make at every step. The estimate is x̂₀ = x_t − σ·v (the
// flow-matching velocity points from the data to the noise), and its latents are
// turned into colours by one linear map per model family, z_dim → RGB, fitted by
// least squares against the pixels the latents encode: no decoder runs. The result
// is at latent resolution (an eighth of the video's side), one picture per latent
// frame.
//
// A model folder may carry its own map in tessera.json ("preview": {"latentRgb":
// {"weights": [[r, g, b] × z_dim], "bias": [r, g, b]}}; the demo model's is fitted
// by training/demo/fit_preview.mjs); Wan2.1's 16-channel VAE has a published one
// (the factors ComfyUI uses for its Wan previews).
import { axpby, cast, scope, type Tensor } from "@tessera/native";

/** Normalised latents (as the pipeline holds them) → RGB in [-1, 1]: rgb = z·weights + bias. */
export interface LatentRgbProjection {
  /** z_dim rows of [r, g, b]. */
  weights: number[][];
  bias: [number, number, number];
}

/** RGB8 preview frames (width·height·3 bytes each), one per latent frame. */
export interface PreviewFrames {
  width: number;
  height: number;
  frames: Uint8Array[];
}

export interface PreviewOptions {
  /** Least milliseconds between previews (default 0: as often as the cost allows). */
  minIntervalMs?: number;
  /** Largest share of the run's time the previews may take (default 0.02). */
  maxShare?: number;
}

/**
 * Wan2.1's VAE (z 16): the latent-to-RGB factors and bias of ComfyUI's Wan21 latent
 * format, which apply to normalised latents and give RGB in [-1, 1].
 */
export const WAN21_LATENT_RGB: LatentRgbProjection = {
  weights: [
    [-0.1299, -0.1692, 0.2932],
    [0.0671, 0.0406, 0.0442],
    [0.3568, 0.2548, 0.1747],
    [0.0372, 0.2344, 0.142],
    [0.0313, 0.0189, -0.0328],
    [0.0296, -0.0956, -0.0665],
    [-0.3477, -0.4059, -0.2925],
    [0.0166, 0.1902, 0.1975],
    [-0.0412, 0.0267, -0.1364],
    [-0.1293, 0.074, 0.1636],
    [0.068, 0.3019, 0.1128],
    [0.0032, 0.0581, 0.0639],
    [-0.1251, 0.0927, 0.1699],
    [0.006, -0.0633, 0.0005],
    [0.3477, 0.2275, 0.295],
    [0.1984, 0.0913, 0.1861],
  ],
  bias: [-0.1835, -0.0868, -0.336],
};

/** Checks a projection read from a file against the latents' channels; returns it, or throws naming what is wrong. */
export function checkLatentRgbProjection(v: unknown, zDim: number, what: string): LatentRgbProjection {
  const p = v as Partial<LatentRgbProjection> | null;
  const isRow = (r: unknown): r is number[] =>
    Array.isArray(r) && r.length === 3 && r.every((x) => typeof x === "number" && Number.isFinite(x));
  if (!p || typeof p !== "object" || !Array.isArray(p.weights) || !isRow(p.bias))
    throw new Error(`${what}: expected {"weights": [[r, g, b], …], "bias": [r, g, b]}`);
  if (p.weights.length !== zDim || !p.weights.every(isRow))
    throw new Error(`${what}: weights must be ${zDim} rows (the VAE's z_dim) of 3 numbers`);
  return { weights: p.weights, bias: p.bias as [number, number, number] };
}

/** The map for a model: its own, else the published one for Wan2.1's z16 VAE, else none. */
export function latentRgbProjectionFor(
  own: LatentRgbProjection | undefined,
  zDim: number,
): LatentRgbProjection | null {
  if (own) return own;
  return zDim === WAN21_LATENT_RGB.weights.length ? WAN21_LATENT_RGB : null;
}

/** Latents [F, h, w, z] (channels last, as the pipeline holds them) → RGB8 frames at latent resolution. */
export function projectLatents(
  z: Float32Array,
  shape: readonly [number, number, number, number],
  p: LatentRgbProjection,
): PreviewFrames {
  const [f, h, w, c] = shape;
  const W = Float64Array.from(p.weights.flat());
  const [br, bg, bb] = p.bias;
  const frames: Uint8Array[] = [];
  const to8 = (v: number) => {
    const x = Math.round((v + 1) * 127.5);
    return Math.max(0, Math.min(255, x));
  };
  for (let t = 0; t < f; t++) {
    const out = new Uint8Array(h * w * 3);
    for (let i = 0; i < h * w; i++) {
      const base = (t * h * w + i) * c;
      let r = br;
      let g = bg;
      let b = bb;
      for (let k = 0; k < c; k++) {
        const v = z[base + k] as number;
        r += v * (W[3 * k] as number);
        g += v * (W[3 * k + 1] as number);
        b += v * (W[3 * k + 2] as number);
      }
      out[3 * i] = to8(r);
      out[3 * i + 1] = to8(g);
      out[3 * i + 2] = to8(b);
    }
    frames.push(out);
  }
  return { width: w, height: h, frames };
}

/**
 * What the latent grid sees of a clip: RGB in [-1, 1] averaged over each latent cell
 * ([F, h, w, 3]). Latent frame 0 is video frame 0; latent frame k > 0 covers video
 * frames 1 + tf·(k − 1) … tf·k (the VAE's causal grouping).
 */
export function latentGridTargets(
  frames: readonly Uint8Array[],
  width: number,
  height: number,
  sf: number,
  tf: number,
): Float32Array {
  const F = 1 + (frames.length - 1) / tf;
  const h = height / sf;
  const w = width / sf;
  const out = new Float32Array(F * h * w * 3);
  for (let k = 0; k < F; k++) {
    const src = k === 0 ? [0] : Array.from({ length: tf }, (_, j) => 1 + tf * (k - 1) + j);
    const scale = 1 / (src.length * sf * sf);
    for (const s of src) {
      const px = frames[s] as Uint8Array;
      for (let y = 0; y < height; y++)
        for (let x = 0; x < width; x++) {
          const o = ((k * h + Math.floor(y / sf)) * w + Math.floor(x / sf)) * 3;
          const i = (y * width + x) * 3;
          for (let ch = 0; ch < 3; ch++)
            out[o + ch] = (out[o + ch] as number) + ((px[i + ch] as number) / 127.5 - 1) * scale;
        }
    }
  }
  return out;
}

/**
 * Least-squares z → RGB map (with bias) from pairs of latents [F, h, w, z] and the
 * colours of their cells [F, h, w, 3] (latentGridTargets), with a little ridge so
 * that unused channels get small weights rather than arbitrary ones.
 */
export function fitLatentRgbProjection(
  pairs: readonly { latents: Float32Array; targets: Float32Array }[],
  zDim: number,
  ridge = 1e-3,
): LatentRgbProjection {
  const n = zDim + 1;
  const A = new Float64Array(n * n);
  const B = new Float64Array(n * 3);
  const x = new Float64Array(n);
  let count = 0;
  for (const { latents, targets } of pairs) {
    const cells = targets.length / 3;
    if (latents.length !== cells * zDim)
      throw new Error("fitLatentRgbProjection: latents and targets disagree");
    for (let i = 0; i < cells; i++) {
      for (let k = 0; k < zDim; k++) x[k] = latents[i * zDim + k] as number;
      x[zDim] = 1;
      for (let a = 0; a < n; a++) {
        const xa = x[a] as number;
        for (let b = 0; b < n; b++) A[a * n + b] = (A[a * n + b] as number) + xa * (x[b] as number);
        for (let ch = 0; ch < 3; ch++)
          B[a * 3 + ch] = (B[a * 3 + ch] as number) + xa * (targets[i * 3 + ch] as number);
      }
      count++;
    }
  }
  for (let k = 0; k < zDim; k++) A[k * n + k] = (A[k * n + k] as number) + ridge * count;
  const sol = solveSymmetric(A, B, n, 3);
  const weights = Array.from({ length: zDim }, (_, k) =>
    [0, 1, 2].map((ch) => round4(sol[k * 3 + ch] as number)),
  );
  const bias = [0, 1, 2].map((ch) => round4(sol[zDim * 3 + ch] as number)) as [number, number, number];
  return { weights, bias };
}

const round4 = (v: number) => Math.round(v * 1e4) / 1e4;

// Gaussian elimination with partial pivoting on [A | B]; A is n×n, B is n×m.
function solveSymmetric(A: Float64Array, B: Float64Array, n: number, m: number): Float64Array {
  const a = Float64Array.from(A);
  const b = Float64Array.from(B);
  for (let col = 0; col < n; col++) {
    let piv = col;
    for (let r = col + 1; r < n; r++)
      if (Math.abs(a[r * n + col] as number) > Math.abs(a[piv * n + col] as number)) piv = r;
    if (piv !== col) {
      for (let c = 0; c < n; c++)
        [a[col * n + c], a[piv * n + c]] = [a[piv * n + c] as number, a[col * n + c] as number];
      for (let c = 0; c < m; c++)
        [b[col * m + c], b[piv * m + c]] = [b[piv * m + c] as number, b[col * m + c] as number];
    }
    const d = a[col * n + col] as number;
    if (Math.abs(d) < 1e-12)
      throw new Error("fitLatentRgbProjection: the latents do not span their channels");
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const f = (a[r * n + col] as number) / d;
      if (f === 0) continue;
      for (let c = col; c < n; c++) a[r * n + c] = (a[r * n + c] as number) - f * (a[col * n + c] as number);
      for (let c = 0; c < m; c++) b[r * m + c] = (b[r * m + c] as number) - f * (b[col * m + c] as number);
    }
  }
  for (let r = 0; r < n; r++)
    for (let c = 0; c < m; c++) b[r * m + c] = (b[r * m + c] as number) / (a[r * n + r] as number);
  return b;
}

/**
 * Makes the previews of one run: decides when one is due so that their cost stays under
 * `maxShare` of the run's time, computes x̂₀ on the device (one axpby), and reads it back
 * and projects it on the host.
 */
export class LatentPreviewer {
  readonly #p: LatentRgbProjection;
  readonly #maxShare: number;
  readonly #minIntervalMs: number;
  #lastAt = Number.NEGATIVE_INFINITY;
  #lastCostMs = 0;
  /** Milliseconds spent on previews so far. */
  spentMs = 0;

  constructor(p: LatentRgbProjection, o: PreviewOptions = {}) {
    this.#p = p;
    this.#maxShare = o.maxShare ?? 0.02;
    this.#minIntervalMs = o.minIntervalMs ?? 0;
  }

  /** Why previews stopped for this run (the first error they met), or null. */
  failure: string | null = null;

  /** Whether the step that ends now should make one: the last one's cost is at most maxShare of the time since. */
  due(now = performance.now()): boolean {
    if (this.failure !== null) return false;
    const since = now - this.#lastAt;
    return since >= this.#minIntervalMs && this.#lastCostMs <= this.#maxShare * since;
  }

  /**
   * x̂₀ = x_t − σ·v, queued on the device (call before v is freed); pass it to frames().
   * A preview is never worth a generation: an error stops previews for the run (null).
   */
  estimate(x: Tensor, v: Tensor, sigma: number): Tensor | null {
    try {
      if (v.dtype === x.dtype) return axpby(x, v, 1, -sigma);
      return scope(() => axpby(x, cast(v, x.dtype), 1, -sigma));
    } catch (e) {
      this.failure = (e as Error).message;
      return null;
    }
  }

  /** Reads x̂₀ back ([1, F, h, w, z]) and projects it; frees it. Undefined (and no more previews) on an error. */
  async frames(x0: Tensor): Promise<PreviewFrames | undefined> {
    const t0 = performance.now();
    try {
      const [, f, h, w, c] = x0.shape as [number, number, number, number, number];
      const data = await x0.toFloat32Array();
      return projectLatents(data, [f, h, w, c], this.#p);
    } catch (e) {
      this.failure = (e as Error).message;
      return undefined;
    } finally {
      x0.dispose();
      const now = performance.now();
      this.#lastCostMs = now - t0;
      this.spentMs += this.#lastCostMs;
      this.#lastAt = now;
    }
  }
}

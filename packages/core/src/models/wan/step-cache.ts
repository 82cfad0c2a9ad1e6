// Step caching for the Wan transformer, after First-Block Cache (FBCache) with
// TeaCache's accumulation: adjacent denoising steps change the deep blocks' output
// little, so a step whose first block barely moved can reuse the remaining blocks'
// residual from the last step that ran them all.
//
// At every step the first block runs; its output residual r = block₀(x) − x is
// compared with the previous step's by relative L1, ‖r − r_prev‖₁ / ‖r_prev‖₁, and
// the distances are summed since the last full step. While the sum stays under the
// threshold the step adds the cached residual of blocks 1..n−1 (their output minus
// their input at the last full step) to block₀'s output and goes to the head;
// otherwise it runs every block, refreshes that residual and resets the sum.
//
// Why the first block's output residual rather than TeaCache's timestep-modulated
// input: it is computed anyway (the first block runs at every step), it reflects
// everything that moves the step's output — the latents, the timestep modulation
// and, through cross-attention, the text — and its threshold needs no per-model
// calibration, where TeaCache maps the input's change onto the output's with a
// polynomial fitted for each model (none is fitted for the demo model).
//
// Both guidance branches run as one batch of two, so the batch is cached as a
// whole: each branch's distance is measured, and the larger decides for both.
// Built from existing ops (sub, affine, max, linear against a ones vector for the
// sums), so it runs on every device; the one host read per step is a few numbers
// per token.
//
// Split over ranks (a parallel plan), each rank's cache holds its own share — its
// guidance branch or its tokens — and `gather` brings every rank's per-token sums
// together before the host read, so every rank judges the whole batch and the whole
// video and takes the same decision as one device would.
import { affine, concat, full, linear, maximum, scope, sub, type Tensor } from "@tessera/native";

export interface StepCacheOptions {
  /**
   * Every rank's per-token sums [k, B, Ls] joined into the whole run's [k, B', L']
   * (guidance branches along B, tokens along L, padding dropped); none on one device.
   */
  gather?: (sums: Tensor) => Promise<Tensor>;
}

export class StepCache {
  /** Steps that ran every block. */
  fullSteps = 0;
  /** Steps that reused the cached residual. */
  cachedSteps = 0;
  /** The accumulated distance each step was judged by (NaN for a step with nothing to compare). */
  readonly distances: number[] = [];
  #prev: Tensor | null = null;
  // Per-sample ‖r_prev‖₁.
  #prevNorm: number[] = [];
  #rest: Tensor | null = null;
  #ones: Tensor | null = null;
  #acc = 0;
  #disposed = false;
  readonly #gather: StepCacheOptions["gather"];

  /** `threshold`: the accumulated relative L1 distance under which a step reuses the cache (0 runs every step in full). */
  constructor(
    readonly threshold: number,
    opts: StepCacheOptions = {},
  ) {
    if (typeof threshold !== "number" || !Number.isFinite(threshold) || threshold < 0)
      throw new RangeError(`StepCache: threshold must be a finite number >= 0, got ${String(threshold)}`);
    this.#gather = opts.gather;
  }

  /**
   * The residual of blocks 1..n−1 at the last full step, [B, L, dim]: null before the
   * first, and from an observe() that says the step runs in full until its refresh().
   */
  get rest(): Tensor | null {
    return this.#rest;
  }

  /**
   * Takes the first block's output residual `residual` [B, L, dim] of this step (the
   * cache owns it from here) and says whether the step may reuse the cached residual
   * of the other blocks. `force` makes it a full step. After a `false`, the caller
   * runs the other blocks and passes their residual to refresh().
   */
  async observe(residual: Tensor, force = false): Promise<boolean> {
    if (this.#disposed) {
      residual.dispose();
      throw new Error("StepCache: used after dispose()");
    }
    const prev = this.#prev;
    this.#prev = residual;
    try {
      const dim = residual.shape[2] as number;
      // Kept out of the caller's scope: the cache owns it until dispose().
      if (!this.#ones)
        scope((keep) => {
          this.#ones = keep(full([1, dim], 1, { dtype: residual.dtype, device: residual.device }));
        });
      const ones = this.#ones as Tensor;
      // One host read for both: the per-token sums of |r − r_prev| and of |r|.
      const k = prev ? 2 : 1;
      const gather = this.#gather;
      const { rows, b, len } = await scope(async () => {
        const norm = absRowSums(residual, ones);
        let both = prev ? concat([absRowSums(sub(residual, prev), ones), norm], 0) : norm;
        const [b0, len0] = residual.shape as [number, number];
        if (gather) both = await gather(both.reshape([k, b0, len0]));
        const [b1, len1] = gather ? (both.shape.slice(1) as [number, number]) : [b0, len0];
        return { rows: await both.toFloat32Array(), b: b1, len: len1 };
      });
      const norm = sampleSums(rows, prev ? b : 0, b, len);
      let dist = Number.NaN;
      if (prev) {
        const diff = sampleSums(rows, 0, b, len);
        // Relative to the previous residual, as FBCache and TeaCache; the larger branch decides.
        dist = Math.max(...diff.map((d, i) => d / Math.max(this.#prevNorm[i] as number, 1e-12)));
      }
      this.#prevNorm = norm;
      const acc = this.#acc + (Number.isNaN(dist) ? 0 : dist);
      this.distances.push(prev ? acc : Number.NaN);
      const reuse = !force && prev !== null && this.#rest !== null && acc < this.threshold;
      if (reuse) {
        this.#acc = acc;
        this.cachedSteps++;
      } else {
        this.#acc = 0;
        this.fullSteps++;
        // A full step refreshes it: freed now, it is not held beside the blocks' activations.
        this.#rest?.dispose();
        this.#rest = null;
      }
      return reuse;
    } finally {
      prev?.dispose();
    }
  }

  /** Stores the residual of blocks 1..n−1 of a full step (the cache owns it from here). */
  refresh(rest: Tensor): void {
    if (this.#disposed) {
      rest.dispose();
      throw new Error("StepCache: used after dispose()");
    }
    this.#rest?.dispose();
    this.#rest = rest;
  }

  /** Frees the cached tensors. Safe to call twice. */
  dispose(): void {
    this.#disposed = true;
    for (const t of [this.#prev, this.#rest, this.#ones]) t?.dispose();
    this.#prev = null;
    this.#rest = null;
    this.#ones = null;
  }
}

// Σ|x| over the last dim of [B, L, dim] as [B·L, 1]: |x| = max(x, −x), the sum a product with ones.
function absRowSums(x: Tensor, ones: Tensor): Tensor {
  const [b, len, dim] = x.shape as [number, number, number];
  return linear(maximum(x, affine(x, -1, 0)).reshape([b * len, dim]), ones);
}

// Per-sample totals of `b` blocks of `len` rows starting at row `from`, summed in f64.
function sampleSums(rows: Float32Array, from: number, b: number, len: number): number[] {
  const out: number[] = [];
  for (let s = 0; s < b; s++) {
    let t = 0;
    const o = (from + s) * len;
    for (let i = 0; i < len; i++) t += rows[o + i] as number;
    out.push(t);
  }
  return out;
}

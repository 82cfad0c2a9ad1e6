// The feature cache that lets the VAE run a video chunk by chunk with results equal
// to running it whole: every causal layer keeps the last input frames its kernel
// reaches back to, keyed by the layer's weight name, and the time-resampling layers
// remember whether they have seen the clip's first chunk.
import { concat, scope, slice, type Tensor } from "@tessera/native";

/** Frames a 3-tap causal conv needs from the previous chunk (the reference's CACHE_T). */
export const CACHE_T = 2;

export class FeatureCache {
  readonly #frames = new Map<string, Tensor>();
  readonly #started = new Set<string>();

  /** The cached frames of `name` [B, P, H, W, C], if any. */
  get(name: string): Tensor | undefined {
    return this.#frames.get(name);
  }

  /**
   * Replaces the frames of `name` with what `make` returns, which must be a tensor it
   * creates. `make` runs in a scope of its own whose result nobody else owns, so the
   * entry outlives whatever scope the caller is in — also across the asynchronous
   * continuations of a row-split decode, where no enclosing scope is still running.
   */
  set(name: string, make: () => Tensor): void {
    let t: Tensor | undefined;
    scope((keep) => {
      t = keep(make());
    });
    const old = this.#frames.get(name);
    // A pending op that reads the old frames keeps their memory until it is done.
    if (old && old !== t) old.dispose();
    this.#frames.set(name, t as Tensor);
  }

  /** Caches the last `n` frames of the stream that `prev` (the old cache) followed by `x` forms. */
  setTail(name: string, prev: Tensor | undefined, x: Tensor, n: number): void {
    this.set(name, () => tail(prev, x, n));
  }

  /** Whether the time-resampling layer `name` has seen the clip's first chunk. */
  started(name: string): boolean {
    return this.#started.has(name);
  }

  start(name: string): void {
    this.#started.add(name);
  }

  /** Total cached bytes (for memory reports). */
  get nbytes(): number {
    let n = 0;
    for (const t of this.#frames.values()) n += t.nbytes;
    return n;
  }

  dispose(): void {
    for (const t of this.#frames.values()) t.dispose();
    this.#frames.clear();
    this.#started.clear();
  }
}

/** A fresh tensor holding the last `n` frames of prev ++ x (fewer when the stream is shorter). */
function tail(prev: Tensor | undefined, x: Tensor, n: number): Tensor {
  const t = x.shape[1] as number;
  if (t >= n || !prev) return slice(x, 1, Math.max(0, t - n), t);
  const p = prev.shape[1] as number;
  const need = Math.min(n - t, p);
  const head = slice(prev, 1, p - need, p);
  const out = concat([head, x], 1);
  head.dispose();
  return out;
}

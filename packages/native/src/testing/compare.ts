// Error measures used by every numeric test.
import type { DType } from "../dtype.js";

/** ||out - ref|| / ||ref|| (ref in float64); Infinity if any output is non-finite. */
export function relError(out: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (out.length !== ref.length) throw new Error(`length mismatch: ${out.length} vs ${ref.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < out.length; i++) {
    const o = out[i] as number;
    const r = ref[i] as number;
    if (!Number.isFinite(o) && !(Number.isNaN(o) && Number.isNaN(r))) return Number.POSITIVE_INFINITY;
    if (Number.isNaN(r)) continue;
    num += (o - r) * (o - r);
    den += r * r;
  }
  if (den === 0) return Math.sqrt(num);
  return Math.sqrt(num / den);
}

export function maxAbsError(out: ArrayLike<number>, ref: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < out.length; i++) {
    const d = Math.abs((out[i] as number) - (ref[i] as number));
    if (!(d <= m)) m = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
  }
  return m;
}

/** Tolerance on relError for a result computed in `dtype` against an fp32/fp64 reference. */
export function tolerance(dtype: DType): number {
  switch (dtype) {
    case "f32":
      return 1e-4;
    case "f16":
      return 5e-3;
    case "bf16":
      return 2e-2;
    default:
      return 0;
  }
}

// Channels-last convolutions with PyTorch weight layouts
// (kernel semantics: native/include/tessera/kernels/conv.h).
import type { Tensor } from "../tensor.js";
import { runOp } from "./run.js";

export interface Conv3dOptions {
  /** [Cout] */
  bias?: Tensor;
  /** [t, h, w] or one number for all; default 1. */
  stride?: number | readonly [number, number, number];
  /**
   * Zero padding: one number, [t, h, w] (t frames on both ends) or [tFront, tBack, h, w]; default 0.
   * With `causal`, only the spatial part: a number or [h, w] (or the full [kt − 1, 0, h, w]).
   */
  padding?:
    | number
    | readonly [number, number]
    | readonly [number, number, number]
    | readonly [number, number, number, number];
  /** Pad time with kt − 1 frames in front and none behind, so no output frame sees the future. */
  causal?: boolean;
  /**
   * [B, P, H, W, Cin], P ≤ the front time padding: the last P frames of the previous chunk,
   * used in place of the last P frames of front padding (a causal conv's feature cache).
   */
  prev?: Tensor;
}

export interface Conv2dOptions {
  /** [Cout] */
  bias?: Tensor;
  /** [h, w] or one number; default 1. */
  stride?: number | readonly [number, number];
  /** [h, w] or one number, zeros on both sides; default 0. */
  padding?: number | readonly [number, number];
}

/** x [B, F, H, W, Cin] ⊛ weight [Cout, Cin, kt, kh, kw] → [B, Fo, Ho, Wo, Cout]. */
export function conv3d(x: Tensor, weight: Tensor, opts: Conv3dOptions = {}): Tensor {
  return runOp(
    "conv3d",
    [
      ["x", x],
      ["weight", weight],
    ],
    { ...opts },
  );
}

/** x [B, H, W, Cin] ⊛ weight [Cout, Cin, kh, kw] → [B, Ho, Wo, Cout]. */
export function conv2d(x: Tensor, weight: Tensor, opts: Conv2dOptions = {}): Tensor {
  return runOp(
    "conv2d",
    [
      ["x", x],
      ["weight", weight],
    ],
    { ...opts },
  );
}

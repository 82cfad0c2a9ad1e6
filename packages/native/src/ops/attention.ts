// Attention over [B, L, H, D] token sequences, with Wan2.1's 3D RoPE and
// spatial/temporal token grouping (kernel semantics: native/include/tessera/kernels/attention.h).
import { OpError } from "../errors.js";
import type { Tensor } from "../tensor.js";
import { runOp } from "./run.js";

export type AttentionGroup = "full" | "spatial" | "temporal";

export interface RopeOptions {
  /** Channels of the head dim given to the [t, h, w] axes, each even, summing to D; default wanRopeDims(D). */
  dims?: readonly [number, number, number];
  /** Added to every token's (f, h, w) position; default [0, 0, 0]. */
  offset?: readonly [number, number, number];
  /** Base of the rotary frequencies; default 10000. */
  theta?: number;
}

export interface AttentionOptions {
  /** Multiplies q·k; default 1/sqrt(D). */
  scale?: number;
  /** Which tokens attend to which (spatial/temporal need `grid` and self-attention); default "full". */
  group?: AttentionGroup;
  /** [F, Hh, W]: the token grid of q, in f-h-w order (F·Hh·W = Lq). */
  grid?: readonly [number, number, number];
  /** Rotate q and k by Wan's 3D RoPE (needs `grid` and self-attention). */
  rope?: boolean | RopeOptions;
  /** i32 [B]: keys at or beyond keyLengths[b] are masked out. */
  keyLengths?: Tensor;
  /** f32 [H, Lq, Lk] or [B, H, Lq, Lk], added to the logits (T5 relative-position bias). */
  bias?: Tensor;
}

/**
 * softmax(scale · q kᵀ + bias + mask) v per batch and head.
 * q [B, Lq, H, D], k and v [B, Lk, H, D] → [B, Lq, H, D]. A query whose keys are all masked gives zeros.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  const rope = opts.rope;
  const ropeOpts: RopeOptions = typeof rope === "object" && rope !== null ? rope : {};
  return runOp(
    "attention",
    [
      ["q", q],
      ["k", k],
      ["v", v],
    ],
    {
      scale: opts.scale,
      group: opts.group,
      grid: opts.grid,
      rope: rope === undefined ? undefined : rope !== false,
      ropeDims: ropeOpts.dims,
      ropeOffset: ropeOpts.offset,
      ropeTheta: ropeOpts.theta,
      keyLengths: opts.keyLengths,
      bias: opts.bias,
    },
  );
}

/** Wan2.1's split of a head dim over the [t, h, w] RoPE axes: [d − 4⌊d/6⌋, 2⌊d/6⌋, 2⌊d/6⌋]. */
export function wanRopeDims(headDim: number): [number, number, number] {
  if (!Number.isInteger(headDim) || headDim <= 0 || headDim % 2 !== 0)
    throw new OpError(
      `op 'wanRopeDims': argument 'headDim' must be a positive even integer, got ${headDim}`,
      "wanRopeDims",
      "headDim",
    );
  const s = 2 * Math.floor(headDim / 6);
  return [headDim - 2 * s, s, s];
}

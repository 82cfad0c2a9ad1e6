// Normalisations over channels-last tensors and the gated residual of adaLN blocks
// (kernel semantics: native/include/tessera/kernels/norm.h).
import type { Tensor } from "../tensor.js";
import { runOp } from "./run.js";

export interface Modulation {
  /** adaLN scale, [B, C] (per sample) or x's shape (per token): y·(1 + scale). */
  scale?: Tensor;
  /** adaLN shift, same form as scale: + shift. */
  shift?: Tensor;
}

export interface LayerNormOptions extends Modulation {
  /** [C] */
  weight?: Tensor;
  /** [C] */
  bias?: Tensor;
  /** Default 1e-6. */
  eps?: number;
}

export interface RmsNormOptions extends Modulation {
  /** [C] */
  weight?: Tensor;
  /** Default 1e-6. */
  eps?: number;
}

export interface GroupNormOptions {
  /** [C] */
  weight?: Tensor;
  /** [C] */
  bias?: Tensor;
  /** Default 1e-6. */
  eps?: number;
  /** Apply SiLU after the affine transform. */
  silu?: boolean;
}

/** LayerNorm over the last dim of x [B, ..., C]: ((x − mean)/σ·w + b)·(1 + scale) + shift. */
export function layerNorm(x: Tensor, opts: LayerNormOptions = {}): Tensor {
  return runOp("layer_norm", [["x", x]], { ...opts });
}

/** RMSNorm over the last dim of x [B, ..., C]: (x/rms·w)·(1 + scale) + shift. */
export function rmsNorm(x: Tensor, opts: RmsNormOptions = {}): Tensor {
  return runOp("rms_norm", [["x", x]], { ...opts });
}

/** GroupNorm of channels-last x [B, ..., C]: statistics per sample over every position and C/groups channels. */
export function groupNorm(x: Tensor, groups: number, opts: GroupNormOptions = {}): Tensor {
  return runOp("group_norm", [["x", x]], { ...opts, groups });
}

/** x + gate·y; gate is [B, C] (per sample) or x's shape (per token). */
export function gatedResidual(x: Tensor, y: Tensor, gate: Tensor): Tensor {
  return runOp("gated_residual", [
    ["x", x],
    ["y", y],
    ["gate", gate],
  ]);
}

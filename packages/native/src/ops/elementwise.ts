// Elementwise math, softmax, and layout ops (cast, permute, slice, concat). Float
// math takes f32 on the CPU and f32/bf16/f16 on CUDA; the layout ops take every dtype.
import type { DType } from "../dtype.js";
import { OpError } from "../errors.js";
import type { Tensor } from "../tensor.js";
import { runOp } from "./run.js";

export type UnaryFn =
  | "identity"
  | "silu"
  | "gelu_tanh"
  | "gelu"
  | "exp"
  | "sigmoid"
  | "square"
  | "sqrt"
  | "rsqrt";
export type BinaryFn = "add" | "sub" | "mul" | "div" | "axpby" | "max" | "min";

/** f(alpha·x + beta) elementwise. */
export function unary(x: Tensor, fn: UnaryFn, alpha = 1, beta = 0): Tensor {
  return runOp("unary", [["x", x]], { fn, alpha, beta });
}

/** x·sigmoid(x). */
export function silu(x: Tensor): Tensor {
  return unary(x, "silu");
}

/** GELU with the tanh approximation (torch's approximate="tanh"). */
export function geluTanh(x: Tensor): Tensor {
  return unary(x, "gelu_tanh");
}

/** Exact GELU, x·Φ(x) with erf (torch's approximate="none"; CLIP ViT-H's "gelu"). */
export function gelu(x: Tensor): Tensor {
  return unary(x, "gelu");
}

/** e^x. */
export function exp(x: Tensor): Tensor {
  return unary(x, "exp");
}

/** 1 / (1 + e^-x). */
export function sigmoid(x: Tensor): Tensor {
  return unary(x, "sigmoid");
}

/** x². */
export function square(x: Tensor): Tensor {
  return unary(x, "square");
}

/** √x (NaN below zero). */
export function sqrt(x: Tensor): Tensor {
  return unary(x, "sqrt");
}

/** 1 / √x. */
export function rsqrt(x: Tensor): Tensor {
  return unary(x, "rsqrt");
}

/** alpha·x + beta. */
export function affine(x: Tensor, alpha: number, beta: number): Tensor {
  return unary(x, "identity", alpha, beta);
}

function binary(a: Tensor, b: Tensor, fn: BinaryFn, attrs: { alpha?: number; beta?: number } = {}): Tensor {
  return runOp(
    "binary",
    [
      ["a", a],
      ["b", b],
    ],
    { fn, ...attrs },
  );
}

/** a + b, with numpy broadcasting (as do all binary ops here). */
export function add(a: Tensor, b: Tensor): Tensor {
  return binary(a, b, "add");
}

/** a − b. */
export function sub(a: Tensor, b: Tensor): Tensor {
  return binary(a, b, "sub");
}

/** a · b. */
export function mul(a: Tensor, b: Tensor): Tensor {
  return binary(a, b, "mul");
}

/** a / b. */
export function div(a: Tensor, b: Tensor): Tensor {
  return binary(a, b, "div");
}

/** alpha·a + beta·b in one pass. */
export function axpby(a: Tensor, b: Tensor, alpha: number, beta: number): Tensor {
  return binary(a, b, "axpby", { alpha, beta });
}

/** Elementwise max; NaN on either side gives NaN. */
export function maximum(a: Tensor, b: Tensor): Tensor {
  return binary(a, b, "max");
}

/** Elementwise min; NaN on either side gives NaN. */
export function minimum(a: Tensor, b: Tensor): Tensor {
  return binary(a, b, "min");
}

/** Softmax over the last dim (fp32 math). */
export function softmax(x: Tensor): Tensor {
  return runOp("softmax", [["x", x]]);
}

/**
 * A contiguous copy converted to `dtype`: floats round to nearest even, float to
 * integer truncates toward zero and saturates (u8 clamps to [0, 255], NaN gives 0).
 */
export function cast(x: Tensor, dtype: DType): Tensor {
  return runOp("copy", [["x", x]], { dtype });
}

/**
 * Copies `src` into the existing contiguous tensor `dst` (same shape; cast to dst's
 * dtype), in stream order. The one op that writes in place: it refills the input
 * tensors of a captured CUDA graph (see captureGraph) before a replay.
 */
export function assign(dst: Tensor, src: Tensor): void {
  runOp("assign", [
    ["dst", dst],
    ["src", src],
  ]).dispose();
}

/** A contiguous copy with dims reordered: output dim i is x's dim dims[i] (negative dims count from the end). */
export function permute(x: Tensor, dims: readonly number[]): Tensor {
  return runOp("permute", [["x", x]], { dims });
}

/**
 * A contiguous copy of x[start:end:step] along `dim`. Negative start/end count from
 * the end as in Python; indices outside the dim are an error rather than clamped.
 */
export function slice(x: Tensor, dim: number, start: number, end: number, step = 1): Tensor {
  return runOp("slice", [["x", x]], { dim, start, end, step });
}

/** The tensors joined along `dim`; all share dtype, device and every other dim. */
export function concat(tensors: readonly Tensor[], dim: number): Tensor {
  if (tensors.length === 0)
    throw new OpError("op 'concat': argument 'tensors' must hold at least one tensor", "concat", "tensors");
  return runOp(
    "concat",
    tensors.map((t, i) => [`x${i}`, t] as const),
    { dim },
  );
}

// Tensor factories (full, zeros, ones, randn), nearest upsampling, and lookups
// (embedding tables, sinusoidal timestep embeddings).
import type { DeviceLike } from "../device.js";
import type { DType } from "../dtype.js";
import type { Shape, Tensor } from "../tensor.js";
import { runOp } from "./run.js";

export interface FactoryOptions {
  /** Default f32. */
  dtype?: DType;
  /** Default "cpu". */
  device?: DeviceLike;
}

// Passed through as a string so that the op itself rejects a bad name, as an OpError naming 'device'.
function deviceName(d: DeviceLike | undefined): string {
  return typeof d === "string" ? d : (d?.name ?? "cpu");
}

/** A tensor with every element = value (integer dtypes need an integer in range). */
export function full(shape: Shape, value: number, opts: FactoryOptions = {}): Tensor {
  return runOp("fill", [], { shape, value, dtype: opts.dtype ?? "f32", device: deviceName(opts.device) });
}

/** A tensor of zeros. */
export function zeros(shape: Shape, opts: FactoryOptions = {}): Tensor {
  return full(shape, 0, opts);
}

/** A tensor of ones. */
export function ones(shape: Shape, opts: FactoryOptions = {}): Tensor {
  return full(shape, 1, opts);
}

export interface RandnOptions {
  /** Non-negative integer up to 2^53: the stream to draw from. */
  seed: number;
  /** Index of the first element within the seed's stream (default 0): randn(n, {offset: k}) is the tail of randn(n + k). */
  offset?: number;
  /** f32, bf16 or f16 (default f32); lower precisions round the f32 values. */
  dtype?: DType;
  device?: DeviceLike;
}

/** Standard normal noise; the same seed gives the same values on every device. */
export function randn(shape: Shape, opts: RandnOptions): Tensor {
  return runOp("randn", [], {
    shape,
    seed: opts.seed,
    offset: opts.offset ?? 0,
    dtype: opts.dtype ?? "f32",
    device: deviceName(opts.device),
  });
}

/**
 * Nearest-neighbour upsampling of channels-last video [B, F, H, W, C] or images
 * [B, H, W, C]. A number scales H and W only; an array gives [st, sh, sw] (video)
 * or [sh, sw] (images).
 */
export function upsampleNearest(x: Tensor, scale: number | readonly number[]): Tensor {
  const s = typeof scale === "number" ? (x.ndim === 5 ? [1, scale, scale] : [scale, scale]) : scale;
  return runOp("upsample_nearest", [["x", x]], { scale: s });
}

/** Rows of table [V, D] picked by i32 ids [...] -> [..., D]; an id outside [0, V) gives a NaN row. */
export function embedding(ids: Tensor, table: Tensor): Tensor {
  return runOp("embedding", [
    ["ids", ids],
    ["table", table],
  ]);
}

export interface TimestepEmbeddingOptions {
  /** Longest period of the sinusoids (default 10000). */
  maxPeriod?: number;
  /** Frequencies are exp(-ln(maxPeriod)·j / (dim/2 − freqShift)) (default 0). */
  freqShift?: number;
  /** [cos, sin] halves (default true, as Wan2.1) rather than [sin, cos]. */
  cosFirst?: boolean;
  /** Output dtype: f32 (default), bf16 or f16. */
  dtype?: DType;
}

/** Sinusoidal embedding of f32 timesteps t [N] -> [N, dim] (dim even). */
export function timestepEmbedding(t: Tensor, dim: number, opts: TimestepEmbeddingOptions = {}): Tensor {
  return runOp("timestep_embedding", [["t", t]], { dim, ...opts });
}

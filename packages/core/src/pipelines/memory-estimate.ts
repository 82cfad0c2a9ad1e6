// How much memory one generation takes, from the model's configs alone (no weights
// loaded): what `tessera info` prints, and what `tessera serve` checks a request
// against before accepting it. It is an estimate meant to err high, not a measurement.
//
// The two backends differ in shape, not only in speed:
// - CUDA frees an op's buffers in stream order as soon as JS drops them, so the peak
//   is one transformer layer's activations (attention computed blockwise) or one
//   latent frame of the VAE decoder.
// - The CPU backend runs ops on an executor thread and allocates each op's output when
//   JS queues it. A denoising step is queued whole before it runs, so every layer's
//   intermediates are live at once; the VAE waits per latent frame (decodeStreaming),
//   and a 3×3×3 convolution there works on unfolded (×27) copies of its input.
// The CPU constants are fitted to the demo model's peak RSS on the CPU backend
// (128² to 512², 1 to 161 frames: the estimate is 10–40 % above every measurement).
import type { DType } from "@tessera/native";
import { type ClipVisionConfig, clipParameterCount } from "../models/clip/config.js";
import { type UMT5Config, umt5ParameterCount } from "../models/t5/config.js";
import { parameterCount, type WanTransformerConfig } from "../models/wan/config.js";
import { patchSize, spatialFactor, temporalFactor, type WanVaeConfig } from "../models/wan-vae/config.js";
import { wanVaeParams } from "../models/wan-vae/params.js";
import { blockParameterCount } from "./offload.js";

const BYTES: Record<DType, number> = { f32: 4, bf16: 2, f16: 2, i32: 4, u8: 1 };
const MiB = 2 ** 20;

export interface MemoryEstimateInput {
  transformer: WanTransformerConfig;
  vae: WanVaeConfig;
  /** Parameters of the text encoder. */
  textParams: number;
  /** Image-to-video models: parameters of the CLIP image encoder (held in the transformer's dtype). */
  imageParams?: number;
  /** The transformer's and text encoder's dtype (the VAE is counted at f32). */
  dtype: DType;
  device: "cpu" | "cuda";
  width: number;
  height: number;
  frames: number;
  /** Above 1 both guidance branches run as a batch of two (default 2, as Wan's defaults). */
  guidance?: number;
  /** A second expert (Wan2.2 A14B's transformer_2). */
  transformer2?: WanTransformerConfig;
  /** With transformer2: only the running expert is on the device, the idle one in page-locked host memory. */
  expertSwap?: boolean;
  /**
   * Weight offload: the transformer blocks' weights wait in page-locked host memory
   * and two blocks' worth of device memory holds them in turn (block-offload.ts).
   */
  offload?: boolean;
}

export interface MemoryEstimate {
  weights: number;
  /** Peak of one denoising step's activations. */
  denoise: number;
  /** Peak of the VAE decoder's activations, plus the decoded clip. */
  decode: number;
  /** What the process holds besides: Node.js, the addon and its libraries (CPU), or the CUDA context. */
  runtime: number;
  /** weights + runtime + the larger of denoise and decode (their sum on the CPU, whose allocator keeps both). */
  total: number;
  /** Two experts: the bytes of each expert's weights (in `weights` both, or with expertSwap the larger). */
  experts?: [number, number];
  /** Two experts swapped: page-locked host memory for both experts' host copies (kept once made); with offload, the blocks' host copies. */
  hostWeights?: number;
}

export function vaeParameterCount(c: WanVaeConfig): number {
  let n = 0;
  for (const s of wanVaeParams(c).values()) n += s.shape.reduce((a, b) => a * b, 1);
  return n;
}

/** The peak memory of one generation at a size, in bytes. */
export function estimateMemory(o: MemoryEstimateInput): MemoryEstimate {
  const { transformer: t, vae: v, width, height, frames } = o;
  const b = BYTES[o.dtype];
  // Two experts: both on the device, or (swapping) the larger one, the two copies in host memory.
  // With offload a transformer keeps all but its blocks on the device, plus two blocks' slots.
  const onDeviceParams = (c: WanTransformerConfig) =>
    o.offload ? parameterCount(c) - (c.num_layers - 2) * blockParameterCount(c) : parameterCount(c);
  const hostParams = (c: WanTransformerConfig) => (o.offload ? c.num_layers * blockParameterCount(c) : 0);
  const experts: [number, number] | null = o.transformer2
    ? [onDeviceParams(t) * b, onDeviceParams(o.transformer2) * b]
    : null;
  const onDevice = experts
    ? o.expertSwap
      ? Math.max(...experts)
      : experts[0] + experts[1]
    : onDeviceParams(t) * b;
  const weights = onDevice + (o.textParams + (o.imageParams ?? 0)) * b + vaeParameterCount(v) * 4;
  const offloaded = o.offload
    ? { hostWeights: (hostParams(t) + (o.transformer2 ? hostParams(o.transformer2) : 0)) * b }
    : {};
  const two = experts
    ? { experts, ...(o.expertSwap && !o.offload ? { hostWeights: experts[0] + experts[1] } : offloaded) }
    : offloaded;
  const sf = spatialFactor(v);
  const tf = temporalFactor(v);
  const latentFrames = (frames - 1) / tf + 1;
  const tokens =
    (latentFrames / t.patch_size[0]) * (height / sf / t.patch_size[1]) * (width / sf / t.patch_size[2]);
  const dim = t.num_attention_heads * t.attention_head_dim;
  const batch = (o.guidance ?? 2) > 1 ? 2 : 1;
  // Text states (and an image-to-video model's CLIP states, two images' worth at most).
  const text = batch * 512 * t.text_dim * b + (t.image_dim ? batch * 2 * 257 * t.image_dim * b : 0);
  // The decoder's widest full-size feature map.
  const base = (v.decoder_base_dim ?? v.base_dim) * (v.dim_mult[0] ?? 1);
  const pixels = height * width;
  // Its positions: Wan2.2's decoder works on pixels folded patch×patch into channels.
  const maps = pixels / patchSize(v) ** 2;
  // The clip in f32 as decoded, its read-back copy, and RGB8 frames.
  const clip = frames * pixels * 3 * (4 + 4 + 1);
  if (o.device === "cuda") {
    // Per layer: residual, q/k/v/attention output and the FFN's hidden layer.
    const denoise = batch * tokens * (6 * dim + t.ffn_dim) * b + text;
    // One latent frame: the feature map, the causal cache and a few temporaries, in f32.
    const decode = 6 * base * tf * maps * 4 + frames * pixels * 3 * 4;
    const runtime = 512 * MiB;
    return {
      weights,
      denoise,
      decode,
      runtime,
      total: weights + runtime + Math.max(denoise, decode),
      ...two,
    };
  }
  // Every layer's intermediates at once: about 14·dim + 2·ffn values per token per branch.
  const denoise = t.num_layers * batch * tokens * (14 * dim + 2 * t.ffn_dim) * b + text;
  // About three unfolded copies of the widest layer's 3×3×3 convolution input, for one latent frame.
  const decode = 3 * 27 * base * tf * maps * 4 + clip;
  const runtime = 128 * MiB;
  // The backend keeps freed blocks cached for reuse, and the decoder's differ in size
  // from the transformer's: the process holds both peaks.
  return { weights, denoise, decode, runtime, total: weights + runtime + denoise + decode, ...two };
}

/** What estimateMemory needs to know of a loaded pipeline (a WanPipeline has all of it). */
export interface EstimablePipeline {
  transformer: { config: WanTransformerConfig };
  vae: { config: WanVaeConfig };
  textEncoder: { config: UMT5Config };
  /** Image-to-video models' CLIP image encoder (absent or null otherwise). */
  imageEncoder?: { encoder: { config: ClipVisionConfig } } | null;
  dtype: DType;
  device: { kind: "cpu" | "cuda" };
  /** A second expert, and whether the idle expert waits in host memory. */
  transformer2?: { config: WanTransformerConfig } | null;
  expertSwap?: boolean;
  /** Whether the transformer blocks' weights wait in host memory (weight offload). */
  offload?: boolean;
}

/** estimateMemory for a loaded pipeline, at its own dtype and device. */
export function estimatePipelineMemory(
  p: EstimablePipeline,
  o: { width: number; height: number; frames: number; guidance?: number },
): MemoryEstimate {
  return estimateMemory({
    transformer: p.transformer.config,
    vae: p.vae.config,
    textParams: umt5ParameterCount(p.textEncoder.config),
    ...(p.imageEncoder ? { imageParams: clipParameterCount(p.imageEncoder.encoder.config) } : {}),
    dtype: p.dtype,
    device: p.device.kind,
    ...(p.transformer2 ? { transformer2: p.transformer2.config, expertSwap: p.expertSwap === true } : {}),
    ...(p.offload ? { offload: true } : {}),
    ...o,
  });
}

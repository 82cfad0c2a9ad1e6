// Wan2.1 diffusion-transformer configuration, with the field names of the published
// diffusers config (transformer/config.json) so a model folder's file loads as is.
import { imageParameterCount, validateImageConfig } from "./image.js";

export interface WanTransformerConfig {
  patch_size: [number, number, number];
  num_attention_heads: number;
  attention_head_dim: number;
  in_channels: number;
  out_channels: number;
  text_dim: number;
  freq_dim: number;
  ffn_dim: number;
  num_layers: number;
  cross_attn_norm: boolean;
  qk_norm: "rms_norm_across_heads" | null;
  eps: number;
  rope_max_seq_len: number;
  /** Image-to-video (Wan2.1 I2V / FLF2V): the CLIP image states' width (1280); null or absent for text-to-video. */
  image_dim?: number | null;
  /** Image-to-video: the input width of the image key/value projections (the model width). */
  added_kv_proj_dim?: number | null;
  /** FLF2V: learned positions for both images' CLIP tokens (2 × 257). */
  pos_embed_seq_len?: number | null;
}

/** Wan2.1-T2V-1.3B (diffusers Wan-AI/Wan2.1-T2V-1.3B-Diffusers, transformer/config.json). */
export const WAN21_T2V_1_3B: WanTransformerConfig = {
  patch_size: [1, 2, 2],
  num_attention_heads: 12,
  attention_head_dim: 128,
  in_channels: 16,
  out_channels: 16,
  text_dim: 4096,
  freq_dim: 256,
  ffn_dim: 8960,
  num_layers: 30,
  cross_attn_norm: true,
  qk_norm: "rms_norm_across_heads",
  eps: 1e-6,
  rope_max_seq_len: 1024,
};

/** Wan2.1-T2V-14B. */
export const WAN21_T2V_14B: WanTransformerConfig = {
  ...WAN21_T2V_1_3B,
  num_attention_heads: 40,
  ffn_dim: 13824,
  num_layers: 40,
};

/**
 * Wan2.2-TI2V-5B (Wan-AI/Wan2.2-TI2V-5B-Diffusers transformer/config.json): 48 latent
 * channels of the Wan2.2 VAE, 3072 wide (24 heads × 128). It takes per-frame
 * timesteps (expand_timesteps; see WanForwardInput.timesteps).
 */
export const WAN22_TI2V_5B: WanTransformerConfig = {
  ...WAN21_T2V_1_3B,
  num_attention_heads: 24,
  in_channels: 48,
  out_channels: 48,
  ffn_dim: 14336,
  num_layers: 30,
};

/** Wan2.1-I2V-14B-480P / -720P (the two share the transformer geometry). */
export const WAN21_I2V_14B: WanTransformerConfig = {
  ...WAN21_T2V_14B,
  in_channels: 36,
  image_dim: 1280,
  added_kv_proj_dim: 5120,
};

/**
 * Each expert of Wan2.2-I2V-A14B: Wan2.1-T2V-14B's geometry taking 36 channels (the
 * latents, the mask and the image's latents), with no CLIP image input (image_dim null).
 */
export const WAN22_I2V_A14B: WanTransformerConfig = { ...WAN21_T2V_14B, in_channels: 36 };

/** Wan2.1-FLF2V-14B-720P: I2V plus learned positions for the first and last image's 257 tokens each. */
export const WAN21_FLF2V_14B: WanTransformerConfig = { ...WAN21_I2V_14B, pos_embed_seq_len: 514 };

/** A tiny member of the family for tests and the CPU smoke run. */
export const WAN_TINY: WanTransformerConfig = {
  ...WAN21_T2V_1_3B,
  num_attention_heads: 2,
  attention_head_dim: 24,
  text_dim: 32,
  freq_dim: 32,
  ffn_dim: 96,
  num_layers: 2,
};

/** A tiny image-to-video member (36 input channels, 32-wide CLIP states: CLIP_VISION_TINY). */
export const WAN_I2V_TINY: WanTransformerConfig = {
  ...WAN_TINY,
  in_channels: 36,
  image_dim: 32,
  added_kv_proj_dim: 48,
};

export function innerDim(c: WanTransformerConfig): number {
  return c.num_attention_heads * c.attention_head_dim;
}

/** Parameter count implied by a config (weights and biases). */
export function parameterCount(c: WanTransformerConfig): number {
  const d = innerDim(c);
  const [pt, ph, pw] = c.patch_size;
  const patch = pt * ph * pw;
  const lin = (i: number, o: number) => i * o + o;
  const block =
    4 * lin(d, d) +
    2 * d + // self-attention + qk norms
    4 * lin(d, d) +
    2 * d + // cross-attention + qk norms
    (c.cross_attn_norm ? 2 * d : 0) +
    lin(d, c.ffn_dim) +
    lin(c.ffn_dim, d) +
    6 * d; // modulation table
  return (
    c.in_channels * patch * d +
    d + // patch embedding
    lin(c.text_dim, d) +
    lin(d, d) + // text embedder
    lin(c.freq_dim, d) +
    lin(d, d) +
    lin(d, 6 * d) + // time embedder + projection
    c.num_layers * block +
    lin(d, c.out_channels * patch) +
    2 * d + // head
    imageParameterCount(c)
  );
}

/** Checks a config for values the model cannot run with; throws naming the field. */
export function validateWanConfig(c: WanTransformerConfig): void {
  const positive = [
    "num_attention_heads",
    "attention_head_dim",
    "in_channels",
    "out_channels",
    "text_dim",
    "freq_dim",
    "ffn_dim",
    "num_layers",
  ] as const;
  for (const k of positive) {
    if (!Number.isInteger(c[k]) || c[k] <= 0)
      throw new Error(`Wan config: ${k} must be a positive integer, got ${c[k]}`);
  }
  if (
    !Array.isArray(c.patch_size) ||
    c.patch_size.length !== 3 ||
    c.patch_size.some((p) => !Number.isInteger(p) || p <= 0)
  )
    throw new Error(
      `Wan config: patch_size must be three positive integers, got ${JSON.stringify(c.patch_size)}`,
    );
  if (c.freq_dim % 2 !== 0) throw new Error(`Wan config: freq_dim must be even, got ${c.freq_dim}`);
  if (c.attention_head_dim % 2 !== 0)
    throw new Error(`Wan config: attention_head_dim must be even for RoPE, got ${c.attention_head_dim}`);
  validateImageConfig(c);
}

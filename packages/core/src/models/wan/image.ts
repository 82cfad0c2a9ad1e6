// What Wan2.1's image-to-video transformers (I2V-14B-480P/720P, FLF2V-14B) add to the
// text-to-video one: an image embedder that turns CLIP ViT-H image states into tokens
// of the model's width, and in every block's cross-attention a second attention of the
// same queries over those image tokens (their own key/value projections, an RMS norm
// on the keys), summed with the text attention before the output projection. FLF2V
// adds learned positions to the tokens of its two images (first, then last).
//
// Names are diffusers': condition_embedder.image_embedder.{norm1, ff.net.0.proj,
// ff.net.2, norm2, pos_embed}, blocks.N.attn2.{add_k_proj, add_v_proj, norm_added_k}.
import { add, attention, gelu, layerNorm, linear, rmsNorm, type Tensor } from "@tessera/native";
import type { WeightStore } from "../../weights/store.js";
import { innerDim, type WanTransformerConfig } from "./config.js";
import type { ParamSpec } from "./params.js";

const EMBEDDER = "condition_embedder.image_embedder";
// The image embedder's LayerNorms are torch's default (eps 1e-5), not the blocks' eps.
const IMAGE_NORM_EPS = 1e-5;

/** True for a transformer with the CLIP image cross-attention (image_dim set: Wan2.1 I2V / FLF2V). */
export function hasImageInput(c: WanTransformerConfig): boolean {
  return c.image_dim != null;
}

/**
 * True for a transformer that takes the image as channels concatenated to the
 * latents (mask and conditioning latents: in_channels above out_channels). Every
 * image_dim transformer does; Wan2.2 I2V-A14B does without image_dim (no CLIP).
 */
export function takesImageLatents(c: WanTransformerConfig): boolean {
  return c.in_channels > c.out_channels;
}

/** The tensors an image-to-video transformer has beyond the text-to-video ones. */
export function imageParams(c: WanTransformerConfig, p: Map<string, ParamSpec>): void {
  if (!hasImageInput(c)) return;
  const d = innerDim(c);
  const img = c.image_dim as number;
  const linear = (name: string, i: number, o: number) => {
    p.set(`${name}.weight`, { shape: [o, i], init: "normal", fanIn: i });
    p.set(`${name}.bias`, { shape: [o], init: "normal", fanIn: i * 16 });
  };
  if (c.pos_embed_seq_len != null)
    p.set(`${EMBEDDER}.pos_embed`, { shape: [1, c.pos_embed_seq_len, img], init: "normal", fanIn: 1 });
  p.set(`${EMBEDDER}.norm1.weight`, { shape: [img], init: "ones" });
  p.set(`${EMBEDDER}.norm1.bias`, { shape: [img], init: "zeros" });
  linear(`${EMBEDDER}.ff.net.0.proj`, img, img);
  linear(`${EMBEDDER}.ff.net.2`, img, d);
  p.set(`${EMBEDDER}.norm2.weight`, { shape: [d], init: "ones" });
  p.set(`${EMBEDDER}.norm2.bias`, { shape: [d], init: "zeros" });
  const kv = c.added_kv_proj_dim ?? d;
  for (let i = 0; i < c.num_layers; i++) {
    const a = `blocks.${i}.attn2`;
    linear(`${a}.add_k_proj`, kv, d);
    linear(`${a}.add_v_proj`, kv, d);
    p.set(`${a}.norm_added_k.weight`, { shape: [d], init: "ones" });
  }
}

/** Parameters the image path adds (for size estimates). */
export function imageParameterCount(c: WanTransformerConfig): number {
  const p = new Map<string, ParamSpec>();
  imageParams(c, p);
  let n = 0;
  for (const s of p.values()) n += s.shape.reduce((a, b) => a * b, 1);
  return n;
}

/** Checks the image-to-video fields of a config; throws naming the field. */
export function validateImageConfig(c: WanTransformerConfig): void {
  const d = innerDim(c);
  for (const k of ["image_dim", "added_kv_proj_dim", "pos_embed_seq_len"] as const) {
    const v = c[k];
    if (v != null && (!Number.isInteger(v) || v <= 0))
      throw new Error(`Wan config: ${k} must be a positive integer or null, got ${v}`);
  }
  if ((c.image_dim == null) !== (c.added_kv_proj_dim == null))
    throw new Error(
      `Wan config: image_dim (${c.image_dim}) and added_kv_proj_dim (${c.added_kv_proj_dim}) must be set together (image-to-video) or both be null`,
    );
  if (c.added_kv_proj_dim != null && c.added_kv_proj_dim !== d)
    throw new Error(
      `Wan config: added_kv_proj_dim is ${c.added_kv_proj_dim}, but the image tokens it projects have the model width ${d}`,
    );
  if (c.pos_embed_seq_len != null && c.image_dim == null)
    throw new Error("Wan config: pos_embed_seq_len needs image_dim (an image-to-video transformer)");
}

/**
 * CLIP image states [B, Li, image_dim] -> image tokens [B, Li, dim]: (+ positions for
 * FLF2V) LayerNorm, Linear, exact GELU, Linear, LayerNorm.
 */
export function embedImage(c: WanTransformerConfig, w: WeightStore, image: Tensor): Tensor {
  const img = c.image_dim as number;
  if (image.ndim !== 3 || image.shape[2] !== img)
    throw new Error(`WanTransformer: image states must be [B, L, ${img}], got [${image.shape.join(", ")}]`);
  let x = image;
  if (c.pos_embed_seq_len != null) {
    if (image.shape[1] !== c.pos_embed_seq_len)
      throw new Error(
        `WanTransformer: this model takes ${c.pos_embed_seq_len} image tokens (the first and the last image's CLIP states), got ${image.shape[1]}`,
      );
    x = add(image, w.get(`${EMBEDDER}.pos_embed`));
  }
  const n1 = layerNorm(x, {
    eps: IMAGE_NORM_EPS,
    weight: w.get(`${EMBEDDER}.norm1.weight`),
    bias: w.get(`${EMBEDDER}.norm1.bias`),
  });
  const h = gelu(
    linear(n1, w.get(`${EMBEDDER}.ff.net.0.proj.weight`), w.get(`${EMBEDDER}.ff.net.0.proj.bias`)),
  );
  const o = linear(h, w.get(`${EMBEDDER}.ff.net.2.weight`), w.get(`${EMBEDDER}.ff.net.2.bias`));
  return layerNorm(o, {
    eps: IMAGE_NORM_EPS,
    weight: w.get(`${EMBEDDER}.norm2.weight`),
    bias: w.get(`${EMBEDDER}.norm2.bias`),
  });
}

/**
 * Block `i`'s attention of the cross-attention queries q [B, L, H, D] over the image
 * tokens [B, Li, dim] (same heads), [B, L, H, D]: added to the text attention's output.
 */
export function imageAttention(
  c: WanTransformerConfig,
  w: WeightStore,
  i: number,
  q: Tensor,
  tokens: Tensor,
): Tensor {
  const a = `blocks.${i}.attn2`;
  const [b, li] = tokens.shape as [number, number];
  const shape = [b, li, c.num_attention_heads, c.attention_head_dim];
  const k = rmsNorm(linear(tokens, w.get(`${a}.add_k_proj.weight`), w.get(`${a}.add_k_proj.bias`)), {
    weight: w.get(`${a}.norm_added_k.weight`),
    eps: c.eps,
  });
  const v = linear(tokens, w.get(`${a}.add_v_proj.weight`), w.get(`${a}.add_v_proj.bias`));
  return attention(q, k.reshape(shape), v.reshape(shape));
}

// Single-file Wan2.1 checkpoints in the original Wan-AI naming (wan/modules/model.py
// and wan/modules/vae.py), as released by Wan-AI and repackaged by Comfy-Org
// (whose transformer files may put everything under "model.diffusion_model."),
// renamed to the diffusers names our models use (WanTransformer3DModel,
// AutoencoderKLWan). The name correspondence follows diffusers'
// scripts/convert_wan_to_diffusers.py and loaders/single_file_utils.py
// (convert_wan_transformer_to_diffusers, convert_wan_vae_to_diffusers), checked
// against the module trees of both implementations. No tensor is reshaped: the
// two namings hold identical shapes.
//
// Two traps in the transformer: the original block calls its norms norm1 (self-attn,
// no weights), norm3 (cross-attn, affine) and norm2 (before the FFN, no weights),
// while diffusers numbers them in call order, so norm3 <-> norm2 swap; and
// "modulation" means the block's scale_shift_table but head.modulation is the
// model-level one.
import { inspectWeights, type LoadWeightsOptions, loadWeights, type WeightSource } from "./load.js";
import { WeightError, type WeightStore } from "./store.js";

export type CheckpointFormat =
  /** Our own / diffusers naming for the transformer (loads as is). */
  | "wan-transformer-diffusers"
  /** Wan-AI's release naming (blocks.0.self_attn.q.weight, head.head.weight, ...). */
  | "wan-transformer-original"
  /** The same under ComfyUI's "model.diffusion_model." prefix. */
  | "wan-transformer-comfyui"
  /** diffusers AutoencoderKLWan naming (loads as is). */
  | "wan-vae-diffusers"
  /** Wan-AI's Wan2.1 VAE naming (encoder.downsamples.0.residual.0.gamma, ...), also Comfy-Org's wan_2.1_vae. */
  | "wan-vae-original"
  | "unknown";

export const COMFYUI_PREFIX = "model.diffusion_model.";

/** Tells the naming of a checkpoint from its tensor names. */
export function detectCheckpointFormat(names: Iterable<string>): CheckpointFormat {
  const set = new Set(names);
  const has = (n: string) => set.has(n);
  const anyStarts = (p: string) => {
    for (const n of set) if (n.startsWith(p)) return true;
    return false;
  };
  if (has("condition_embedder.time_embedder.linear_1.weight") || anyStarts("blocks.0.attn1."))
    return "wan-transformer-diffusers";
  const original = (p: string) =>
    has(`${p}head.modulation`) || has(`${p}time_projection.1.weight`) || anyStarts(`${p}blocks.0.self_attn.`);
  if (original(COMFYUI_PREFIX)) return "wan-transformer-comfyui";
  if (original("")) return "wan-transformer-original";
  if (has("decoder.mid_block.resnets.0.norm1.gamma") || anyStarts("encoder.down_blocks."))
    return "wan-vae-diffusers";
  if (has("decoder.middle.0.residual.0.gamma") || anyStarts("encoder.downsamples."))
    return "wan-vae-original";
  return "unknown";
}

const TOP_LINEAR: Readonly<Record<string, string>> = {
  patch_embedding: "patch_embedding",
  "text_embedding.0": "condition_embedder.text_embedder.linear_1",
  "text_embedding.2": "condition_embedder.text_embedder.linear_2",
  "time_embedding.0": "condition_embedder.time_embedder.linear_1",
  "time_embedding.2": "condition_embedder.time_embedder.linear_2",
  "time_projection.1": "condition_embedder.time_proj",
  "head.head": "proj_out",
  // Image-to-video models' CLIP-image projection (LayerNorm, Linear, GELU, Linear, LayerNorm).
  "img_emb.proj.0": "condition_embedder.image_embedder.norm1",
  "img_emb.proj.1": "condition_embedder.image_embedder.ff.net.0.proj",
  "img_emb.proj.3": "condition_embedder.image_embedder.ff.net.2",
  "img_emb.proj.4": "condition_embedder.image_embedder.norm2",
};

const ATTN_PART: Readonly<Record<string, string>> = {
  q: "to_q",
  k: "to_k",
  v: "to_v",
  o: "to_out.0",
  norm_q: "norm_q",
  norm_k: "norm_k",
};
// Only the image-to-video cross-attention has these.
const I2V_CROSS_PART: Readonly<Record<string, string>> = {
  k_img: "add_k_proj",
  v_img: "add_v_proj",
  norm_k_img: "norm_added_k",
};
const BLOCK_NORM: Readonly<Record<string, string>> = { norm1: "norm1", norm2: "norm3", norm3: "norm2" };

/**
 * The diffusers name of a Wan2.1 transformer tensor in the original (or ComfyUI-
 * prefixed) naming, or null when the name is not one of the model's tensors.
 */
export function wanTransformerKeyMap(name: string): string | null {
  const n = name.startsWith(COMFYUI_PREFIX) ? name.slice(COMFYUI_PREFIX.length) : name;
  if (n === "head.modulation") return "scale_shift_table";
  if (n === "img_emb.emb_pos") return "condition_embedder.image_embedder.pos_embed";
  let m = /^(.+)\.(weight|bias)$/.exec(n);
  if (m && Object.hasOwn(TOP_LINEAR, m[1] as string)) return `${TOP_LINEAR[m[1] as string]}.${m[2]}`;
  m = /^blocks\.(0|[1-9][0-9]*)\.(.+)$/.exec(n);
  if (!m) return null;
  const b = `blocks.${m[1]}`;
  const rest = m[2] as string;
  if (rest === "modulation") return `${b}.scale_shift_table`;
  const a = /^(self_attn|cross_attn)\.([a-z_]+)\.(weight|bias)$/.exec(rest);
  if (a) {
    const [, which, part, kind] = a as unknown as [string, string, string, string];
    const to =
      (Object.hasOwn(ATTN_PART, part) ? ATTN_PART[part] : undefined) ??
      (which === "cross_attn" && Object.hasOwn(I2V_CROSS_PART, part) ? I2V_CROSS_PART[part] : undefined);
    if (to === undefined) return null;
    return `${b}.${which === "self_attn" ? "attn1" : "attn2"}.${to}.${kind}`;
  }
  const nm = /^(norm[123])\.(weight|bias)$/.exec(rest);
  if (nm) return `${b}.${BLOCK_NORM[nm[1] as string]}.${nm[2]}`;
  const f = /^ffn\.(0|2)\.(weight|bias)$/.exec(rest);
  if (f) return `${b}.ffn.${f[1] === "0" ? "net.0.proj" : "net.2"}.${f[2]}`;
  return null;
}

/**
 * Every name in the original Wan naming (no ComfyUI prefix) that wanTransformerKeyMap
 * maps, for a transformer of `numLayers` blocks: the same tables read the other way,
 * so a LoRA in the original naming (lora_unet_blocks_0_self_attn_q) can be matched
 * against a model's diffusers names without a second table. Some of these name
 * tensors a given model lacks (image-to-video ones, biases of norms); callers keep
 * those their model has.
 */
export function wanTransformerOriginalNames(numLayers: number): string[] {
  const names = ["head.modulation", "img_emb.emb_pos"];
  const wb = (m: string) => [`${m}.weight`, `${m}.bias`];
  for (const m of Object.keys(TOP_LINEAR)) names.push(...wb(m));
  for (let i = 0; i < numLayers; i++) {
    const b = `blocks.${i}`;
    names.push(`${b}.modulation`);
    for (const which of ["self_attn", "cross_attn"])
      for (const part of [
        ...Object.keys(ATTN_PART),
        ...(which === "cross_attn" ? Object.keys(I2V_CROSS_PART) : []),
      ])
        names.push(...wb(`${b}.${which}.${part}`));
    for (const n of Object.keys(BLOCK_NORM)) names.push(...wb(`${b}.${n}`));
    for (const f of ["0", "2"]) names.push(...wb(`${b}.ffn.${f}`));
  }
  return names;
}

// The original ResidualBlock is Sequential(RMS_norm, SiLU, CausalConv3d, RMS_norm,
// SiLU, Dropout, CausalConv3d) plus a 1x1x1 shortcut when channels change.
const RESIDUAL: Readonly<Record<string, string>> = {
  "residual.0.gamma": "norm1.gamma",
  "residual.2.weight": "conv1.weight",
  "residual.2.bias": "conv1.bias",
  "residual.3.gamma": "norm2.gamma",
  "residual.6.weight": "conv2.weight",
  "residual.6.bias": "conv2.bias",
  "shortcut.weight": "conv_shortcut.weight",
  "shortcut.bias": "conv_shortcut.bias",
};
const RESAMPLE = /^(resample\.1|time_conv)\.(weight|bias)$/;
const ATTENTION = /^(norm\.gamma|to_qkv\.(weight|bias)|proj\.(weight|bias))$/;

const residual = (rest: string) => (Object.hasOwn(RESIDUAL, rest) ? (RESIDUAL[rest] as string) : null);

/**
 * The diffusers AutoencoderKLWan name of a Wan2.1 VAE tensor in the original naming,
 * or null when it is not one. The layout is Wan2.1's (base 96, dim_mult [1, 2, 4, 4],
 * two residual blocks per level, no attention outside the middle): the encoder's
 * flat downsamples list is [R, R, D] x 3 + [R, R], which diffusers keeps flat as
 * down_blocks; the decoder's upsamples list is [R, R, R, U] x 3 + [R, R, R], which
 * diffusers groups into up_blocks[i].resnets[0..2] and up_blocks[i].upsamplers[0].
 * The Wan2.2 VAE (nested residual down/up blocks) is a different layout.
 */
export function wanVaeKeyMap(name: string): string | null {
  let m = /^conv([12])\.(weight|bias)$/.exec(name);
  if (m) return `${m[1] === "1" ? "quant_conv" : "post_quant_conv"}.${m[2]}`;
  m = /^(encoder|decoder)\.(.+)$/.exec(name);
  if (!m) return null;
  const side = m[1] as string;
  const rest = m[2] as string;
  let r = /^conv1\.(weight|bias)$/.exec(rest);
  if (r) return `${side}.conv_in.${r[1]}`;
  if (rest === "head.0.gamma") return `${side}.norm_out.gamma`;
  r = /^head\.2\.(weight|bias)$/.exec(rest);
  if (r) return `${side}.conv_out.${r[1]}`;
  r = /^middle\.([012])\.(.+)$/.exec(rest);
  if (r) {
    const i = r[1] as string;
    const part = r[2] as string;
    if (i === "1") return ATTENTION.test(part) ? `${side}.mid_block.attentions.0.${part}` : null;
    const to = residual(part);
    return to === null ? null : `${side}.mid_block.resnets.${i === "0" ? 0 : 1}.${to}`;
  }
  if (side === "encoder") {
    r = /^downsamples\.(0|[1-9][0-9]*)\.(.+)$/.exec(rest);
    if (!r) return null;
    const i = Number(r[1]);
    const part = r[2] as string;
    if (i > 10) return null;
    if (i % 3 === 2) return RESAMPLE.test(part) ? `encoder.down_blocks.${i}.${part}` : null;
    const to = residual(part);
    return to === null ? null : `encoder.down_blocks.${i}.${to}`;
  }
  r = /^upsamples\.(0|[1-9][0-9]*)\.(.+)$/.exec(rest);
  if (!r) return null;
  const i = Number(r[1]);
  const part = r[2] as string;
  if (i > 14) return null;
  const stage = Math.floor(i / 4);
  const pos = i % 4;
  if (pos === 3) return RESAMPLE.test(part) ? `decoder.up_blocks.${stage}.upsamplers.0.${part}` : null;
  const to = residual(part);
  return to === null ? null : `decoder.up_blocks.${stage}.resnets.${pos}.${to}`;
}

export interface SingleFileOptions extends Omit<LoadWeightsOptions, "rename"> {
  /** Fail unless the checkpoint holds this model. */
  expect?: "transformer" | "vae";
}

/**
 * Loads a single-file Wan2.1 transformer or VAE checkpoint under diffusers names,
 * whatever naming it uses. Names the mapping does not know are an error (nothing is
 * dropped silently), except that in a ComfyUI file only the tensors under
 * "model.diffusion_model." belong to the transformer; the rest are skipped.
 */
export async function loadSingleFileCheckpoint(
  source: WeightSource,
  opts: SingleFileOptions = {},
): Promise<{ format: CheckpointFormat; weights: WeightStore }> {
  const inv = await inspectWeights(source);
  const names = [...inv.tensors.keys()];
  const format = detectCheckpointFormat(names);
  if (format === "unknown")
    throw new WeightError(
      `${inv.label}: not a Wan2.1 transformer or VAE checkpoint in a naming we know (first tensors: ${names.slice(0, 3).join(", ") || "none"})`,
    );
  const kind = format.startsWith("wan-vae") ? "vae" : "transformer";
  if (opts.expect && opts.expect !== kind)
    throw new WeightError(
      `${inv.label}: expected a Wan ${opts.expect} checkpoint, found a ${kind} (${format})`,
    );
  const { expect: _e, ...loadOpts } = opts;
  if (format === "wan-transformer-diffusers" || format === "wan-vae-diffusers")
    return { format, weights: await loadWeights(source, loadOpts) };

  const map = kind === "vae" ? wanVaeKeyMap : wanTransformerKeyMap;
  const skip = (n: string) => format === "wan-transformer-comfyui" && !n.startsWith(COMFYUI_PREFIX);
  const unknown = names.filter((n) => !skip(n) && map(n) === null);
  if (unknown.length)
    throw new WeightError(
      `${inv.label}: ${unknown.length} tensor(s) that a ${format} checkpoint should not hold: ${unknown.slice(0, 5).join(", ")}${unknown.length > 5 ? ", ..." : ""}`,
    );
  const weights = await loadWeights(source, { ...loadOpts, rename: (n) => (skip(n) ? null : map(n)) });
  return { format, weights };
}

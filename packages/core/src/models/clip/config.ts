// CLIP vision tower configuration with the field names of Hugging Face's
// CLIPVisionConfig, so an image_encoder/config.json (Wan2.1 I2V / FLF2V diffusers
// folders: CLIPVisionModel, ViT-H/14) reads as is.

export interface ClipVisionConfig {
  hidden_size: number;
  intermediate_size: number;
  num_attention_heads: number;
  num_hidden_layers: number;
  patch_size: number;
  image_size: number;
  num_channels: number;
  /** The MLP activation: "gelu" (exact, erf; ViT-H) or "quick_gelu" (x·σ(1.702x); OpenAI's ViT-L). */
  hidden_act: "gelu" | "quick_gelu";
  layer_norm_eps: number;
}

/** laion CLIP ViT-H/14, the image_encoder of Wan-AI/Wan2.1-I2V-14B-*-Diffusers. */
export const CLIP_VIT_H_14: ClipVisionConfig = {
  hidden_size: 1280,
  intermediate_size: 5120,
  num_attention_heads: 16,
  num_hidden_layers: 32,
  patch_size: 14,
  image_size: 224,
  num_channels: 3,
  hidden_act: "gelu",
  layer_norm_eps: 1e-5,
};

/** A tiny member for tests: 16 px images in 4 px patches (17 tokens). */
export const CLIP_VISION_TINY: ClipVisionConfig = {
  hidden_size: 32,
  intermediate_size: 64,
  num_attention_heads: 2,
  num_hidden_layers: 3,
  patch_size: 4,
  image_size: 16,
  num_channels: 3,
  hidden_act: "gelu",
  layer_norm_eps: 1e-5,
};

/** Tokens per image: the patches and the class token (257 for ViT-H/14 at 224). */
export function clipTokens(c: ClipVisionConfig): number {
  return (c.image_size / c.patch_size) ** 2 + 1;
}

/** Parameters of the vision tower (weights and biases, the unused final norm included). */
export function clipParameterCount(c: ClipVisionConfig): number {
  const d = c.hidden_size;
  const lin = (i: number, o: number) => i * o + o;
  const layer = 4 * lin(d, d) + lin(d, c.intermediate_size) + lin(c.intermediate_size, d) + 4 * d;
  return (
    d + // class embedding
    c.num_channels * c.patch_size ** 2 * d +
    clipTokens(c) * d +
    4 * d + // pre and post layer norms
    c.num_hidden_layers * layer
  );
}

/** The config from an image_encoder/config.json (CLIPVisionConfig fields; absent ones take HF's defaults). */
export function clipVisionConfigFromJson(
  json: unknown,
  what = "image_encoder/config.json",
): ClipVisionConfig {
  if (!json || typeof json !== "object" || Array.isArray(json))
    throw new Error(`${what}: expected a JSON object`);
  const j = json as Record<string, unknown>;
  // A full CLIPConfig nests the tower under vision_config.
  const v = (j.vision_config && typeof j.vision_config === "object" ? j.vision_config : j) as Record<
    string,
    unknown
  >;
  const num = (k: keyof ClipVisionConfig, def?: number) => {
    const x = v[k] ?? def;
    if (typeof x !== "number") throw new Error(`${what}: field '${k}' is missing or not a number`);
    return x;
  };
  const act = v.hidden_act ?? "quick_gelu";
  if (act !== "gelu" && act !== "quick_gelu")
    throw new Error(`${what}: hidden_act ${JSON.stringify(act)} is not supported (gelu or quick_gelu)`);
  const c: ClipVisionConfig = {
    hidden_size: num("hidden_size"),
    intermediate_size: num("intermediate_size"),
    num_attention_heads: num("num_attention_heads"),
    num_hidden_layers: num("num_hidden_layers"),
    patch_size: num("patch_size"),
    image_size: num("image_size"),
    num_channels: num("num_channels", 3),
    hidden_act: act,
    layer_norm_eps: num("layer_norm_eps", 1e-5),
  };
  try {
    validateClipVisionConfig(c);
  } catch (e) {
    throw new Error(`${what}: ${(e as Error).message}`);
  }
  return c;
}

/** Throws naming the field a model cannot run with. */
export function validateClipVisionConfig(c: ClipVisionConfig): void {
  for (const k of [
    "hidden_size",
    "intermediate_size",
    "num_attention_heads",
    "num_hidden_layers",
    "patch_size",
    "image_size",
    "num_channels",
  ] as const)
    if (!Number.isInteger(c[k]) || c[k] <= 0)
      throw new Error(`CLIP vision config: ${k} must be a positive integer, got ${c[k]}`);
  if (c.hidden_size % c.num_attention_heads !== 0)
    throw new Error(
      `CLIP vision config: hidden_size ${c.hidden_size} is not a multiple of num_attention_heads ${c.num_attention_heads}`,
    );
  if (c.image_size % c.patch_size !== 0)
    throw new Error(
      `CLIP vision config: image_size ${c.image_size} is not a multiple of patch_size ${c.patch_size}`,
    );
  if (c.num_hidden_layers < 2)
    throw new Error(
      "CLIP vision config: Wan takes the states before the last layer, so num_hidden_layers must be at least 2",
    );
}

// The image-to-video members of the random-weight models (model-folder.ts): Wan2.1
// I2V-14B (480P/720P share the transformer) and FLF2V-14B at their real geometries,
// and a tiny I2V model for tests, with the CLIP image encoder (image_encoder/) and
// its processor (image_processor/) of the diffusers layout; and Wan2.2 I2V-A14B (two
// experts taking the image's latents, no CLIP) with its tiny member.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CLIP_VISION_TINY, CLIP_VIT_H_14, type ClipVisionConfig } from "../models/clip/config.js";
import { clipVisionParams } from "../models/clip/params.js";
import { CLIP_MEAN, CLIP_STD } from "../models/clip/preprocess.js";
import { UMT5_TINY, UMT5_XXL } from "../models/t5/config.js";
import {
  WAN_I2V_TINY,
  WAN21_FLF2V_14B,
  WAN21_I2V_14B,
  WAN22_I2V_A14B,
  type WanTransformerConfig,
} from "../models/wan/config.js";
import { WAN_VAE_TINY, WAN21_VAE } from "../models/wan-vae/config.js";
import type { RandomModelSpec, WanModelConfigs } from "./model-folder.js";

/** The image-to-video entries of model-folder.ts's RANDOM_MODELS. */
export const I2V_RANDOM_MODELS = {
  "tiny-i2v": {
    description: "a tiny Wan2.1 I2V model, seconds on a CPU",
    configs: () => ({
      // 4 latent channels (the tiny VAE): the transformer takes 4 + 4 (mask) + 4.
      transformer: {
        ...WAN_I2V_TINY,
        in_channels: 3 * WAN_VAE_TINY.z_dim,
        out_channels: WAN_VAE_TINY.z_dim,
        text_dim: UMT5_TINY.d_model,
        image_dim: CLIP_VISION_TINY.hidden_size,
      },
      vae: WAN_VAE_TINY,
      textEncoder: UMT5_TINY,
      imageEncoder: CLIP_VISION_TINY,
      defaults: { width: 128, height: 128, frames: 17, steps: 20, fps: 8 },
      shift: 5,
    }),
  },
  "wan2.1-i2v-14b-480p": {
    description: "Wan2.1-I2V-14B-480P's geometry with its CLIP ViT-H (about 33 GB in bf16)",
    configs: () => ({
      transformer: WAN21_I2V_14B,
      vae: WAN21_VAE,
      textEncoder: UMT5_XXL,
      imageEncoder: CLIP_VIT_H_14,
      defaults: { width: 832, height: 480 },
      // Wan's recommendation for 480p image-to-video.
      shift: 3,
    }),
  },
  "wan2.1-i2v-14b-720p": {
    description: "Wan2.1-I2V-14B-720P's (the same transformer, 1280x720 defaults)",
    configs: () => ({
      transformer: WAN21_I2V_14B,
      vae: WAN21_VAE,
      textEncoder: UMT5_XXL,
      imageEncoder: CLIP_VIT_H_14,
      defaults: { width: 1280, height: 720 },
      shift: 5,
    }),
  },
  "wan2.1-flf2v-14b": {
    description: "Wan2.1-FLF2V-14B-720P's geometry (first and last frame)",
    configs: () => ({
      transformer: WAN21_FLF2V_14B,
      vae: WAN21_VAE,
      textEncoder: UMT5_XXL,
      imageEncoder: CLIP_VIT_H_14,
      defaults: { width: 1280, height: 720 },
      shift: 5,
    }),
  },
  "tiny-i2v-a14b": {
    description: "tiny-i2v's transformer as two experts without CLIP, Wan2.2 I2V-A14B's layout",
    configs: (): WanModelConfigs => {
      // tiny-i2v's 12 input channels; no image_dim, no image encoder.
      const {
        image_dim: _,
        added_kv_proj_dim: __,
        ...t
      } = I2V_RANDOM_MODELS["tiny-i2v"].configs().transformer;
      const transformer: WanTransformerConfig = t;
      return {
        transformer,
        transformer2: transformer,
        boundaryRatio: 0.9,
        vae: WAN_VAE_TINY,
        textEncoder: UMT5_TINY,
        defaults: { width: 128, height: 128, frames: 17, steps: 20, fps: 8 },
        shift: 5,
      };
    },
  },
  "wan2.2-i2v-a14b": {
    description:
      "Wan2.2-I2V-A14B's geometry: two 14B experts taking the image's latents, about 57 GB in bf16",
    // Wan-AI/Wan2.2-I2V-A14B-Diffusers: two experts handing over at boundary_ratio 0.9,
    // no image_encoder. Wan2.2's sampling for it: 40 steps, shift 5, guidance 3.5 on
    // both experts. (diffusers' converter writes flow_shift 3 into scheduler_config.json;
    // Wan's own config samples with 5.)
    configs: (): WanModelConfigs => ({
      transformer: WAN22_I2V_A14B,
      transformer2: WAN22_I2V_A14B,
      boundaryRatio: 0.9,
      vae: WAN21_VAE,
      textEncoder: UMT5_XXL,
      defaults: { steps: 40, guidance: 3.5 },
      shift: 5,
    }),
  },
} as const satisfies Record<string, RandomModelSpec>;

/** The image encoder's tensors with how model-folder.ts draws them (mean + std·N(0, 1)). */
export function clipInits(
  c: ClipVisionConfig,
): Map<string, { shape: number[]; init: { mean: number; std: number } }> {
  const out = new Map<string, { shape: number[]; init: { mean: number; std: number } }>();
  for (const [name, s] of clipVisionParams(c))
    out.set(name, { shape: s.shape, init: { mean: s.mean, std: s.std } });
  return out;
}

/** model_index.json entries an image-to-video folder adds (and its pipeline class). */
export const I2V_MODEL_INDEX = {
  _class_name: "WanImageToVideoPipeline",
  image_encoder: ["transformers", "CLIPVisionModel"],
  image_processor: ["transformers", "CLIPImageProcessor"],
} as const;

/**
 * model_index.json entries of a folder whose transformer takes the image's latents
 * without CLIP (Wan2.2 I2V-A14B): diffusers' image pipeline, the encoder listed absent.
 */
export const I2V_A14B_MODEL_INDEX = {
  _class_name: "WanImageToVideoPipeline",
  image_encoder: [null, null],
  image_processor: [null, null],
} as const;

/** Writes image_encoder/config.json and image_processor/preprocessor_config.json as transformers does. */
export async function writeImageEncoderConfigs(
  dir: string,
  c: ClipVisionConfig,
  torchDtype: string,
): Promise<void> {
  const json = (path: string, v: unknown) => writeFile(join(dir, path), `${JSON.stringify(v, null, 2)}\n`);
  await json("image_encoder/config.json", {
    architectures: ["CLIPVisionModel"],
    model_type: "clip_vision_model",
    attention_dropout: 0,
    dropout: 0,
    initializer_factor: 1,
    initializer_range: 0.02,
    projection_dim: 1024,
    torch_dtype: torchDtype,
    ...c,
  });
  await json("image_processor/preprocessor_config.json", {
    crop_size: { height: c.image_size, width: c.image_size },
    do_center_crop: true,
    do_convert_rgb: true,
    do_normalize: true,
    do_rescale: true,
    do_resize: true,
    image_mean: CLIP_MEAN,
    image_processor_type: "CLIPImageProcessor",
    image_std: CLIP_STD,
    resample: 3,
    rescale_factor: 1 / 255,
    size: { shortest_edge: c.image_size },
  });
}

// The image_encoder/ and image_processor/ components of a Wan2.1 image-to-video
// diffusers folder (Wan-AI/Wan2.1-I2V-14B-*-Diffusers, Wan2.1-FLF2V-14B-720P-diffusers):
// a transformers CLIPVisionModel and a CLIPImageProcessor.
import { join } from "node:path";
import type { Device, DType } from "@tessera/native";
import { type ClipVisionConfig, clipVisionConfigFromJson } from "../models/clip/config.js";
import { ClipVisionEncoder } from "../models/clip/encoder.js";
import { isUnusedClipTensor } from "../models/clip/params.js";
import { type ClipImageProcessorConfig, clipImageProcessorFromJson } from "../models/clip/preprocess.js";
import type { WanTransformerConfig } from "../models/wan/config.js";
import { hasImageInput } from "../models/wan/image.js";
import { type DiffusersFolder, loadComponentWeights } from "../weights/diffusers.js";
import type { ImageEncoderParts } from "./image-conditioning.js";

/** The pipeline classes a Wan model folder may name. */
export const WAN_PIPELINE_CLASSES = ["WanPipeline", "WanImageToVideoPipeline"] as const;

export interface ImageEncoderInfo {
  imageEncoder: ClipVisionConfig;
  imageProcessor: ClipImageProcessorConfig;
}

/**
 * For a transformer with image_dim (Wan2.1 I2V / FLF2V): the image encoder's and
 * processor's configs, read from the folder (errors name the file and what to do);
 * null for a transformer without one. `fail` makes the caller's error type.
 */
export function readImageEncoderInfo(
  folder: DiffusersFolder,
  transformer: WanTransformerConfig,
  fail: (message: string) => Error,
): ImageEncoderInfo | null {
  if (!hasImageInput(transformer)) return null;
  const index = join(folder.dir, "model_index.json");
  const need = (name: string, what: string) => {
    const c = folder.components.get(name);
    if (!c)
      throw fail(
        `${index}: the transformer is image-to-video (image_dim ${transformer.image_dim}) but the ${name} component (${what}) is missing; use the Wan-AI/Wan2.1-I2V-14B-*-Diffusers layout`,
      );
    return c;
  };
  const enc = need("image_encoder", "transformers CLIPVisionModel");
  const proc = need("image_processor", "transformers CLIPImageProcessor");
  let imageEncoder: ClipVisionConfig;
  let imageProcessor: ClipImageProcessorConfig;
  try {
    imageEncoder = clipVisionConfigFromJson(enc.config, enc.configFile);
    imageProcessor = clipImageProcessorFromJson(proc.config, proc.configFile);
  } catch (e) {
    throw fail((e as Error).message);
  }
  if (imageEncoder.hidden_size !== transformer.image_dim)
    throw fail(
      `${enc.configFile}: hidden_size ${imageEncoder.hidden_size} does not match the transformer's image_dim ${transformer.image_dim}`,
    );
  if (
    imageProcessor.cropHeight !== imageEncoder.image_size ||
    imageProcessor.cropWidth !== imageEncoder.image_size
  )
    throw fail(
      `${proc.configFile}: crop_size ${imageProcessor.cropWidth}x${imageProcessor.cropHeight} is not the encoder's image_size ${imageEncoder.image_size}`,
    );
  return { imageEncoder, imageProcessor };
}

/** Loads the image encoder's weights (the unused position_ids / projection tensors dropped). */
export async function loadImageEncoder(
  folder: DiffusersFolder,
  info: ImageEncoderInfo,
  device: Device,
  dtype: DType,
  onProgress?: (p: { loaded: number; total: number }) => void,
): Promise<ImageEncoderParts> {
  const weights = await loadComponentWeights(folder, "image_encoder", {
    device,
    dtype,
    filter: (n) => !isUnusedClipTensor(n),
    ...(onProgress ? { onProgress } : {}),
  });
  try {
    return { encoder: new ClipVisionEncoder(info.imageEncoder, weights), processor: info.imageProcessor };
  } catch (e) {
    weights.dispose();
    throw e;
  }
}

// Image-to-video the way Wan2.1's I2V and FLF2V models were trained (diffusers'
// WanImageToVideoPipeline): the transformer takes 36 channels — the noisy latents
// (16), a 4-channel mask of the known frames and the VAE latents (16) of a
// conditioning video that is the start image followed by zeros (FLF2V: and the end
// image as its last frame) — and the CLIP image states of the image (FLF2V: both
// images), through its image cross-attention. Wan2.2 I2V-A14B takes the same
// channels without CLIP (its transformers have no image_dim; both experts get the
// condition). Unlike the text-to-video models' image-to-video (known latent frames
// held fixed, wan.ts), nothing is substituted during sampling: the condition is the
// same at every step.
import { cast, concat, type Device, type DType, scope, Tensor, zeros } from "@tessera/native";
import type { ClipVisionEncoder } from "../models/clip/encoder.js";
import { type ClipImageProcessorConfig, clipPixels } from "../models/clip/preprocess.js";
import { hasImageInput, takesImageLatents } from "../models/wan/image.js";
import type { StepCache } from "../models/wan/step-cache.js";
import type { TokenSplit, WanForwardInput, WanTransformer } from "../models/wan/transformer.js";
import type { WanVAE } from "../models/wan-vae/vae.js";
import type { RgbImage } from "../video/frames.js";
import type { StepModel } from "./guided-velocity.js";
import { GenerateOptionError, type GenerateOptions, type ResolvedOptions } from "./options.js";
import { pixelsToTensor } from "./pixels.js";

/** What an image-conditioned run gives the transformer at every step. */
export interface ImageCondition {
  /** Mask (4) and normalised conditioning latents (16): [1, F, h, w, 20] in the transformer's dtype. */
  condition: Tensor;
  /**
   * CLIP hidden_states[-2] of the image(s): [1, tokens (×2 for FLF2V), image_dim] in
   * the transformer's dtype; null for a transformer without image_dim (Wan2.2 I2V-A14B).
   */
  image: Tensor | null;
}

/** The image encoder and its preprocessing, as a model folder's image_encoder/ and image_processor/ give them. */
export interface ImageEncoderParts {
  encoder: ClipVisionEncoder;
  processor: ClipImageProcessorConfig;
}

/** The transformer with a run's image condition bound: what the denoising loop calls. */
export function conditionedModel(t: WanTransformer, c: ImageCondition): StepModel {
  const bind = (input: WanForwardInput): WanForwardInput => ({
    ...input,
    condition: c.condition,
    ...(c.image ? { image: c.image } : {}),
  });
  return {
    config: t.config,
    weights: t.weights,
    forward: (input) => t.forward(bind(input)),
    forwardSplit: (input: WanForwardInput, split: TokenSplit) => t.forwardSplit(bind(input), split),
    forwardStepCached: (
      input: WanForwardInput,
      cache: StepCache,
      full?: boolean,
      split?: TokenSplit | null,
    ) => t.forwardStepCached(bind(input), cache, full, split ?? null),
  };
}

/**
 * What an image-conditioned transformer is, for messages: "Wan2.1 image-to-video
 * (I2V)", "Wan2.1 first-last-frame (FLF2V)" or, without CLIP, "Wan2.2 image-to-video
 * (I2V-A14B)".
 */
export function imageModelKind(c: WanTransformer["config"]): string {
  if (!hasImageInput(c)) return "Wan2.2 image-to-video (I2V-A14B)";
  return c.pos_embed_seq_len != null ? "Wan2.1 first-last-frame (FLF2V)" : "Wan2.1 image-to-video (I2V)";
}

/**
 * Checks a run's options against an image-conditioned model (throws GenerateOptionError
 * naming the option): a video input or loop has no meaning for such a model; with
 * `inputs` (the run itself, not a server's submission-time check, which has no uploads
 * yet), it needs `image`, and FLF2V (pos_embed_seq_len) `endImage` too. An I2V model may
 * take an end image as well: its CLIP tokens follow the first image's and the mask marks
 * the last frame, as for FLF2V (the model trained for it).
 */
export function checkImageConditionedOptions(
  o: GenerateOptions,
  r: ResolvedOptions,
  t: Pick<WanTransformer, "config">,
  inputs: boolean,
): void {
  if (!takesImageLatents(t.config)) return;
  const flf2v = t.config.pos_embed_seq_len != null;
  const kind = imageModelKind(t.config);
  if (o.video !== undefined && o.video !== null)
    throw new GenerateOptionError(
      "video",
      `this is a ${kind} model: it takes an image, not a video (extension and video-to-video need a text-to-video model)`,
    );
  if (o.loop)
    throw new GenerateOptionError(
      "loop",
      `loop is not supported by this ${kind} model; give endImage instead`,
    );
  if (!inputs) return;
  if (r.mode !== "i2v")
    throw new GenerateOptionError(
      "image",
      `this is a ${kind} model: give the start image (--image FILE${flf2v ? " and --end-image FILE" : ""})`,
    );
  if (flf2v && !r.endImage)
    throw new GenerateOptionError(
      "endImage",
      "this is a Wan2.1 first-last-frame (FLF2V) model: give the end image too (--end-image FILE)",
    );
}

/**
 * The 4-channel mask diffusers builds, channels-last [F, h, w, 4]: over pixel frames 1
 * where known (the first; FLF2V also the last), the first frame's entry repeated
 * `tf` times, then laid out as [latent frame, channel]. So latent frame 0 is all ones
 * and, for FLF2V, only channel tf − 1 of the last latent frame is one.
 */
export function conditionMask(
  latentFrames: number,
  h: number,
  w: number,
  tf: number,
  end: boolean,
): Float32Array {
  const frames = 1 + tf * (latentFrames - 1);
  const known = (p: number) => p === 0 || (end && p === frames - 1);
  // Entry j of the repeated sequence is pixel frame 0 for j < tf, frame j − tf + 1 after.
  const seq = Array.from({ length: tf * latentFrames }, (_, j) => (known(j < tf ? 0 : j - tf + 1) ? 1 : 0));
  const out = new Float32Array(latentFrames * h * w * tf);
  for (let f = 0; f < latentFrames; f++)
    for (let c = 0; c < tf; c++) {
      if (!seq[f * tf + c]) continue;
      for (let i = 0; i < h * w; i++) out[(f * h * w + i) * tf + c] = 1;
    }
  return out;
}

/** An RGB8 image of a [1, 1, H, W, 3] tensor in [-1, 1] (for CLIP, which preprocesses 8-bit pixels). */
async function tensorImage(t: Tensor): Promise<RgbImage> {
  const [, , h, w] = t.shape as [number, number, number, number];
  const v = await t.toFloat32Array();
  const data = new Uint8Array(v.length);
  for (let i = 0; i < v.length; i++)
    data[i] = Math.min(255, Math.max(0, Math.round(((v[i] as number) + 1) * 127.5)));
  return { data, width: w, height: h };
}

// CLIP: hidden_states[-2] of each image, FLF2V's two one after the other, in `dtype` on `device`.
async function clipStates(
  parts: ImageEncoderParts,
  images: (RgbImage | Tensor)[],
  dtype: DType,
  device: Device,
): Promise<Tensor> {
  const enc = parts.encoder;
  const encDevice = enc.weights.get(enc.weights.names()[0] as string).device;
  const rgb = await Promise.all(images.map((im) => (im instanceof Tensor ? tensorImage(im) : im)));
  const encDtype = enc.weights.get(enc.weights.names()[0] as string).dtype;
  const states = scope(() => {
    const each = rgb.map((im) => {
      const px = clipPixels(im, parts.processor, encDevice);
      return enc.encode(px.dtype === encDtype ? px : cast(px, encDtype));
    });
    const s = each.length === 1 ? (each[0] as Tensor) : concat(each, 1);
    return s.dtype === dtype ? s : cast(s, dtype);
  });
  if (encDevice.equals(device)) return states;
  const moved = await states.to(device);
  states.dispose();
  return moved;
}

/**
 * Encodes a run's image (and end image) into the condition: CLIP states of each image
 * (with `parts`, the image encoder; null for a transformer without image_dim), and
 * the VAE latents of the conditioning video with the mask before them. `dtype` and
 * the VAE's device are what the condition is made in.
 */
export async function encodeImageCondition(
  parts: ImageEncoderParts | null,
  vae: WanVAE,
  r: ResolvedOptions,
  image: RgbImage | Tensor,
  endImage: RgbImage | Tensor | null,
  dtype: DType,
): Promise<ImageCondition> {
  const vaeW = vae.weights.get(vae.weights.names()[0] as string);
  const images = endImage ? [image, endImage] : [image];
  const imageStates = parts ? await clipStates(parts, images, dtype, vaeW.device) : null;

  // The conditioning video: the image, zeros, (the end image); VAE-encoded and normalised.
  const tf = vae.temporalFactor;
  const sf = vae.spatialFactor;
  const [h, w] = [r.height / sf, r.width / sf];
  const encodeCondition = () =>
    scope(() => {
      const frame = (im: RgbImage | Tensor) =>
        im instanceof Tensor
          ? im.dtype === vaeW.dtype
            ? im
            : cast(im, vaeW.dtype)
          : pixelsToTensor([im.data], im.width, im.height, r.width, r.height, {
              device: vaeW.device,
              dtype: vaeW.dtype,
            });
      for (const im of images)
        if (im instanceof Tensor && (im.shape[2] !== r.height || im.shape[3] !== r.width))
          throw new GenerateOptionError(
            im === image ? "image" : "endImage",
            `an image tensor must be [1, 1, ${r.height}, ${r.width}, 3] (the generation size), got [${im.shape.join(", ")}]`,
          );
      const gap = r.frames - images.length;
      const video = concat(
        [
          frame(image),
          ...(gap > 0
            ? [zeros([1, gap, r.height, r.width, 3], { device: vaeW.device, dtype: vaeW.dtype })]
            : []),
          ...(endImage ? [frame(endImage)] : []),
        ],
        1,
      );
      const lat = vae.encode(video);
      const mask = Tensor.from(
        conditionMask(r.latentFrames, h, w, tf, endImage !== null),
        [1, r.latentFrames, h, w, tf],
        {
          device: vaeW.device,
        },
      );
      const c = concat([mask, lat.dtype === "f32" ? lat : cast(lat, "f32")], 4);
      return c.dtype === dtype ? c : cast(c, dtype);
    });
  try {
    return { condition: encodeCondition(), image: imageStates };
  } catch (e) {
    imageStates?.dispose();
    throw e;
  }
}

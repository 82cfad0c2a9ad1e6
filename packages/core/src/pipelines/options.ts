// Checking generate() options against the model before anything is allocated,
// with messages that name the option, so a bad request fails in milliseconds
// rather than after the text encoder has run.
import type { Tensor } from "@tessera/native";
import {
  type CheckOptions,
  type ParamKey,
  type ParamKeyOn,
  param,
  paramsOn,
  problem,
  staticDefault,
} from "../params/index.js";
import type { SchedulerName } from "../schedulers/common.js";
import type { RgbImage, VideoFrames } from "../video/frames.js";
import type { PreviewFrames, PreviewOptions } from "./preview.js";

export class GenerateOptionError extends Error {
  override name = "GenerateOptionError";
  constructor(
    /** The generate() option at fault ("width", "frames", "strength", …). */
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** Thrown when a run is stopped through its AbortSignal; everything it allocated is freed first. */
export class AbortError extends Error {
  override name = "AbortError";
  constructor(message = "generation was aborted", options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface GenerateProgress {
  /** Steps done in this run, 1..total. */
  step: number;
  total: number;
  /** Milliseconds since the first denoising step started. */
  elapsed: number;
  /** Estimated milliseconds left for the remaining steps (from the mean step time so far). */
  eta: number;
  /** The model timestep and σ of the step just done. */
  timestep: number;
  sigma: number;
  /**
   * With `preview` on: the current denoised estimate as small RGB8 frames (latent
   * resolution, one per latent frame), on the steps the preview budget allows.
   */
  preview?: PreviewFrames;
}

/**
 * A LoRA for a run: a .safetensors file, or the name of one in the pipeline's LoRA
 * folder (`loraDir`: name.safetensors there), with its strength (default 1).
 */
export type LoraSpec =
  | { path: string; name?: undefined; strength?: number }
  | { name: string; path?: undefined; strength?: number };

export interface GenerateOptions {
  prompt: string;
  /** Default "" (as diffusers' WanPipeline). */
  negativePrompt?: string;
  /**
   * Text-encoder states instead of the encoded prompt (diffusers' prompt_embeds):
   * [seq, text_dim] or [1, seq, text_dim], f32/bf16/f16, seq up to the model's text
   * length (512), zero-padded to it as Wan pads its own states. With it the text
   * encoder does not run for the prompt, and `prompt` must be "". Not disposed.
   */
  promptEmbeds?: Tensor;
  /** As promptEmbeds, for the unconditional branch instead of negativePrompt (used when guidance > 1). */
  negativePromptEmbeds?: Tensor;
  width?: number;
  height?: number;
  /** 1 + 4k. */
  frames?: number;
  steps?: number;
  /** Classifier-free guidance scale; at 1 or below only the conditional branch runs. */
  guidance?: number;
  shift?: number;
  scheduler?: SchedulerName;
  /**
   * Timesteps to sample at (decreasing, in (0, 1000]) instead of `steps` evenly spaced,
   * with diffusers' meaning (FlowMatchEulerDiscreteScheduler.set_timesteps(timesteps=…)):
   * σ = shift(t / 1000), the model is given t. Runs the Euler sampler.
   */
  timesteps?: number[];
  /**
   * Noise levels before the shift (decreasing, in (0, 1]), as diffusers'
   * set_timesteps(sigmas=…): σ = shift(s), the model is given σ·1000 (lightx2v's
   * distillation step list 1000,750,500,250 is sigmas 1,0.75,0.5,0.25). Runs the Euler sampler.
   */
  sigmas?: number[];
  /**
   * LoRAs merged into the transformer for this run (and kept merged while later runs
   * ask for the same set); [] runs without any. Absent: the LoRAs given at load.
   */
  loras?: LoraSpec[];
  /** LoRAs for the second (low-noise) expert of a two-expert model; a one-expert model refuses them. */
  loras2?: LoraSpec[];
  /** Non-negative integer below 2^53; drawn at random (and reported) when absent. */
  seed?: number;
  /** Image-to-video: the image becomes the first frame (RGB8 of any size, or a [1, 1, H, W, 3] tensor in [-1, 1]). */
  image?: RgbImage | Tensor;
  /**
   * With `extend`: the clip to continue. Without: video-to-video input. RGB8 frames of
   * any size, or a [1, T, H, W, 3] tensor in [-1, 1] at the generation size.
   */
  video?: VideoFrames | Tensor;
  /** Continue `video`: the output's first `contextFrames` frames re-create its last ones. */
  extend?: boolean;
  /** Frames of `video` the extension is conditioned on, 1 + 4j (default about a quarter of the output). */
  contextFrames?: number;
  /** Tie the last latent frame to the first, so the clip ends where it began. */
  loop?: boolean;
  /**
   * The clip ends on this image (held for its last latent frame: the VAE's temporal
   * factor in frames). With `image`: interpolation between two frames. RGB8 of any
   * size, or a [1, 1, H, W, 3] tensor in [-1, 1] at the generation size.
   */
  endImage?: RgbImage | Tensor;
  /** Video-to-video: how much of the schedule to run, in (0, 1] (default 0.8, as diffusers). */
  strength?: number;
  /**
   * For a model with a caption style (the bundled demo model): rewrite the prompt onto
   * it (default true). Ignored by models trained on free text.
   */
  rewrite?: boolean;
  /**
   * Step caching (First-Block Cache): the threshold on the first block's relative
   * change, accumulated since the last full step, under which a step reuses the other
   * blocks' residual instead of running them (0.05 to 0.2 are typical; 0 runs every
   * step in full). Off (false) by default. The first and last steps always run in full.
   */
  stepCache?: number | false;
  /**
   * On a CUDA device, capture the denoising step as a CUDA graph after the first step
   * and replay it for the rest (default true). Ignored on the CPU and with stepCache
   * (which reads a value back at every step). If the capture is refused, every step
   * runs as without it and the result's `stepGraph` says why.
   */
  cudaGraph?: boolean;
  onProgress?: (p: GenerateProgress) => void;
  /**
   * Live previews in onProgress: a latent-to-RGB projection of the denoised estimate,
   * at most `maxShare` (default 2%) of the run's time. Needs a model with a projection
   * (tessera.json's preview.latentRgb, or Wan2.1's z16 VAE); ignored otherwise.
   */
  preview?: boolean | PreviewOptions;
  signal?: AbortSignal;
}

export interface GenerationDefaults {
  width: number;
  height: number;
  frames: number;
  steps: number;
  guidance: number;
  shift: number;
  scheduler: SchedulerName;
  fps: number;
}

/** What the model's geometry allows. */
export interface ModelLimits {
  /** Pixels per latent × patch, along H and W (8 × 2 = 16 for Wan2.1). */
  sideMultiple: number;
  /** Frames per latent frame after the first (4). */
  temporalFactor: number;
  /** Latent frames must be a multiple of the transformer's temporal patch (1). */
  temporalPatch: number;
  maxSide: number;
  maxFrames: number;
  /** Transformers that share the denoising (2 for Wan2.2 A14B's high- and low-noise experts); 1 when absent. */
  experts?: number;
}

export type Mode = "t2v" | "i2v" | "extend" | "v2v";

export interface ResolvedOptions {
  mode: Mode;
  prompt: string;
  negativePrompt: string;
  width: number;
  height: number;
  frames: number;
  latentFrames: number;
  steps: number;
  guidance: number;
  shift: number;
  scheduler: SchedulerName;
  /** An explicit schedule (timesteps and/or sigmas, diffusers' meaning), or null for `steps` evenly spaced. */
  schedule: { timesteps?: number[]; sigmas?: number[] } | null;
  seed: number;
  strength: number;
  loop: boolean;
  /** Latent frames held to known values (image or extension context) at the start of the clip. */
  knownLatentFrames: number;
  /** Pixel frames of the input clip the extension re-creates. */
  contextFrames: number;
  /** The step-cache threshold, or false (off). */
  stepCache: number | false;
  /** Capture the step as a CUDA graph where the device allows it. */
  cudaGraph: boolean;
  /** The last latent frame is held to the encoded endImage. */
  endImage: boolean;
}

function isTensorLike(x: unknown): x is Tensor {
  return typeof x === "object" && x !== null && "shape" in x && "dtype" in x && "dispose" in x;
}

function framesOf(v: VideoFrames | Tensor): number {
  return isTensorLike(v) ? (v.shape[1] ?? 0) : v.frames.length;
}

// The options the schema declares for the library and GenerateOptions are the same set:
// a parameter added to one and not the other fails to compile here.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const libraryOptionsMatchSchema: Same<
  ParamKeyOn<"library">,
  Exclude<keyof GenerateOptions, "onProgress" | "signal" | "preview">
> = true;
void libraryOptionsMatchSchema;

/** `value` checked against the declaration of `key` (type, range, the model's limits). */
function checked<T>(key: ParamKey, value: unknown, limits: ModelLimits, o?: CheckOptions): T {
  const message = problem(param(key), value, key, limits, o);
  if (message !== null) throw new GenerateOptionError(key, message);
  return value as T;
}

/** The option as given (already checked), else the model's default, checked in its turn. */
function orModel<T>(key: ParamKey, given: T | undefined, fallback: T, limits: ModelLimits): T {
  return given !== undefined ? given : checked<T>(key, fallback, limits);
}

export function resolveOptions(
  o: GenerateOptions,
  d: GenerationDefaults,
  limits: ModelLimits,
  randomSeed: () => number,
): ResolvedOptions {
  if (o === null || typeof o !== "object")
    throw new GenerateOptionError("options", "generate() needs an options object");
  // Every option given, and the prompt, against its declaration in the parameter schema.
  for (const spec of paramsOn("library")) {
    const v = (o as unknown as Record<string, unknown>)[spec.key];
    if (v !== undefined || spec.required) checked(spec.key as ParamKey, v, limits);
  }

  embedsAgainstText(o);
  const hasVideo = o.video !== undefined && o.video !== null;
  const hasImage = o.image !== undefined && o.image !== null;
  if (o.extend && !hasVideo) throw new GenerateOptionError("extend", "extend needs a video to continue");
  if (hasImage && hasVideo)
    throw new GenerateOptionError(
      "image",
      "give either image (image-to-video) or video (extension / video-to-video), not both",
    );
  if (o.extend && o.strength !== undefined)
    throw new GenerateOptionError(
      "strength",
      "strength applies to video-to-video; it cannot be combined with extend",
    );
  if (o.strength !== undefined && !hasVideo)
    throw new GenerateOptionError("strength", "strength needs a video (video-to-video)");
  if (o.contextFrames !== undefined && !o.extend)
    throw new GenerateOptionError("contextFrames", "contextFrames applies to extend only");
  if (hasImage && isTensorLike(o.image) && (o.image.ndim !== 5 || o.image.shape[1] !== 1))
    throw new GenerateOptionError(
      "image",
      `an image tensor must be [1, 1, H, W, 3] in [-1, 1], got [${o.image.shape.join(", ")}]`,
    );
  const hasEnd = o.endImage !== undefined && o.endImage !== null;
  if (hasEnd && hasVideo)
    throw new GenerateOptionError(
      "endImage",
      "endImage cannot be combined with video (extension / video-to-video); use it with or without image",
    );
  if (hasEnd && o.loop)
    throw new GenerateOptionError("endImage", "endImage and loop both set the last frame; give one of them");
  if (hasEnd && isTensorLike(o.endImage) && (o.endImage.ndim !== 5 || o.endImage.shape[1] !== 1))
    throw new GenerateOptionError(
      "endImage",
      `an endImage tensor must be [1, 1, H, W, 3] in [-1, 1], got [${o.endImage.shape.join(", ")}]`,
    );
  const mode: Mode = hasImage ? "i2v" : hasVideo ? (o.extend ? "extend" : "v2v") : "t2v";

  const width = orModel("width", o.width, d.width, limits);
  const height = orModel("height", o.height, d.height, limits);

  const tf = limits.temporalFactor;
  const videoFrames = hasVideo ? framesOf(o.video as VideoFrames | Tensor) : 0;
  // Video-to-video keeps the clip's length unless told otherwise (as many 1 + 4k frames as it has).
  const defaultFrames =
    mode === "v2v" && videoFrames > 0
      ? Math.min(limits.maxFrames, 1 + tf * Math.floor((videoFrames - 1) / tf))
      : d.frames;
  const frames = orModel("frames", o.frames, defaultFrames, limits);
  const latentFrames = (frames - 1) / tf + 1;
  if (latentFrames % limits.temporalPatch !== 0)
    throw new GenerateOptionError(
      "frames",
      `frames gives ${latentFrames} latent frames, not a multiple of the temporal patch ${limits.temporalPatch}`,
    );

  // An explicit schedule sets the step count and runs the sampler that takes one.
  const list = o.timesteps ?? o.sigmas;
  if (o.timesteps && o.sigmas && o.timesteps.length !== o.sigmas.length)
    throw new GenerateOptionError(
      "sigmas",
      `sigmas has ${o.sigmas.length} values and timesteps ${o.timesteps.length}; give lists of one length`,
    );
  const listKey = o.timesteps ? "timesteps" : "sigmas";
  if (list && o.steps !== undefined && o.steps !== list.length)
    throw new GenerateOptionError(
      "steps",
      `steps is ${o.steps} but ${listKey} has ${list.length} values; leave steps out (the list sets it)`,
    );
  if (list && o.scheduler !== undefined && o.scheduler !== "euler")
    throw new GenerateOptionError(
      "scheduler",
      `${listKey} runs the euler sampler (UniPC takes no explicit schedule, as in diffusers); leave scheduler out or give 'euler'`,
    );
  const steps = list ? list.length : orModel("steps", o.steps, d.steps, limits);
  const guidance = orModel("guidance", o.guidance, d.guidance, limits);
  const shift = orModel("shift", o.shift, d.shift, limits);
  const scheduler = list ? "euler" : orModel("scheduler", o.scheduler, d.scheduler, limits);
  if (o.loras2 !== undefined && o.loras2.length > 0 && (limits.experts ?? 1) < 2)
    throw new GenerateOptionError(
      "loras2",
      "loras2 is for the low-noise expert of a two-expert model (Wan2.2 A14B); this model has one expert (its transformer): give its LoRAs as loras",
    );
  const seed = o.seed ?? randomSeed();

  let strength = 1;
  if (mode === "v2v") {
    strength = o.strength ?? (staticDefault("strength") as number);
    if (Math.floor(steps * strength) < 1)
      throw new GenerateOptionError(
        "strength",
        `strength ${strength} with ${steps} steps runs no step (floor(steps × strength) = 0); raise strength or steps`,
      );
    if (videoFrames < frames)
      throw new GenerateOptionError("video", `video has ${videoFrames} frames but frames is ${frames}`);
  }

  let knownLatentFrames = mode === "i2v" ? 1 : 0;
  let contextFrames = 0;
  if (mode === "extend") {
    if (latentFrames < 2)
      throw new GenerateOptionError(
        "frames",
        `extend needs frames of at least ${1 + tf} (one new latent frame), got ${frames}`,
      );
    if (videoFrames < 1) throw new GenerateOptionError("video", "video to extend has no frames");
    const maxKnown = Math.min(latentFrames - 1, 1 + Math.floor((videoFrames - 1) / tf));
    if (o.contextFrames !== undefined) {
      const c = checked<number>("contextFrames", o.contextFrames, limits, { max: videoFrames });
      if ((c - 1) / tf + 1 > latentFrames - 1)
        throw new GenerateOptionError(
          "contextFrames",
          `contextFrames ${c} leaves nothing to generate in ${frames} frames; use at most ${1 + tf * (latentFrames - 2)}`,
        );
      knownLatentFrames = (c - 1) / tf + 1;
    } else {
      knownLatentFrames = Math.max(1, Math.min(maxKnown, Math.floor(latentFrames / 4)));
    }
    contextFrames = 1 + tf * (knownLatentFrames - 1);
  }
  if (o.loop && latentFrames < 2)
    throw new GenerateOptionError("loop", `loop needs frames of at least ${1 + tf}, got ${frames}`);
  if (hasEnd && latentFrames < 2)
    throw new GenerateOptionError("endImage", `endImage needs frames of at least ${1 + tf}, got ${frames}`);
  if (o.loop && mode === "extend" && knownLatentFrames === latentFrames - 1)
    throw new GenerateOptionError(
      "loop",
      "loop with extend leaves no free frame; give more frames or fewer contextFrames",
    );
  if (o.onProgress !== undefined && typeof o.onProgress !== "function")
    throw new GenerateOptionError("onProgress", "onProgress must be a function");

  return {
    mode,
    prompt: o.prompt,
    negativePrompt: o.negativePrompt ?? (staticDefault("negativePrompt") as string),
    width,
    height,
    frames,
    latentFrames,
    steps,
    guidance,
    shift,
    scheduler,
    schedule: list
      ? {
          ...(o.timesteps ? { timesteps: [...o.timesteps] } : {}),
          ...(o.sigmas ? { sigmas: [...o.sigmas] } : {}),
        }
      : null,
    seed,
    strength,
    loop: o.loop === true,
    knownLatentFrames,
    contextFrames,
    stepCache: o.stepCache === undefined || o.stepCache === false ? false : o.stepCache,
    cudaGraph: o.cudaGraph ?? (staticDefault("cudaGraph") as boolean),
    endImage: hasEnd,
  };
}

// Text or its states for each branch, not both (as diffusers' check_inputs); the tensors
// themselves are checked against the model by WanPipeline.resolve.
function embedsAgainstText(o: GenerateOptions): void {
  if (o.promptEmbeds != null && o.prompt.trim() !== "")
    throw new GenerateOptionError(
      "prompt",
      'give prompt or promptEmbeds, not both: with promptEmbeds the prompt is not encoded, so leave it empty ("")',
    );
  if (o.negativePromptEmbeds != null && o.negativePrompt !== undefined && o.negativePrompt.trim() !== "")
    throw new GenerateOptionError(
      "negativePrompt",
      "give negativePrompt or negativePromptEmbeds, not both: with negativePromptEmbeds the negative prompt is not encoded",
    );
}

/** Wan's prompt clean-up (whitespace_clean): runs of whitespace become one space, ends trimmed. */
export function cleanPrompt(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

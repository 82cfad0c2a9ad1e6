// The generation parameters, declared once. The library's checks (resolveOptions),
// the HTTP API's request schema, /openapi.json and field checks, and the CLI's
// `generate` flags and help are all derived from this list; adding a parameter is
// one entry here plus its use in the pipeline (and a GenerateOptions member when
// the library carries it, which the compiler insists on).
//
// The order is the order of /openapi.json's fields and of `tessera generate --help`.
import type { ParamSpec } from "./types.js";

export const GENERATION_PARAMS = [
  {
    key: "prompt",
    description: "What the video shows.",
    type: { kind: "text" },
    required: true,
    surfaces: ["library", "server", "cli"],
    server: {
      field: "prompt",
      note: "Any Unicode text; control characters other than tab and newline are refused.",
    },
    cli: { flag: "PROMPT", positional: true },
  },
  {
    key: "negativePrompt",
    description: "What to steer away from.",
    type: { kind: "text" },
    default: { value: "" },
    surfaces: ["library", "server", "cli"],
    server: { field: "negative_prompt" },
    cli: { flag: "negative", value: "TEXT" },
  },
  {
    key: "promptEmbeds",
    description:
      "Text-encoder states instead of the encoded prompt (diffusers' prompt_embeds), [seq, text_dim] or " +
      "[1, seq, text_dim], zero-padded to the model's text length as Wan pads its own; the prompt stays empty.",
    type: { kind: "input", media: "embeddings" },
    default: { note: "the prompt, encoded" },
    surfaces: ["library", "cli"],
    cli: { flag: "prompt-embeds", value: "FILE" },
  },
  {
    key: "negativePromptEmbeds",
    description:
      "Text-encoder states instead of the encoded negative prompt (diffusers' negative_prompt_embeds), as promptEmbeds.",
    type: { kind: "input", media: "embeddings" },
    default: { note: "the negative prompt, encoded" },
    surfaces: ["library", "cli"],
    cli: { flag: "negative-prompt-embeds", value: "FILE" },
  },
  {
    key: "model",
    description: "The served model's name (see GET /healthz); optional.",
    type: { kind: "text", maxLength: 200 },
    surfaces: ["server"],
    server: { field: "model" },
  },
  {
    key: "size",
    description: "Width and height in pixels, WIDTHxHEIGHT.",
    type: { kind: "size" },
    default: { model: ["width", "height"] },
    surfaces: ["server", "cli"],
    spells: ["width", "height"],
    server: { field: "size", example: "832x480" },
    cli: { flag: "size", value: "WxH" },
  },
  {
    key: "width",
    description: "Width in pixels.",
    type: { kind: "integer", min: "sideMultiple", max: "maxSide", multipleOf: "sideMultiple" },
    default: { model: "width" },
    surfaces: ["library"],
  },
  {
    key: "height",
    description: "Height in pixels.",
    type: { kind: "integer", min: "sideMultiple", max: "maxSide", multipleOf: "sideMultiple" },
    default: { model: "height" },
    surfaces: ["library"],
  },
  {
    key: "seconds",
    description: "Length in seconds; turned into the nearest frame count of the form 1 + 4k.",
    type: { kind: "number", min: 0, exclusiveMin: true, max: 3600 },
    surfaces: ["server"],
    spells: ["frames"],
    exclusiveWith: ["frames"],
    server: { field: "seconds" },
  },
  {
    key: "frames",
    description: "Frame count.",
    type: { kind: "integer", min: 1, max: "maxFrames", temporal: true },
    default: { model: "frames" },
    surfaces: ["library", "server", "cli"],
    server: { field: "frames" },
    cli: { flag: "frames", value: "N" },
  },
  {
    key: "steps",
    description: "Denoising steps.",
    type: { kind: "integer", min: 1, max: 1000 },
    default: { model: "steps" },
    surfaces: ["library", "server", "cli"],
    server: { field: "steps" },
    cli: { flag: "steps", value: "N" },
  },
  {
    key: "guidance",
    description: "Classifier-free guidance scale; at 1 or below only the conditional branch runs.",
    type: { kind: "number", min: 0, max: 100 },
    default: { model: "guidance" },
    surfaces: ["library", "server", "cli"],
    server: { field: "guidance" },
    cli: { flag: "guidance", value: "X" },
  },
  {
    key: "guidance2",
    description:
      "The guidance scale of the second (low-noise) expert of a two-expert model (Wan2.2 A14B), diffusers' " +
      "guidance_scale_2; a model with one expert refuses it.",
    type: { kind: "number", min: 0, max: 100 },
    default: { note: "guidance" },
    surfaces: ["library", "server", "cli"],
    server: { field: "guidance_2" },
    cli: { flag: "guidance-2", value: "X" },
  },
  {
    key: "shift",
    description: "Timestep shift of the noise schedule.",
    type: { kind: "number", min: 0, exclusiveMin: true, max: 100 },
    default: { model: "shift" },
    surfaces: ["library", "cli"],
    cli: { flag: "shift", value: "X" },
  },
  {
    key: "scheduler",
    description: "The sampler.",
    type: { kind: "choice", choices: ["unipc", "euler"] },
    default: { model: "scheduler" },
    surfaces: ["library", "cli"],
    cli: { flag: "scheduler", value: "NAME" },
  },
  {
    key: "timesteps",
    description:
      "The timesteps to sample at instead of steps evenly spaced, as diffusers' " +
      "FlowMatchEulerDiscreteScheduler.set_timesteps(timesteps=…): each step's noise level is shift(t / 1000) " +
      "and the model is given t itself. Runs the Euler sampler; steps, if given, must equal its length.",
    type: { kind: "numbers", min: 0, exclusiveMin: true, max: 1000, maxItems: 1000 },
    default: { note: "steps evenly spaced" },
    surfaces: ["library", "server", "cli"],
    server: { field: "timesteps", example: "[1000, 750, 500, 250]" },
    cli: { flag: "timesteps", value: "T1,T2,…" },
  },
  {
    key: "sigmas",
    description:
      "The noise levels to sample at, before the shift, as diffusers' set_timesteps(sigmas=…): each step's " +
      "noise level is shift(s) and the model is given it × 1000. A distillation LoRA's step list " +
      "(lightx2v's denoising_step_list 1000,750,500,250 with shift 5) is sigmas 1,0.75,0.5,0.25. Runs the Euler " +
      "sampler; with timesteps too, the model is given those.",
    type: { kind: "numbers", min: 0, exclusiveMin: true, max: 1, maxItems: 1000 },
    default: { note: "steps evenly spaced" },
    surfaces: ["library", "server", "cli"],
    server: { field: "sigmas", example: "[1, 0.75, 0.5, 0.25]" },
    cli: { flag: "sigmas", value: "S1,S2,…" },
  },
  {
    key: "loras",
    description:
      "LoRAs merged into the transformer for this run, each with a strength (scale = strength × alpha / rank); " +
      "merged once and kept while later runs ask for the same ones.",
    type: { kind: "loras", maxItems: 16, strength: { min: -100, max: 100, default: 1 } },
    default: { note: "none (the library: those given to WanPipeline.load)" },
    surfaces: ["library", "server", "cli"],
    server: {
      field: "loras",
      note: "By name, from GET /v1/loras (the folder the server was started with, --loras DIR); never a path.",
      example: '[{"name": "style", "strength": 0.8}]',
    },
    cli: { flag: "lora", value: "FILE[:STRENGTH]", repeatable: true },
  },
  {
    key: "loras2",
    description:
      "LoRAs for the second (low-noise) expert of a two-expert model (Wan2.2 A14B); a model with one expert refuses them.",
    type: { kind: "loras", maxItems: 16, strength: { min: -100, max: 100, default: 1 } },
    default: { note: "none" },
    surfaces: ["library", "server", "cli"],
    server: {
      field: "loras_2",
      note: "By name, as loras; only for a server whose model has two experts.",
      example: '[{"name": "lightning-low", "strength": 1}]',
    },
    cli: { flag: "lora-2", value: "FILE[:STRENGTH]", repeatable: true },
  },
  {
    key: "seed",
    description: "Random seed; the same seed and settings give the same video.",
    type: { kind: "integer", min: 0, max: Number.MAX_SAFE_INTEGER },
    default: { note: "drawn at random, and reported" },
    surfaces: ["library", "server", "cli"],
    server: { field: "seed" },
    cli: { flag: "seed", value: "N" },
  },
  {
    key: "image",
    description: "Image-to-video: the image becomes the first frame.",
    type: { kind: "input", media: "image" },
    surfaces: ["library", "server", "cli"],
    server: { field: "image", upload: true },
    cli: { flag: "image", value: "FILE" },
  },
  {
    key: "endImage",
    description:
      "The clip ends on this image (with image: interpolation between the two; a Wan2.1 FLF2V model needs both).",
    type: { kind: "input", media: "image" },
    surfaces: ["library", "server", "cli"],
    server: { field: "end_image", upload: true },
    cli: { flag: "end-image", value: "FILE" },
  },
  {
    key: "video",
    description: "Video-to-video input; with extend, the clip to continue.",
    type: { kind: "input", media: "video" },
    surfaces: ["library", "server", "cli"],
    server: { field: "video", upload: true },
    cli: { flag: "video", value: "FILE" },
  },
  {
    key: "strength",
    description: "Video-to-video only: how much of the schedule to run.",
    type: { kind: "number", min: 0, exclusiveMin: true, max: 1 },
    default: { value: 0.8 },
    surfaces: ["library", "server", "cli"],
    server: { field: "strength" },
    cli: { flag: "strength", value: "X" },
  },
  {
    key: "extend",
    description: "Continue the video: the output's first frames re-create its last ones.",
    type: { kind: "boolean" },
    default: { value: false },
    surfaces: ["library", "cli"],
    cli: { flag: "extend" },
  },
  {
    key: "contextFrames",
    description: "With extend: frames of the video the extension is conditioned on.",
    type: { kind: "integer", min: 1, max: "maxFrames", temporal: true },
    default: { note: "about a quarter of the output" },
    surfaces: ["library", "cli"],
    cli: { flag: "context", value: "N" },
  },
  {
    key: "loop",
    description: "Tie the last latent frame to the first, so the clip ends where it began.",
    type: { kind: "boolean" },
    default: { value: false },
    surfaces: ["library", "cli"],
    cli: { flag: "loop" },
  },
  {
    key: "rewrite",
    description:
      "For a model trained on one caption style (the bundled demo model, tessera-world): rewrite the prompt " +
      "onto it first; false sends it as typed. Models trained on free text ignore it.",
    type: { kind: "boolean" },
    default: { value: true },
    surfaces: ["library", "server", "cli"],
    server: {
      field: "rewrite",
      note: "The job's prompt_used and rewrite say what the model got.",
    },
    cli: {
      flag: "no-rewrite",
      negates: true,
      description: "send the prompt as typed (the demo model rewrites it onto its captions)",
    },
  },
  {
    key: "stepCache",
    description:
      "Step caching: a step whose first block changed less than this threshold reuses the other blocks' " +
      "residual (0 runs every step in full; the first and last steps always do).",
    type: { kind: "number", min: 0, max: 10, off: false },
    default: { value: false },
    hint: "0.05 to 0.2 are typical",
    surfaces: ["library", "cli"],
    cli: { flag: "step-cache", value: "X" },
  },
  {
    key: "cudaGraph",
    description:
      "On a CUDA device, capture the denoising step as a CUDA graph after the first step and replay it.",
    type: { kind: "boolean" },
    default: { value: true },
    surfaces: ["library", "cli"],
    cli: {
      flag: "no-cuda-graph",
      negates: true,
      description: "run every step op by op (on a GPU, steps after the first replay a CUDA graph by default)",
    },
  },
  {
    key: "fps",
    description: "Frames per second of the written video.",
    type: { kind: "number", min: 0, exclusiveMin: true, max: 240 },
    default: { model: "fps" },
    surfaces: ["cli"],
    cli: { flag: "fps", value: "X" },
  },
] as const satisfies readonly ParamSpec[];

type Params = typeof GENERATION_PARAMS;

/** The name of every declared parameter. */
export type ParamKey = Params[number]["key"];

type KeyOn<P, S> = P extends { key: infer K; surfaces: readonly (infer X)[] }
  ? S extends X
    ? K
    : never
  : never;

/** The keys of the parameters a surface carries. */
export type ParamKeyOn<S extends "library" | "server" | "cli"> = KeyOn<Params[number], S>;

const BY_KEY: ReadonlyMap<string, ParamSpec> = new Map(GENERATION_PARAMS.map((p) => [p.key, p]));

/** A declared parameter by its key. */
export function param(key: ParamKey): ParamSpec {
  return BY_KEY.get(key) as ParamSpec;
}

/** A parameter by a key that may not be declared (an option name from elsewhere). */
export function findParam(key: string): ParamSpec | undefined {
  return BY_KEY.get(key);
}

/** The declared parameters a surface carries, in declaration order. */
export function paramsOn(surface: "library" | "server" | "cli"): ParamSpec[] {
  return GENERATION_PARAMS.filter((p: ParamSpec) => p.surfaces.includes(surface));
}

/** The API's `seconds` as frames: the nearest count of the form 1 + temporalFactor·k (at least 1). */
export function framesFromSeconds(seconds: number, fps: number, temporalFactor: number): number {
  return 1 + temporalFactor * Math.max(0, Math.round((seconds * fps - 1) / temporalFactor));
}

/** A parameter's default where it is the same for every model (undefined otherwise). */
export function staticDefault(key: ParamKey): number | string | boolean | undefined {
  const d = param(key).default;
  return d !== undefined && "value" in d ? d.value : undefined;
}

// Request checking in two layers: JSON Schema (types and ranges; the same schema
// documents the API in /openapi.json), then what a schema cannot say (a size's
// parts, frames of the form 1 + 4k, control characters, the model's own rules).
// Every refusal names the field, so a client can point at what to fix.
import { Ajv, type ErrorObject } from "ajv";
import type { GenerationRequest, GeneratorInfo, VideoGenerator } from "./generator.js";
import { RequestFieldError } from "./generator.js";
import type { StoredRequest } from "./store.js";

export interface Limits {
  /** Longest prompt (and negative prompt), in characters (code points). */
  maxPromptChars: number;
  maxWidth: number;
  maxHeight: number;
  maxFrames: number;
  maxSteps: number;
  maxGuidance: number;
  /** Largest image or video upload, in bytes. */
  maxUploadBytes: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxPromptChars: 2000,
  maxWidth: 1280,
  maxHeight: 1280,
  maxFrames: 161,
  maxSteps: 100,
  maxGuidance: 30,
  maxUploadBytes: 64 * 1024 * 1024,
};

/** The JSON fields of POST /v1/videos (multipart forms carry the same fields as text parts). */
export function createVideoBodySchema(l: Limits) {
  return {
    type: "object",
    additionalProperties: false,
    required: ["prompt"],
    properties: {
      prompt: {
        type: "string",
        minLength: 1,
        maxLength: l.maxPromptChars,
        description:
          "What the video shows. Any Unicode text; control characters other than tab and newline are refused.",
      },
      negative_prompt: {
        type: "string",
        maxLength: l.maxPromptChars,
        description: "What to steer away from.",
      },
      model: {
        type: "string",
        maxLength: 200,
        description: "The served model's name (see GET /healthz); optional.",
      },
      size: {
        type: "string",
        pattern: "^[0-9]{1,5}x[0-9]{1,5}$",
        description: "WIDTHxHEIGHT, each a multiple of the model's side multiple (16 for Wan2.1).",
        examples: ["832x480"],
      },
      seconds: {
        type: "number",
        exclusiveMinimum: 0,
        maximum: 3600,
        description:
          "Length in seconds; turned into the nearest frame count of the form 1 + 4k. Give seconds or frames.",
      },
      frames: {
        type: "integer",
        minimum: 1,
        maximum: l.maxFrames,
        description: "Frame count, 1 + 4k (1, 5, 9, …, 81, …). Give seconds or frames.",
      },
      steps: { type: "integer", minimum: 1, maximum: l.maxSteps, description: "Denoising steps." },
      guidance: {
        type: "number",
        minimum: 0,
        maximum: l.maxGuidance,
        description: "Classifier-free guidance scale.",
      },
      seed: {
        type: "integer",
        minimum: 0,
        maximum: Number.MAX_SAFE_INTEGER,
        description: "Random seed; drawn and reported when absent.",
      },
      strength: {
        type: "number",
        exclusiveMinimum: 0,
        maximum: 1,
        description: "Video-to-video only: how much of the schedule to run.",
      },
      rewrite: {
        type: "boolean",
        description:
          "For a model trained on one caption style (the bundled demo model, tessera-world): rewrite the prompt " +
          "onto it first (default true); false sends it as typed. The job's prompt_used and rewrite say what the " +
          "model got. Models trained on free text ignore it.",
      },
    },
  } as const;
}

export type VideoBody = {
  prompt: string;
  negative_prompt?: string;
  model?: string;
  size?: string;
  seconds?: number;
  frames?: number;
  steps?: number;
  guidance?: number;
  seed?: number;
  strength?: number;
  rewrite?: boolean;
};

export const NUMERIC_FIELDS = new Set(["seconds", "frames", "steps", "guidance", "seed", "strength"]);
/** Fields that are true or false (multipart text parts "true" and "false"). */
export const BOOLEAN_FIELDS = new Set(["rewrite"]);

/**
 * Two compilers: request bodies are checked strictly (a string "20" for steps is a
 * client bug worth a 400), while query strings and multipart text parts are text by
 * nature and are coerced.
 */
export function makeAjv(coerce: boolean): Ajv {
  return new Ajv({
    coerceTypes: coerce,
    removeAdditional: false,
    useDefaults: true,
    allErrors: false,
    strict: false,
  });
}

/** Turns the first schema error into a field name and a sentence. */
export function describeSchemaError(e: ErrorObject, part: string): { field: string; message: string } {
  if (e.keyword === "required") {
    const f = (e.params as { missingProperty: string }).missingProperty;
    return { field: f, message: `${f} is required` };
  }
  if (e.keyword === "additionalProperties") {
    const f = (e.params as { additionalProperty: string }).additionalProperty;
    const hint =
      f === "image" || f === "video"
        ? "; upload an input image or video as a multipart/form-data file part"
        : "";
    return { field: f, message: `unknown field '${f}'${hint}` };
  }
  const path = e.instancePath.replace(/^\//, "").replaceAll("/", ".");
  const field = path || part;
  if (e.keyword === "type" && (e.params as { type?: unknown }).type === "boolean")
    return { field, message: `${field} must be true or false` };
  return { field, message: `${field} ${e.message ?? "is invalid"}` };
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
// C0 and C1 controls and the Unicode line/paragraph separators, except tab, newline and carriage return.
function firstControl(s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (
      (c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) ||
      (c >= 0x7f && c <= 0x9f) ||
      c === 0x2028 ||
      c === 0x2029
    )
      return i;
  }
  return -1;
}

function checkText(field: string, s: string): void {
  // Lone surrogates are legal in JSON strings but are not text, and break tokenizers and logs.
  if (LONE_SURROGATE.test(s))
    throw new RequestFieldError(field, `${field} contains an unpaired UTF-16 surrogate`);
  const i = firstControl(s);
  if (i >= 0)
    throw new RequestFieldError(
      field,
      `${field} contains the control character U+${s.charCodeAt(i).toString(16).toUpperCase().padStart(4, "0")} at position ${i}; only tab and newline are allowed`,
    );
}

export interface Inputs {
  /** File name of an uploaded image inside the job folder. */
  image?: string;
  video?: string;
}

/**
 * Fills defaults from the model and checks everything the schema could not, giving
 * the request the job will run with (stored, so a re-run after a crash is identical).
 */
export function resolveRequest(
  body: VideoBody,
  info: GeneratorInfo,
  limits: Limits,
  inputs: Inputs,
  randomSeed: () => number,
): StoredRequest {
  checkText("prompt", body.prompt);
  if (body.prompt.trim().length === 0) throw new RequestFieldError("prompt", "prompt is blank");
  if (body.negative_prompt !== undefined) checkText("negative_prompt", body.negative_prompt);
  if (body.model !== undefined && body.model !== info.model)
    throw new RequestFieldError(
      "model",
      `model '${body.model}' is not served here; this server runs '${info.model}'`,
    );

  let width = info.defaults.width;
  let height = info.defaults.height;
  if (body.size !== undefined) {
    const [w, h] = body.size.split("x").map(Number) as [number, number];
    width = w;
    height = h;
  }
  const m = info.sideMultiple;
  if (width > limits.maxWidth || height > limits.maxHeight)
    throw new RequestFieldError(
      "size",
      `size ${width}x${height} is larger than this server allows (${limits.maxWidth}x${limits.maxHeight})`,
    );
  if (width < m || height < m || width % m !== 0 || height % m !== 0)
    throw new RequestFieldError(
      "size",
      `size's width and height must be positive multiples of ${m}, got ${width}x${height}`,
    );

  const tf = info.temporalFactor;
  let frames = info.defaults.frames;
  if (body.seconds !== undefined && body.frames !== undefined)
    throw new RequestFieldError("seconds", "give seconds or frames, not both");
  if (body.seconds !== undefined) {
    frames = 1 + tf * Math.max(0, Math.round((body.seconds * info.fps - 1) / tf));
    if (frames > limits.maxFrames)
      throw new RequestFieldError(
        "seconds",
        `seconds ${body.seconds} is ${frames} frames at ${info.fps} fps; this server allows at most ${limits.maxFrames} frames (${(limits.maxFrames / info.fps).toFixed(2)} s)`,
      );
  } else if (body.frames !== undefined) {
    frames = body.frames;
    if ((frames - 1) % tf !== 0)
      throw new RequestFieldError(
        "frames",
        `frames must be 1 + ${tf}k (1, ${1 + tf}, ${1 + 2 * tf}, …), got ${frames}`,
      );
  }
  if (frames > limits.maxFrames)
    throw new RequestFieldError(
      "frames",
      `frames ${frames} is more than this server allows (${limits.maxFrames})`,
    );

  const steps = body.steps ?? Math.min(info.defaults.steps, limits.maxSteps);
  const guidance = body.guidance ?? Math.min(info.defaults.guidance, limits.maxGuidance);
  if (inputs.image && !info.acceptsImage)
    throw new RequestFieldError("image", "this model does not take an input image");
  if (inputs.video && !info.acceptsVideo)
    throw new RequestFieldError("video", "this model does not take an input video");
  if (inputs.image && inputs.video)
    throw new RequestFieldError("image", "give an image or a video, not both");
  if (body.strength !== undefined && !inputs.video)
    throw new RequestFieldError("strength", "strength applies to video-to-video; upload a video with it");

  return {
    model: info.model,
    prompt: body.prompt,
    negativePrompt: body.negative_prompt ?? "",
    width,
    height,
    frames,
    fps: info.fps,
    steps,
    guidance,
    seed: body.seed ?? randomSeed(),
    rewrite: body.rewrite ?? true,
    ...(body.strength !== undefined ? { strength: body.strength } : {}),
    ...(inputs.image ? { image: inputs.image } : {}),
    ...(inputs.video ? { video: inputs.video } : {}),
  };
}

/** Lets the model refuse what only it knows about (runs at submission, without the uploads). */
export function validateWithGenerator(gen: VideoGenerator, r: StoredRequest): void {
  if (!gen.validate) return;
  const req = requestFromStored(r);
  gen.validate(req);
}

/**
 * The generator's view of a stored request. `inputFile` resolves uploaded inputs to paths
 * (runners pass it; submission-time validation runs before uploads exist and does not).
 */
export function requestFromStored(r: StoredRequest, inputFile?: (name: string) => string): GenerationRequest {
  return {
    prompt: r.prompt,
    negativePrompt: r.negativePrompt,
    width: r.width,
    height: r.height,
    frames: r.frames,
    steps: r.steps,
    guidance: r.guidance,
    seed: r.seed,
    rewrite: r.rewrite !== false,
    ...(inputFile && r.image ? { image: inputFile(r.image) } : {}),
    ...(inputFile && r.video ? { video: inputFile(r.video) } : {}),
    ...(r.strength !== undefined ? { strength: r.strength } : {}),
  };
}

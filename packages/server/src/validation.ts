// Request checking in two layers: JSON Schema (types and ranges; the same schema
// documents the API in /openapi.json), then what a schema cannot say (a size's
// parts, frames of the form 1 + 4k, control characters, the model's own rules).
// Both are derived from the generation parameters declared in @tessera/core/params;
// this server's limits (Limits) are policy applied on top of the declared ranges.
// Every refusal names the field, so a client can point at what to fix.
import {
  findParam,
  framesFromSeconds,
  type KnownLimits,
  param,
  paramsOn,
  parseSize,
  problem,
  type RequestBodySchema,
  requestBodySchema,
  requestFieldKinds,
  requestListFields,
  serverField,
  staticDefault,
} from "@tessera/core/params";
import { Ajv, type ErrorObject } from "ajv";
import type { GenerationRequest, GeneratorInfo, VideoGenerator } from "./generator.js";
import { RequestFieldError } from "./generator.js";
import { checkSchedule, requestedLoras } from "./routes/loras.js";
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
  /** Most pixels (width × height) an uploaded image may decode to. */
  maxImagePixels: number;
  /** Longest side of an uploaded image, in pixels. */
  maxImageSide: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxPromptChars: 2000,
  maxWidth: 1280,
  maxHeight: 1280,
  maxFrames: 161,
  maxSteps: 100,
  maxGuidance: 30,
  maxUploadBytes: 64 * 1024 * 1024,
  // 40 MP is a full-frame camera's photo: ~120 MB as RGB8 while it is decoded and resized.
  maxImagePixels: 40_000_000,
  maxImageSide: 8192,
};

/** The JSON fields of POST /v1/videos (multipart forms carry the same fields as text parts). */
export function createVideoBodySchema(l: Limits): RequestBodySchema {
  return requestBodySchema({
    prompt: { minLength: 1, maxLength: l.maxPromptChars },
    negative_prompt: { maxLength: l.maxPromptChars },
    frames: { maximum: l.maxFrames },
    steps: { maximum: l.maxSteps },
    guidance: { maximum: l.maxGuidance },
    guidance_2: { maximum: l.maxGuidance },
    timesteps: { maxItems: l.maxSteps },
    sigmas: { maxItems: l.maxSteps },
  });
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
  timesteps?: number[];
  sigmas?: number[];
  loras?: { name: string; strength?: number }[];
  guidance_2?: number;
  loras_2?: { name: string; strength?: number }[];
};

const FIELD_KINDS = requestFieldKinds();
/** Fields whose values are numbers (multipart text parts that look like one become one). */
export const NUMERIC_FIELDS: ReadonlySet<string> = FIELD_KINDS.numeric;
/** Fields that are true or false (multipart text parts "true" and "false"). */
export const BOOLEAN_FIELDS: ReadonlySet<string> = FIELD_KINDS.boolean;
/** Fields that are lists (multipart text parts holding a JSON array). */
export const LIST_FIELDS: ReadonlySet<string> = requestListFields();

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
  // Inside a list of objects (loras) the field is named with its path: loras.0.name.
  const at = e.instancePath.replace(/^\//, "").replaceAll("/", ".");
  const inner = (f: string) => (at ? `${at}.${f}` : f);
  if (e.keyword === "required") {
    const f = inner((e.params as { missingProperty: string }).missingProperty);
    return { field: f, message: `${f} is required` };
  }
  if (e.keyword === "additionalProperties") {
    const f = inner((e.params as { additionalProperty: string }).additionalProperty);
    const hint =
      f === "image" || f === "end_image" || f === "video"
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

/** Fields declared exclusive of each other (seconds and frames) are not given together. */
function checkExclusive(body: VideoBody): void {
  const given = body as Record<string, unknown>;
  for (const spec of paramsOn("server"))
    for (const otherKey of spec.exclusiveWith ?? []) {
      const field = serverField(spec) as string;
      const o = findParam(otherKey);
      const other = o && serverField(o);
      if (other !== undefined && given[field] !== undefined && given[other] !== undefined)
        throw new RequestFieldError(field, `give ${field} or ${other}, not both`);
    }
}

export interface Inputs {
  /** File name of an uploaded image inside the job folder. */
  image?: string;
  /** File name of an uploaded end image inside the job folder. */
  end_image?: string;
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
  /** The LoRA names requests may use (the generator's listLoras()). */
  generatorLoras: readonly string[] = [],
): StoredRequest {
  checkText("prompt", body.prompt);
  if (body.prompt.trim().length === 0) throw new RequestFieldError("prompt", "prompt is blank");
  if (body.negative_prompt !== undefined) checkText("negative_prompt", body.negative_prompt);
  if (body.model !== undefined && body.model !== info.model)
    throw new RequestFieldError(
      "model",
      `model '${body.model}' is not served here; this server runs '${info.model}'`,
    );

  // Checked with the parameters' declarations against what this model allows.
  const model: KnownLimits = { sideMultiple: info.sideMultiple, temporalFactor: info.temporalFactor };
  const check = (key: "size" | "frames", value: unknown) => {
    const message = problem(param(key), value, key, model);
    if (message !== null) throw new RequestFieldError(key, message);
  };
  checkExclusive(body);

  let width = info.defaults.width;
  let height = info.defaults.height;
  if (body.size !== undefined) {
    // The schema's pattern has already held.
    [width, height] = parseSize(body.size) as [number, number];
  }
  if (width > limits.maxWidth || height > limits.maxHeight)
    throw new RequestFieldError(
      "size",
      `size ${width}x${height} is larger than this server allows (${limits.maxWidth}x${limits.maxHeight})`,
    );
  check("size", [width, height]);

  let frames = info.defaults.frames;
  if (body.seconds !== undefined) {
    frames = framesFromSeconds(body.seconds, info.fps, info.temporalFactor);
    if (frames > limits.maxFrames)
      throw new RequestFieldError(
        "seconds",
        `seconds ${body.seconds} is ${frames} frames at ${info.fps} fps; this server allows at most ${limits.maxFrames} frames (${(limits.maxFrames / info.fps).toFixed(2)} s)`,
      );
  } else if (body.frames !== undefined) {
    frames = body.frames;
    check("frames", frames);
  }
  if (frames > limits.maxFrames)
    throw new RequestFieldError(
      "frames",
      `frames ${frames} is more than this server allows (${limits.maxFrames})`,
    );

  // An explicit schedule sets the step count (its entries were checked by the schema).
  const schedule = checkSchedule(body);
  const steps = schedule?.length ?? body.steps ?? Math.min(info.defaults.steps, limits.maxSteps);
  const loras = requestedLoras(body.loras, generatorLoras);
  const loras2 = requestedLoras(body.loras_2, generatorLoras, "loras_2");
  const guidance = body.guidance ?? Math.min(info.defaults.guidance, limits.maxGuidance);
  if (inputs.image && !info.acceptsImage)
    throw new RequestFieldError("image", "this model does not take an input image");
  if (inputs.video && !info.acceptsVideo)
    throw new RequestFieldError("video", "this model does not take an input video");
  if (inputs.image && inputs.video)
    throw new RequestFieldError("image", "give an image or a video, not both");
  if (inputs.end_image && !info.acceptsImage)
    throw new RequestFieldError("end_image", "this model does not take an input image");
  if (inputs.end_image && inputs.video)
    throw new RequestFieldError(
      "end_image",
      "end_image cannot be combined with a video; give it with or without image",
    );
  if (info.requiresImage && !inputs.image)
    throw new RequestFieldError(
      "image",
      "this is an image-to-video model: upload the start image as the multipart file part 'image'",
    );
  if (info.requiresEndImage && !inputs.end_image)
    throw new RequestFieldError(
      "end_image",
      "this is a first-last-frame model: upload the end image as the multipart file part 'end_image' too",
    );
  if (body.strength !== undefined && !inputs.video)
    throw new RequestFieldError("strength", "strength applies to video-to-video; upload a video with it");

  return {
    model: info.model,
    prompt: body.prompt,
    negativePrompt: body.negative_prompt ?? (staticDefault("negativePrompt") as string),
    width,
    height,
    frames,
    fps: info.fps,
    steps,
    guidance,
    seed: body.seed ?? randomSeed(),
    rewrite: body.rewrite ?? (staticDefault("rewrite") as boolean),
    ...(loras.length ? { loras } : {}),
    ...(body.guidance_2 !== undefined ? { guidance2: body.guidance_2 } : {}),
    ...(loras2.length ? { loras2 } : {}),
    ...(body.timesteps ? { timesteps: body.timesteps } : {}),
    ...(body.sigmas ? { sigmas: body.sigmas } : {}),
    ...(body.strength !== undefined ? { strength: body.strength } : {}),
    ...(inputs.image ? { image: inputs.image } : {}),
    ...(inputs.end_image ? { endImage: inputs.end_image } : {}),
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
    ...(r.loras ? { loras: r.loras } : {}),
    ...(r.guidance2 !== undefined ? { guidance2: r.guidance2 } : {}),
    ...(r.loras2 ? { loras2: r.loras2 } : {}),
    ...(r.timesteps ? { timesteps: r.timesteps } : {}),
    ...(r.sigmas ? { sigmas: r.sigmas } : {}),
    ...(inputFile && r.image ? { image: inputFile(r.image) } : {}),
    ...(inputFile && r.endImage ? { endImage: inputFile(r.endImage) } : {}),
    ...(inputFile && r.video ? { video: inputFile(r.video) } : {}),
    ...(r.strength !== undefined ? { strength: r.strength } : {}),
  };
}

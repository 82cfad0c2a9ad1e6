// The seam between the HTTP/job layer and whatever makes the pixels. The server
// only ever talks to a VideoGenerator, so the whole API runs in tests against a
// fake, and in production against WanPipeline (pipeline-generator.ts).

/** A fully resolved request: every default already filled in, so a re-run after a crash is identical. */
export interface GenerationRequest {
  prompt: string;
  negativePrompt: string;
  width: number;
  height: number;
  frames: number;
  steps: number;
  guidance: number;
  seed: number;
  /** Absolute path of an uploaded image inside the data folder (image-to-video). */
  image?: string;
  /** Absolute path of an uploaded end image inside the data folder (the clip ends on it; FLF2V). */
  endImage?: string;
  /** Absolute path of an uploaded video inside the data folder (video-to-video). */
  video?: string;
  /** Video-to-video: how much of the schedule to run, in (0, 1]. */
  strength?: number;
  /**
   * For a model with a caption style (the bundled demo model): rewrite the prompt onto
   * it (default true). Models trained on free text ignore it.
   */
  rewrite?: boolean;
  /** LoRAs by name (from listLoras()), each with its strength. */
  loras?: { name: string; strength: number }[];
  /** Two-expert models (Wan2.2 A14B): the low-noise expert's guidance (absent: guidance) and LoRAs. */
  guidance2?: number;
  loras2?: { name: string; strength: number }[];
  /** An explicit schedule (diffusers' timesteps= / sigmas= meanings); steps is its length. */
  timesteps?: number[];
  sigmas?: number[];
}

/** The prompt rewriter's report, for a model with a caption style (see @tessera/core's prompt-style.ts). */
export interface PromptRewrite {
  /** Words (or phrases) of the prompt that did not make it into the caption. */
  unknownWords: string[];
  /** Attributes the rewriter filled in because the prompt left them out ("objects[0].colour", "background"). */
  filledDefaults: string[];
  /** Whether the caption differs from the prompt as typed. */
  changed: boolean;
}

/** What the model's text encoder gets for a prompt. */
export interface PreparedPrompt {
  prompt: string;
  /** The rewriter's report when it ran, else null. */
  rewrite: PromptRewrite | null;
}

export interface GenerationProgress {
  step: number;
  total: number;
  /** Milliseconds since denoising started. */
  elapsed: number;
  /** Estimated milliseconds left. */
  eta: number;
  /** A small picture of the current denoised estimate, when the generator makes one (live previews). */
  preview?: PreviewFrames;
}

/** RGB8 frames (width·height·3 bytes each) of a preview, at the generator's own small size. */
export interface PreviewFrames {
  width: number;
  height: number;
  frames: Uint8Array[];
}

/** An uploaded input, for the generator to decode and check before the job is accepted. */
export interface InputToCheck {
  field: "image" | "end_image" | "video";
  /** Where the upload is (inside the data folder). */
  path: string;
  /** Largest width × height the server lets an input image decode to. */
  maxPixels: number;
}

export interface GenerateContext {
  /**
   * An empty folder, private to this run, inside the data folder. Write outputs
   * here; the server moves the folder into place only once generate() resolves,
   * so a crash never leaves a half-written video where a client can fetch it.
   */
  outputDir: string;
  onProgress: (p: GenerationProgress) => void;
  /** Aborted on DELETE and on a drain that ran out of time; stop between steps and reject. */
  signal: AbortSignal;
}

export interface GeneratedVideo {
  /** File name (no folders) of the video inside outputDir. */
  file: string;
  contentType: string;
  /** File name of a PNG thumbnail inside outputDir, if one was written. */
  thumbnail?: string;
  width: number;
  height: number;
  frames: number;
  fps: number;
  /** Milliseconds per phase (text, denoise, step, decode, write, …) as the generator measured them. */
  timings?: Record<string, number>;
  /** The prompt the model was actually given (after any rewriting), when the generator knows it. */
  prepared?: PreparedPrompt;
}

export interface GeneratorInfo {
  /** The model name clients pass as `model` (and see in responses). */
  model: string;
  device: string;
  /** Frames per second of the output; turns `seconds` into frames. */
  fps: number;
  defaults: { width: number; height: number; frames: number; steps: number; guidance: number };
  /** Width and height must be multiples of this. */
  sideMultiple: number;
  /** frames must be 1 + temporalFactor·k. */
  temporalFactor: number;
  /** Whether image-to-video and video-to-video uploads are accepted. */
  acceptsImage: boolean;
  acceptsVideo: boolean;
  /** An image-to-video model (Wan2.1 I2V / FLF2V, Wan2.2 I2V-A14B): every request needs an image. */
  requiresImage?: boolean;
  /** A first-last-frame model (Wan2.1 FLF2V): every request needs an end_image too. */
  requiresEndImage?: boolean;
  /** The caption style the model's text encoder was trained on ("tessera-world"); absent for free text. */
  captionStyle?: string;
  /** Bytes of memory the device has (a GPU's), for the default memory budget; absent on the CPU. */
  deviceMemory?: number;
}

export interface VideoGenerator {
  readonly info: GeneratorInfo;
  /**
   * Checks a request against the model at submission time, so a request the model
   * cannot run is a 400 now rather than a failed job later. Throws RequestFieldError.
   */
  validate?(req: GenerationRequest): void;
  /**
   * What the text encoder will get for `prompt` (rewritten onto the model's caption
   * style when it has one and `rewrite` is on). Cheap; called at submission so a job
   * shows it at once. Throws RequestFieldError for a prompt it cannot prepare.
   */
  preparePrompt?(prompt: string, rewrite: boolean): PreparedPrompt;
  /** The LoRAs requests may name (the operator's LoRA folder); absent or [] when there are none. */
  listLoras?(): string[];
  /**
   * Peak bytes a run of `req` takes (the model's own estimate), checked against the
   * server's memory budget at submission.
   */
  estimateMemory?(req: GenerationRequest): number;
  /**
   * Decodes an upload, all of it, to refuse a broken one at upload time rather than when
   * its job runs. Throws RequestFieldError naming the field.
   */
  checkInput?(input: InputToCheck): Promise<void>;
  generate(req: GenerationRequest, ctx: GenerateContext): Promise<GeneratedVideo>;
  close?(): Promise<void>;
}

/** A request field the server or the model refuses; becomes a 400 naming `field`. */
export class RequestFieldError extends Error {
  override name = "RequestFieldError";
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

export function isAbortError(e: unknown, signal?: AbortSignal): boolean {
  return (e instanceof Error && e.name === "AbortError") || signal?.aborted === true;
}

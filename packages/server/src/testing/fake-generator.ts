// A VideoGenerator with no model: it sleeps per "step", reports progress like the
// real pipeline, honours AbortSignal between steps, and writes a real (tiny) Y4M
// video and PNG thumbnail, so the whole API can be tested in milliseconds.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type {
  GenerateContext,
  GeneratedVideo,
  GenerationRequest,
  GeneratorInfo,
  PreparedPrompt,
  PreviewFrames,
  VideoGenerator,
} from "../generator.js";
import { RequestFieldError } from "../generator.js";
import { encodePng } from "../png.js";

export interface FakeGeneratorOptions {
  /** Milliseconds per denoising step (default 5). */
  stepMs?: number;
  info?: Partial<GeneratorInfo>;
  /** Prompts containing this text make the run fail (to test failed jobs). */
  failOn?: string;
  /**
   * Acts as a model with a caption style: prompts go through fakeRewrite (unless a job
   * sends rewrite: false), and info.captionStyle is "fake-world".
   */
  rewrites?: boolean;
  /** Leaves preparePrompt out, as an API without the model would be: prompt_used then comes from the run. */
  noPreparePrompt?: boolean;
  /** The LoRA names it offers (as a model served with --loras DIR would). */
  loras?: string[];
  /** The model's memory estimate for a request, in bytes (absent: the fake has none, as a model without one). */
  memory?: (req: GenerationRequest) => number;
  /** Sends a preview (frames of width/8 × height/8, one per 4 frames) with every progress report. */
  previews?: boolean;
}

const FAKE_WORDS = new Set([
  "a",
  "an",
  "the",
  "red",
  "blue",
  "green",
  "ball",
  "circle",
  "square",
  "moving",
  "left",
  "right",
]);
const FAKE_COLOURS = new Set(["red", "blue", "green"]);

/**
 * A stand-in for the demo model's rewriter: keeps the words it knows, reports the
 * others, and fills in a colour when none is given. Blank (no words) is refused.
 */
export function fakeRewrite(text: string): PreparedPrompt {
  const words = text
    .toLowerCase()
    .split(/[^\p{L}\p{N}]+/u)
    .filter(Boolean);
  if (words.length === 0) throw new RequestFieldError("prompt", "the prompt is blank: nothing to rewrite");
  const known = words.filter((w) => FAKE_WORDS.has(w));
  const unknownWords = [...new Set(words.filter((w) => !FAKE_WORDS.has(w)))];
  const filledDefaults = known.some((w) => FAKE_COLOURS.has(w)) ? [] : ["objects[0].colour"];
  const prompt = `fake caption: ${filledDefaults.length > 0 ? "red " : ""}${known.join(" ")}`.trim();
  return { prompt, rewrite: { unknownWords, filledDefaults, changed: prompt !== text.trim() } };
}

export class FakeVideoGenerator implements VideoGenerator {
  readonly info: GeneratorInfo;
  /** Every generate() call, in order (a job re-run after a restart appears twice). */
  readonly calls: GenerationRequest[] = [];
  /** Runs that reached the end (not aborted). */
  readonly completed: GenerationRequest[] = [];
  stepMs: number;
  readonly failOn: string | undefined;
  readonly rewrites: boolean;
  readonly loras: string[];
  readonly previews: boolean;

  constructor(o: FakeGeneratorOptions = {}) {
    this.loras = o.loras ?? [];
    this.stepMs = o.stepMs ?? 5;
    this.failOn = o.failOn;
    this.rewrites = o.rewrites === true;
    this.previews = o.previews === true;
    if (o.noPreparePrompt) this.preparePrompt = undefined;
    const memory = o.memory;
    if (memory) this.estimateMemory = (req) => memory(req);
    this.info = {
      model: "fake",
      device: "none",
      fps: 8,
      defaults: { width: 32, height: 32, frames: 9, steps: 4, guidance: 5 },
      sideMultiple: 16,
      temporalFactor: 4,
      acceptsImage: true,
      acceptsVideo: true,
      ...(this.rewrites ? { captionStyle: "fake-world" } : {}),
      ...o.info,
    };
  }

  /** Collapsed whitespace as the real pipeline does, or fakeRewrite for a rewriting fake. */
  preparePrompt?: (prompt: string, rewrite: boolean) => PreparedPrompt = (prompt, rewrite) =>
    this.#prepare(prompt, rewrite);

  #prepare(prompt: string, rewrite: boolean): PreparedPrompt {
    return this.rewrites && rewrite
      ? fakeRewrite(prompt)
      : { prompt: prompt.replace(/\s+/g, " ").trim(), rewrite: null };
  }

  listLoras(): string[] {
    return [...this.loras];
  }
  estimateMemory?: (req: GenerationRequest) => number;

  validate(req: GenerationRequest): void {
    if (req.width * req.height * req.frames > 4096 * 4096)
      throw new RequestFieldError("size", "the fake model refuses more than 16M pixels in all");
  }

  async generate(req: GenerationRequest, ctx: GenerateContext): Promise<GeneratedVideo> {
    this.calls.push(req);
    const t0 = performance.now();
    for (let step = 1; step <= req.steps; step++) {
      await abortableSleep(this.stepMs, ctx.signal);
      const elapsed = performance.now() - t0;
      ctx.onProgress({
        step,
        total: req.steps,
        elapsed,
        eta: (elapsed / step) * (req.steps - step),
        ...(this.previews ? { preview: fakePreview(req, step) } : {}),
      });
    }
    if (this.failOn !== undefined && req.prompt.includes(this.failOn))
      throw new Error("the fake model failed on purpose");
    const frames = fakeFrames(req);
    await writeFile(join(ctx.outputDir, "video.y4m"), y4m(req.width, req.height, this.info.fps, frames));
    const mid = frames[Math.floor(frames.length / 2)] as Uint8Array;
    await writeFile(join(ctx.outputDir, "thumbnail.png"), png(req.width, req.height, mid));
    this.completed.push(req);
    const total = performance.now() - t0;
    return {
      file: "video.y4m",
      contentType: "video/x-yuv4mpeg2",
      thumbnail: "thumbnail.png",
      width: req.width,
      height: req.height,
      frames: req.frames,
      fps: this.info.fps,
      timings: { denoise: total, step: total / req.steps },
      prepared: this.#prepare(req.prompt, req.rewrite !== false),
    };
  }
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(abortError(signal));
    const t = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(abortError(signal));
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

function abortError(signal: AbortSignal): Error {
  const e = new Error("generation was aborted", { cause: signal.reason });
  e.name = "AbortError";
  return e;
}

/** Latent-sized frames whose brightness rises with the step, as a denoised estimate sharpens. */
export function fakePreview(req: GenerationRequest, step: number): PreviewFrames {
  const width = Math.max(1, req.width / 8);
  const height = Math.max(1, req.height / 8);
  const level = Math.round((255 * step) / req.steps);
  const frames = Array.from({ length: 1 + (req.frames - 1) / 4 }, () =>
    new Uint8Array(width * height * 3).fill(level),
  );
  return { width, height, frames };
}

/** Deterministic RGB frames from the seed: a gradient that moves with time. */
export function fakeFrames(req: GenerationRequest): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let f = 0; f < req.frames; f++) {
    const px = new Uint8Array(req.width * req.height * 3);
    for (let y = 0; y < req.height; y++)
      for (let x = 0; x < req.width; x++) {
        const i = (y * req.width + x) * 3;
        px[i] = (x * 8 + f * 16 + req.seed) & 255;
        px[i + 1] = (y * 8) & 255;
        px[i + 2] = (req.seed >> 3) & 255;
      }
    out.push(px);
  }
  return out;
}

/** YUV4MPEG2, 4:4:4 (every pixel converted, no subsampling to get wrong), BT.601 full range. */
export function y4m(w: number, h: number, fps: number, frames: Uint8Array[]): Buffer {
  const header = Buffer.from(`YUV4MPEG2 W${w} H${h} F${fps}:1 Ip A1:1 C444\n`, "latin1");
  const parts: Buffer[] = [header];
  for (const rgb of frames) {
    parts.push(Buffer.from("FRAME\n", "latin1"));
    const plane = Buffer.alloc(w * h * 3);
    for (let i = 0; i < w * h; i++) {
      const r = rgb[i * 3] as number;
      const g = rgb[i * 3 + 1] as number;
      const b = rgb[i * 3 + 2] as number;
      plane[i] = Math.round(0.299 * r + 0.587 * g + 0.114 * b);
      plane[w * h + i] = Math.max(0, Math.min(255, Math.round(128 - 0.168736 * r - 0.331264 * g + 0.5 * b)));
      plane[2 * w * h + i] = Math.max(
        0,
        Math.min(255, Math.round(128 + 0.5 * r - 0.418688 * g - 0.081312 * b)),
      );
    }
    parts.push(plane);
  }
  return Buffer.concat(parts);
}

/** A minimal RGB8 PNG. */
export const png = encodePng;

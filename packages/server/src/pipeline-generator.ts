// The real VideoGenerator: WanPipeline from @tessera/core on a model folder.
//
// @tessera/core is imported lazily and described here only by the few members the
// server uses, so the API (and its tests with a fake generator) needs neither the
// native addon nor a model, and a core that lacks the pipeline fails with a clear
// message at load instead of at import. (@tessera/core/params, the parameter
// schema, is plain data and loads without the addon.)
import { basename, join, resolve } from "node:path";
import { Worker } from "node:worker_threads";
import { serverName } from "@tessera/core/params";
import type {
  GenerateContext,
  GeneratedVideo,
  GenerationRequest,
  GeneratorInfo,
  InputToCheck,
  PreparedPrompt,
  PreviewFrames,
  PromptRewrite,
  VideoGenerator,
} from "./generator.js";
import { RequestFieldError } from "./generator.js";
import { withoutPaths } from "./storage.js";

interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}
interface VideoFrames {
  width: number;
  height: number;
  frames: Uint8Array[];
  fps: number;
}
interface TensorLike {
  shape: readonly number[];
  toFloat32Array(): Promise<Float32Array>;
  dispose(): void;
}
/** Core's RewriteResult, the fields the server reports. */
interface RewriteLike {
  unknownWords: string[];
  filledDefaults: string[];
  changed: boolean;
}
interface PipelineLike {
  modelId: string;
  /** Absent in a core from before live previews; null for a model without a preview projection. */
  previewProjection?: unknown;
  /** Absent in a core from before caption styles. */
  captionStyle?: string;
  /** Image-to-video models (absent in a core from before them). */
  requiresImage?: boolean;
  requiresEndImage?: boolean;
  preparePrompt?(text: string, rewrite?: boolean): { prompt: string; rewrite: RewriteLike | null };
  defaults: { width: number; height: number; frames: number; steps: number; guidance: number; fps: number };
  limits: { sideMultiple: number; temporalFactor: number };
  resolve(o: Record<string, unknown>): unknown;
  /** Absent in a core from before LoRAs. */
  listLoras?(): string[];
  generate(o: Record<string, unknown>): Promise<{
    video: TensorLike;
    latents?: TensorLike;
    timings: Record<string, number>;
    width: number;
    height: number;
    frames: number;
    fps: number;
    prompt?: string;
    rewrite?: RewriteLike | null;
  }>;
  dispose(): void;
}
interface CoreLike {
  WanPipeline: {
    load(
      dir: string,
      o: {
        device?: string;
        dtype?: string;
        loraDir?: string;
        offload?: boolean;
        maxGpuMemory?: number | string;
      },
    ): Promise<PipelineLike>;
  };
  /** Absent in a core from before weight offload. */
  parseByteSize?(v: string | number, what?: string): number;
  /** Absent in a core from before memory estimates. */
  estimatePipelineMemory?(
    p: PipelineLike,
    o: { width: number; height: number; frames: number; guidance?: number },
  ): { total: number };
  writeVideo(
    path: string,
    v: VideoFrames,
    o?: Record<string, unknown>,
  ): Promise<{ bytes: number; width: number; height: number }>;
  writeImage(path: string, img: RgbImage): Promise<void>;
  readImage(path: string, o?: { width?: number; height?: number; maxPixels?: number }): Promise<RgbImage>;
  readVideo(path: string, o?: Record<string, unknown>): Promise<VideoFrames>;
}

export interface PipelineGeneratorOptions {
  /** A diffusers-layout model folder (`tessera create-model DIR --config tiny` makes a test one). */
  modelDir: string;
  /** "cpu" (default) or "cuda[:N]". */
  device?: string;
  dtype?: string;
  /** The name clients pass as `model` (default: the folder's name). */
  name?: string;
  /** Output container: "mp4" (default; needs ffmpeg, falls back to gif without it) or "gif". */
  format?: "mp4" | "gif";
  /** The folder whose .safetensors LoRAs requests may name (`tessera serve --loras DIR`). */
  loraDir?: string;
  /** Weight offload (`--offload`): the transformer blocks' weights in host memory, one block copied in ahead. */
  offload?: boolean;
  /**
   * A cap on the device's memory in bytes or as "24GiB" (`--max-gpu-memory`): the
   * model offloads when it does not fit under it, and requests are budgeted against it.
   */
  maxGpuMemory?: number | string;
}

export async function loadPipelineGenerator(o: PipelineGeneratorOptions): Promise<VideoGenerator> {
  let core: CoreLike;
  try {
    core = (await import("@tessera/core")) as unknown as CoreLike;
  } catch (e) {
    throw new Error(
      `@tessera/core could not be loaded (is it built? run pnpm build): ${(e as Error).message}`,
    );
  }
  if (typeof core.WanPipeline?.load !== "function" || typeof core.writeVideo !== "function")
    throw new Error(
      "this build of @tessera/core has no WanPipeline.load / writeVideo; rebuild it (pnpm build)",
    );
  const device = o.device ?? "cpu";
  const pipeline = await core.WanPipeline.load(resolve(o.modelDir), {
    device,
    ...(o.dtype ? { dtype: o.dtype } : {}),
    ...(o.loraDir ? { loraDir: resolve(o.loraDir) } : {}),
    ...(o.offload !== undefined ? { offload: o.offload } : {}),
    ...(o.maxGpuMemory !== undefined ? { maxGpuMemory: o.maxGpuMemory } : {}),
  });
  if (o.loraDir && typeof pipeline.listLoras !== "function")
    throw new Error("this build of @tessera/core has no LoRA support; rebuild it (pnpm build)");
  return new PipelineGenerator(core, pipeline, {
    model: o.name ?? basename(resolve(o.modelDir)),
    device,
    format: o.format ?? "mp4",
    deviceMemory: capped(await deviceMemory(device), o.maxGpuMemory, core),
  });
}

/** The device's memory, or --max-gpu-memory where that is less (the cap budgets the requests). */
function capped(
  memory: number | undefined,
  cap: number | string | undefined,
  core: CoreLike,
): number | undefined {
  if (memory === undefined || cap === undefined) return memory;
  const bytes = typeof cap === "number" ? cap : core.parseByteSize?.(cap, "maxGpuMemory");
  return bytes === undefined ? memory : Math.min(memory, bytes);
}

/** A GPU's memory in bytes (for the default memory budget); undefined on the CPU. */
async function deviceMemory(device: string): Promise<number | undefined> {
  if (!device.startsWith("cuda")) return undefined;
  try {
    const native = await import("@tessera/native");
    return native.Device.parse(device).info().totalMemory || undefined;
  } catch {
    return undefined;
  }
}

class PipelineGenerator implements VideoGenerator {
  readonly info: GeneratorInfo;
  #format: "mp4" | "gif";

  constructor(
    private readonly core: CoreLike,
    private readonly pipeline: PipelineLike,
    o: { model: string; device: string; format: "mp4" | "gif"; deviceMemory: number | undefined },
  ) {
    const d = pipeline.defaults;
    this.#format = o.format;
    this.info = {
      model: o.model,
      device: o.device,
      fps: d.fps,
      defaults: { width: d.width, height: d.height, frames: d.frames, steps: d.steps, guidance: d.guidance },
      sideMultiple: pipeline.limits.sideMultiple,
      temporalFactor: pipeline.limits.temporalFactor,
      acceptsImage: true,
      // An image-to-video model takes its image as a condition; it has no video input.
      acceptsVideo: pipeline.requiresImage !== true,
      ...(pipeline.requiresImage ? { requiresImage: true } : {}),
      ...(pipeline.requiresEndImage ? { requiresEndImage: true } : {}),
      ...(pipeline.captionStyle ? { captionStyle: pipeline.captionStyle } : {}),
      ...(o.deviceMemory ? { deviceMemory: o.deviceMemory } : {}),
    };
    if (typeof pipeline.preparePrompt !== "function") this.preparePrompt = undefined;
    if (typeof core.estimatePipelineMemory !== "function") this.estimateMemory = undefined;
  }

  // Own properties, so a core without the function leaves the server without the check.
  estimateMemory?: (req: GenerationRequest) => number = (req) =>
    (this.core.estimatePipelineMemory as NonNullable<CoreLike["estimatePipelineMemory"]>)(this.pipeline, {
      width: req.width,
      height: req.height,
      frames: req.frames,
      guidance: req.guidance,
    }).total;

  async checkInput(input: InputToCheck): Promise<void> {
    try {
      if (input.field !== "video") await this.core.readImage(input.path, { maxPixels: input.maxPixels });
      // The container and its first frames, small: enough to tell a video from bytes that only start like one.
      else await this.core.readVideo(input.path, { maxFrames: 2, width: 64, height: 64 });
    } catch (e) {
      const what = input.field !== "video" ? "an image" : "a video";
      // The message names the server's temporary file; the client knows it as its upload.
      const m = (e as Error).message;
      const why = m.startsWith(`${input.path}: `) ? m.slice(input.path.length + 2) : withoutPaths(m);
      throw new RequestFieldError(input.field, `${input.field} could not be decoded as ${what}: ${why}`);
    }
  }

  // An own property, so a core without preparePrompt leaves the server without it too.
  preparePrompt?: (prompt: string, rewrite: boolean) => PreparedPrompt = (prompt, rewrite) => {
    try {
      const p = (this.pipeline.preparePrompt as NonNullable<PipelineLike["preparePrompt"]>)(prompt, rewrite);
      return { prompt: p.prompt, rewrite: rewriteReport(p.rewrite) };
    } catch (e) {
      // The rewriter refuses a prompt with no words (only punctuation, say).
      if ((e as Error).name === "PromptRewriteError")
        throw new RequestFieldError(
          "prompt",
          `${(e as Error).message} (send rewrite: false to give the model the prompt as typed)`,
        );
      throw e;
    }
  };

  listLoras(): string[] {
    return this.pipeline.listLoras?.() ?? [];
  }

  validate(req: GenerationRequest): void {
    try {
      this.pipeline.resolve(this.#options(req));
    } catch (e) {
      const field = (e as { field?: unknown }).field;
      if (typeof field === "string")
        // Named as the client sent it: the option width is the field size.
        throw new RequestFieldError(serverName(field), (e as Error).message);
      throw e;
    }
  }

  #options(req: GenerationRequest): Record<string, unknown> {
    return {
      prompt: req.prompt,
      negativePrompt: req.negativePrompt,
      width: req.width,
      height: req.height,
      frames: req.frames,
      steps: req.steps,
      guidance: req.guidance,
      seed: req.seed,
      rewrite: req.rewrite !== false,
      // By name, looked up in the pipeline's LoRA folder; [] runs without any.
      loras: (req.loras ?? []).map((l) => ({ name: l.name, strength: l.strength })),
      loras2: (req.loras2 ?? []).map((l) => ({ name: l.name, strength: l.strength })),
      ...(req.guidance2 !== undefined ? { guidance2: req.guidance2 } : {}),
      ...(req.timesteps ? { timesteps: req.timesteps } : {}),
      ...(req.sigmas ? { sigmas: req.sigmas } : {}),
    };
  }

  async generate(req: GenerationRequest, ctx: GenerateContext): Promise<GeneratedVideo> {
    const opts = this.#options(req);
    // Decoded straight to the generation size: an input is never held at its own size.
    const size = { width: req.width, height: req.height };
    if (req.image) opts.image = await this.core.readImage(req.image, size);
    if (req.endImage) opts.endImage = await this.core.readImage(req.endImage, size);
    if (req.video) {
      opts.video = await this.core.readVideo(req.video, { maxFrames: req.frames, ...size });
      if (req.strength !== undefined) opts.strength = req.strength;
    }
    const result = await this.pipeline.generate({
      ...opts,
      signal: ctx.signal,
      ...(this.pipeline.previewProjection ? { preview: true } : {}),
      onProgress: (p: {
        step: number;
        total: number;
        elapsed: number;
        eta: number;
        preview?: PreviewFrames;
      }) =>
        ctx.onProgress({
          step: p.step,
          total: p.total,
          elapsed: p.elapsed,
          eta: p.eta,
          ...(p.preview ? { preview: p.preview } : {}),
        }),
    });
    const tWrite = performance.now();
    let video: VideoFrames;
    try {
      video = await framesOffThread(result.video, result.fps);
    } finally {
      result.video.dispose();
      result.latents?.dispose();
    }
    const written = await this.#writeVideo(ctx.outputDir, video);
    const mid = video.frames[Math.floor(video.frames.length / 2)] as Uint8Array;
    await this.core.writeImage(join(ctx.outputDir, "thumbnail.png"), {
      width: video.width,
      height: video.height,
      data: mid,
    });
    return {
      file: written.file,
      contentType: written.contentType,
      thumbnail: "thumbnail.png",
      width: video.width,
      height: video.height,
      frames: video.frames.length,
      fps: video.fps,
      timings: { ...result.timings, write: performance.now() - tWrite },
      ...(typeof result.prompt === "string"
        ? { prepared: { prompt: result.prompt, rewrite: rewriteReport(result.rewrite ?? null) } }
        : {}),
    };
  }

  async #writeVideo(dir: string, video: VideoFrames): Promise<{ file: string; contentType: string }> {
    if (this.#format === "mp4") {
      try {
        await this.core.writeVideo(join(dir, "video.mp4"), video);
        return { file: "video.mp4", contentType: "video/mp4" };
      } catch (e) {
        if (!/ffmpeg was not found/.test((e as Error).message)) throw e;
        // Without ffmpeg the built-in GIF writer still gives something every browser plays.
        this.#format = "gif";
      }
    }
    await this.core.writeVideo(join(dir, "video.gif"), video);
    return { file: "video.gif", contentType: "image/gif" };
  }

  async close(): Promise<void> {
    this.pipeline.dispose();
  }
}

function rewriteReport(r: RewriteLike | null): PromptRewrite | null {
  return r
    ? { unknownWords: [...r.unknownWords], filledDefaults: [...r.filledDefaults], changed: r.changed }
    : null;
}

// Float [-1, 1] → RGB8 for every pixel of the clip is ~100 M iterations at 832x480x81:
// a few hundred milliseconds that must not stall the event loop (health checks,
// SSE, uploads), so it runs on a worker thread, with the buffer transferred, not copied.
const TO_RGB8 = `
const { parentPort } = require("node:worker_threads");
parentPort.once("message", ({ buffer, frames, n }) => {
  const x = new Float32Array(buffer);
  const out = [];
  for (let f = 0; f < frames; f++) {
    const o = new Uint8Array(n);
    const base = f * n;
    for (let i = 0; i < n; i++) {
      const v = Math.round((x[base + i] + 1) * 127.5);
      o[i] = v > 255 ? 255 : v > 0 ? v : 0;
    }
    out.push(o.buffer);
  }
  parentPort.postMessage(out, out);
});`;

async function framesOffThread(t: TensorLike, fps: number): Promise<VideoFrames> {
  const s = t.shape;
  if (s.length !== 5 || s[0] !== 1 || s[4] !== 3)
    throw new Error(`the pipeline returned a video of shape [${s.join(", ")}]`);
  const [, T, H, W] = s as [number, number, number, number, number];
  const x = await t.toFloat32Array();
  const buffer = x.byteOffset === 0 && x.byteLength === x.buffer.byteLength ? x.buffer : x.slice().buffer;
  const worker = new Worker(TO_RGB8, { eval: true });
  try {
    const frames = await new Promise<ArrayBuffer[]>((res, rej) => {
      worker.once("message", res);
      worker.once("error", rej);
      worker.once("exit", (code) => rej(new Error(`frame conversion worker exited with code ${code}`)));
      worker.postMessage({ buffer, frames: T, n: H * W * 3 }, [buffer as ArrayBuffer]);
    });
    return { width: W, height: H, frames: frames.map((b) => new Uint8Array(b)), fps };
  } finally {
    await worker.terminate();
  }
}

// `tessera generate PROMPT`: text-to-video (and image-to-video, extension,
// looping, video-to-video) with a Wan2.1 model folder, written to a video file.
//
// Everything that can be checked without the weights is checked first — flags,
// the output path, ffmpeg for .mp4/.webm, the model folder's configs, the input
// files, the size against the model — so a mistake costs milliseconds, not a
// model load.
import { existsSync, statSync } from "node:fs";
import { delimiter, dirname, extname, join, resolve } from "node:path";
import {
  AbortError,
  cleanPrompt,
  framesFromTensor,
  type GenerateOptions,
  type GenerateProgress,
  generationDefaults,
  modelLimits,
  parallelPlan,
  preparePrompt,
  type RgbImage,
  readImage,
  readModelFolder,
  readVideo,
  resolveOptions,
  SINGLE_DEVICE,
  type VideoFrames,
  WanPipeline,
  writeVideo,
} from "@tessera/core";
import { cudaStatus, type DType, defaultDevice } from "@tessera/native";
import { choiceFlag, intFlag, parse, sizeFlag, UsageError } from "../args.js";
import { deviceFlag, formatDuration, numberFlag, resolveModel, runtimeFailure } from "./model-args.js";
import { type MultiGpu, multiGpu } from "./multigpu.js";

const VIDEO_EXTS = [".mp4", ".m4v", ".webm", ".gif", ".y4m"];

function needsFfmpeg(path: string): boolean {
  return [".mp4", ".m4v", ".webm"].includes(extname(path).toLowerCase());
}

// Mirrors how the video writer finds ffmpeg ($TESSERA_FFMPEG, else PATH), to fail
// before generating rather than after.
function ffmpegAvailable(): boolean {
  const env = process.env.TESSERA_FFMPEG;
  if (env?.includes("/")) return existsSync(env);
  const name = env || "ffmpeg";
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir && existsSync(join(dir, name))) return true;
  }
  return false;
}

function checkOutput(path: string): void {
  const isFolder = /[/\\]$/.test(path) || (existsSync(path) && statSync(path).isDirectory());
  if (!isFolder && !VIDEO_EXTS.includes(extname(path).toLowerCase()))
    throw new UsageError(
      `-o must end in ${VIDEO_EXTS.join(", ")}, or '/' for a folder of PNG frames, got '${path}'`,
    );
  const parent = isFolder ? dirname(path.replace(/[/\\]+$/, "")) : dirname(path);
  if (!existsSync(parent) || !statSync(parent).isDirectory())
    throw new UsageError(`-o: folder '${parent}' does not exist`);
}

function checkInput(flag: string, path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  if (!existsSync(path)) throw new UsageError(`--${flag}: no such file '${path}'`);
  return resolve(path);
}

/** Redraws one line on a terminal; prints a plain line per step otherwise. */
function progressPrinter(tty: boolean, quiet: boolean, err: (s: string) => void) {
  let last = 0;
  return (p: GenerateProgress) => {
    const rate = p.elapsed / p.step;
    const tail = `${p.step}/${p.total}  ${formatDuration(rate)}/step  eta ${formatDuration(p.eta)}`;
    if (tty) {
      const width = 24;
      const filled = Math.round((p.step / p.total) * width);
      const line = `\rdenoising [${"#".repeat(filled)}${".".repeat(width - filled)}] ${tail}`;
      process.stderr.write(line.padEnd(last));
      last = line.length;
      if (p.step === p.total) process.stderr.write("\n");
    } else if (!quiet) err(`step ${tail}`);
    if (p.step === p.total && (tty || !quiet)) err("decoding with the VAE");
  };
}

export async function generateCommand(
  argv: string[],
  out: (s: string) => void,
  err: (s: string) => void,
): Promise<number> {
  const { values, positionals } = parse(argv, {
    output: { type: "string", short: "o" },
    model: { type: "string" },
    device: { type: "string" },
    dtype: { type: "string" },
    "vae-dtype": { type: "string" },
    frames: { type: "string" },
    size: { type: "string" },
    steps: { type: "string" },
    guidance: { type: "string" },
    shift: { type: "string" },
    scheduler: { type: "string" },
    seed: { type: "string" },
    negative: { type: "string" },
    image: { type: "string" },
    "end-image": { type: "string" },
    video: { type: "string" },
    extend: { type: "boolean" },
    loop: { type: "boolean" },
    strength: { type: "string" },
    context: { type: "string" },
    fps: { type: "string" },
    json: { type: "boolean" },
    gpus: { type: "string" },
    "no-rewrite": { type: "boolean" },
    "step-cache": { type: "string" },
    "no-cuda-graph": { type: "boolean" },
  });
  const prompt = positionals.join(" ").trim();
  if (prompt === "")
    throw new UsageError('generate needs a PROMPT, e.g. tessera generate "a red ball" --model DIR');

  // Flags, each on its own.
  const output = values.output ?? "out.mp4";
  checkOutput(output);
  let device = deviceFlag(values.device, defaultDevice);
  const dtype = choiceFlag<DType>(
    "dtype",
    values.dtype,
    ["f32", "bf16", "f16"],
    device.kind === "cpu" ? "f32" : "bf16",
  );
  if (device.kind === "cpu" && dtype !== "f32") throw new UsageError("--dtype on the CPU must be f32");
  const vaeDtype = choiceFlag<DType>("vae-dtype", values["vae-dtype"], ["f32", "bf16", "f16"], "f32");
  if (device.kind === "cpu" && vaeDtype !== "f32") throw new UsageError("--vae-dtype on the CPU must be f32");
  const size = values.size === undefined ? undefined : sizeFlag(values.size, [0, 0]);
  const frames = values.frames === undefined ? undefined : intFlag("frames", values.frames, 0, 1, 100_000);
  const steps = values.steps === undefined ? undefined : intFlag("steps", values.steps, 0, 1, 1000);
  const guidance = numberFlag("guidance", values.guidance, 0, 100);
  const shift = numberFlag("shift", values.shift, 0, 100, { exclusiveMin: true });
  const scheduler =
    values.scheduler === undefined
      ? undefined
      : choiceFlag("scheduler", values.scheduler, ["unipc", "euler"] as const, "unipc");
  const seed =
    values.seed === undefined ? undefined : intFlag("seed", values.seed, 0, 0, Number.MAX_SAFE_INTEGER);
  const strength = numberFlag("strength", values.strength, 0, 1, { exclusiveMin: true });
  const contextFrames =
    values.context === undefined ? undefined : intFlag("context", values.context, 0, 1, 100_000);
  const fpsFlag = numberFlag("fps", values.fps, 0, 240, { exclusiveMin: true });
  const stepCache = numberFlag("step-cache", values["step-cache"], 0, 10);
  if (stepCache !== undefined && values.gpus !== undefined)
    throw new UsageError("--step-cache runs on one device; it cannot be combined with --gpus");
  const imagePath = checkInput("image", values.image);
  const endImagePath = checkInput("end-image", values["end-image"]);
  if (endImagePath && values.video) throw new UsageError("--end-image cannot be combined with --video");
  if (endImagePath && values.loop)
    throw new UsageError("--end-image and --loop both set the last frame; give one");
  const videoPath = checkInput("video", values.video);
  if (values.extend && !videoPath) throw new UsageError("--extend needs --video (the clip to continue)");
  if (strength !== undefined && !videoPath) throw new UsageError("--strength needs --video (video-to-video)");
  if (strength !== undefined && values.extend)
    throw new UsageError("--strength applies to video-to-video, not --extend");
  if (contextFrames !== undefined && !values.extend)
    throw new UsageError("--context applies to --extend only");
  if (imagePath && videoPath) throw new UsageError("--image and --video cannot be combined");
  if (needsFfmpeg(output) && !ffmpegAvailable()) {
    err(
      `tessera: writing ${extname(output)} needs ffmpeg, which was not found (install it, or set TESSERA_FFMPEG); ` +
        "-o with .gif, .y4m or a folder/ works without it",
    );
    return 1;
  }
  const modelDir = resolveModel(values.model);

  const ac = new AbortController();
  const onSigint = () => ac.abort();
  let pipeline: WanPipeline | null = null;
  let multi: MultiGpu = { kind: "single" };
  let done = false; // a rank that failed exits without waiting on its communicator
  try {
    // The model's configs (cheap) settle the size, so the inputs can be read and every
    // option checked before the weights load.
    const info = await readModelFolder(modelDir);
    const defaults = generationDefaults(info.defaults);
    const limits = modelLimits(info.transformer, info.vae);
    const [width, height] = size ?? [defaults.width, defaults.height];
    const fps = fpsFlag ?? defaults.fps;
    // A model trained on one caption style (the bundled demo model) gets the prompt
    // rewritten onto it; shown here so the user sees what the model is asked for.
    const rewrite = values["no-rewrite"] !== true;
    const prepared = preparePrompt(cleanPrompt(prompt), info.captionStyle, rewrite);
    const base: GenerateOptions = {
      prompt,
      rewrite,
      width,
      height,
      ...(values.negative !== undefined ? { negativePrompt: values.negative } : {}),
      ...(frames !== undefined ? { frames } : {}),
      ...(steps !== undefined ? { steps } : {}),
      ...(guidance !== undefined ? { guidance } : {}),
      ...(shift !== undefined ? { shift } : {}),
      ...(scheduler !== undefined ? { scheduler } : {}),
      ...(seed !== undefined ? { seed } : {}),
      ...(strength !== undefined ? { strength } : {}),
      ...(contextFrames !== undefined ? { contextFrames } : {}),
      ...(values.extend ? { extend: true } : {}),
      ...(values.loop ? { loop: true } : {}),
      ...(stepCache !== undefined ? { stepCache } : {}),
      ...(values["no-cuda-graph"] ? { cudaGraph: false } : {}),
    };
    // Size problems are reported before any input is decoded (option errors become usage errors below).
    resolveOptions(
      { ...base, extend: false, strength: undefined, contextFrames: undefined },
      defaults,
      limits,
      () => 0,
    );

    let image: RgbImage | undefined;
    let endImage: RgbImage | undefined;
    let video: VideoFrames | undefined;
    if (imagePath) image = await readImage(imagePath, { width, height, fit: "cover" });
    if (endImagePath) endImage = await readImage(endImagePath, { width, height, fit: "cover" });
    if (videoPath)
      video = await readVideo(videoPath, {
        width,
        height,
        fit: "cover",
        ...(!values.extend && frames !== undefined ? { maxFrames: frames } : {}),
      });
    const opts: GenerateOptions = {
      ...base,
      ...(image ? { image } : {}),
      ...(endImage ? { endImage } : {}),
      ...(video ? { video } : {}),
    };
    resolveOptions(opts, defaults, limits, () => 0);

    // --gpus N: this process launches N ranks and waits, or is one of them (multigpu.ts).
    const conditioning = Boolean(imagePath || endImagePath || videoPath || values.loop);
    multi = await multiGpu({ gpus: values.gpus, argv, device: values.device, seed, conditioning, err });
    if (multi.kind === "launched") return multi.exitCode;
    if (multi.kind === "rank") device = multi.device;

    if (device.kind === "cuda") {
      const s = cudaStatus();
      if (!s.available || device.index >= s.count) {
        err(
          `tessera: device ${device.name} is not available: ${s.available ? `${s.count} GPU(s) found` : s.reason}`,
        );
        return 1;
      }
    }

    const quiet = values.json === true || (multi.kind === "rank" && multi.env.rank !== 0);
    const tty = process.stderr.isTTY === true;
    const say = (s: string) => {
      if (!quiet || tty) err(s);
    };
    if (prepared.rewrite) {
      const r = prepared.rewrite;
      if (r.changed) say(`prompt rewritten for this model: "${r.caption}" (--no-rewrite sends it as typed)`);
      if (r.unknownWords.length > 0)
        say(`not understood, left out: ${r.unknownWords.map((w) => `"${w}"`).join(", ")}`);
      if (r.filledDefaults.length > 0) say(`filled in: ${r.filledDefaults.join(", ")}`);
    }
    say(`loading ${modelDir} on ${device.name} (${dtype}${vaeDtype !== "f32" ? `, VAE ${vaeDtype}` : ""})`);
    const tLoad = performance.now();
    pipeline = await WanPipeline.load(modelDir, { device, dtype, vaeDtype });
    const loadMs = performance.now() - tLoad;
    const mode = endImage
      ? image
        ? "interpolation"
        : "text-to-video to an end image"
      : image
        ? "image-to-video"
        : video
          ? values.extend
            ? "extension"
            : "video-to-video"
          : "text-to-video";
    say(
      `${mode}: ${width}x${height}, ${opts.frames ?? defaults.frames} frames, seed ${opts.seed ?? "random"}`,
    );

    process.once("SIGINT", onSigint);
    const genOpts = { ...opts, signal: ac.signal, onProgress: progressPrinter(tty, quiet, err) };
    const result = await pipeline.generate(
      genOpts,
      multi.kind === "rank" ? parallelPlan(multi.comm) : SINGLE_DEVICE,
    );
    process.removeListener("SIGINT", onSigint);
    if (multi.kind === "rank" && multi.env.rank !== 0) {
      // Rank 0 writes the video.
      result.video.dispose();
      result.latents.dispose();
      done = true;
      return 0;
    }
    if (stepCache !== undefined)
      say(`step cache: ${result.fullSteps} of ${result.stepsRun} steps ran the whole model`);
    if (result.stepGraph.state === "failed")
      say(`CUDA graph capture failed, every step ran without it: ${result.stepGraph.reason}`);
    say(`writing ${output}`);

    let written: Awaited<ReturnType<typeof writeVideo>>;
    try {
      const gen = await framesFromTensor(result.video, { fps });
      // An extension is written whole: the input clip, then what follows its last frames.
      const all =
        video && values.extend ? [...video.frames, ...gen.frames.slice(result.contextFrames)] : gen.frames;
      written = await writeVideo(output, { width: gen.width, height: gen.height, frames: all, fps });
    } finally {
      result.video.dispose();
      result.latents.dispose();
    }
    done = true;
    const report = {
      output: written.path,
      format: written.format,
      bytes: written.bytes,
      width: written.width,
      height: written.height,
      frames: written.frameCount,
      fps,
      mode,
      prompt,
      promptUsed: result.prompt,
      ...(result.rewrite
        ? {
            rewrite: {
              unknownWords: result.rewrite.unknownWords,
              filledDefaults: result.rewrite.filledDefaults,
            },
          }
        : {}),
      seed: result.seed,
      steps: opts.steps ?? defaults.steps,
      stepsRun: result.stepsRun,
      ...(stepCache !== undefined ? { stepCache, fullSteps: result.fullSteps } : {}),
      stepGraph: result.stepGraph,
      scheduler: opts.scheduler ?? defaults.scheduler,
      shift: opts.shift ?? defaults.shift,
      guidance: opts.guidance ?? defaults.guidance,
      model: modelDir,
      device: device.name,
      ...(multi.kind === "rank" ? { gpus: multi.env.worldSize } : {}),
      dtype,
      vaeDtype,
      timings: { load: loadMs, ...result.timings },
    };
    if (values.json) out(JSON.stringify(report, null, 2));
    else
      out(
        `wrote ${written.path} (${written.frameCount} frames, ${written.width}x${written.height} @ ${fps} fps, seed ${result.seed}) ` +
          `in ${formatDuration(result.timings.total)}: text ${formatDuration(result.timings.text)}, ` +
          `denoise ${formatDuration(result.timings.denoise)} (${formatDuration(result.timings.step)}/step), ` +
          `decode ${formatDuration(result.timings.decode)}`,
      );
    return 0;
  } catch (e) {
    if (e instanceof AbortError) {
      err("tessera: interrupted");
      return 130;
    }
    return runtimeFailure(e, err);
  } finally {
    process.removeListener("SIGINT", onSigint);
    pipeline?.dispose();
    if (multi.kind === "rank" && done) await multi.comm.destroy();
  }
}

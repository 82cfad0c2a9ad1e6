// `tessera generate PROMPT`: text-to-video (and image-to-video, extension,
// looping, video-to-video) with a Wan2.1 model folder, written to a video file.
//
// Everything that can be checked without the weights is checked first — flags,
// the output path, ffmpeg for .mp4/.webm, the model folder's configs, the input
// files, the size against the model — so a mistake costs milliseconds, not a
// model load. The steps live in generate/: flags (flag → options), inputs,
// progress, output and report.
import { extname } from "node:path";
import {
  AbortError,
  checkImageConditionedOptions,
  cleanPrompt,
  generationDefaults,
  LoraError,
  modelLimits,
  parallelPlan,
  planLoraFile,
  preparePrompt,
  readModelFolder,
  resolveOptions,
  SINGLE_DEVICE,
  WAN_SAMPLING_DEFAULTS,
  WanPipeline,
  type WanTransformerConfig,
  wanLoraTarget,
} from "@tessera/core";
import { cudaStatus, type Device } from "@tessera/native";
import { UsageError } from "../args.js";
import { readEmbeds } from "./generate/embeds.js";
import { type GenerateRequest, readGenerateFlags } from "./generate/flags.js";
import { readInputs } from "./generate/inputs.js";
import { ffmpegAvailable, needsFfmpeg, type Written, writeOutput } from "./generate/output.js";
import { progressPrinter, sayRewrite } from "./generate/progress.js";
import { buildReport, modeName, printReport } from "./generate/report.js";
import { runtimeFailure } from "./model-args.js";
import { type MultiGpu, multiGpu } from "./multigpu.js";

export { GENERATE_HELP } from "./generate/flags.js";

/**
 * Reads the model folder's configs (cheap), which settle the size, then the inputs,
 * and checks every option, all before the weights load.
 */
async function checkBeforeLoad(request: GenerateRequest) {
  const info = await readModelFolder(request.modelDir);
  const defaults = generationDefaults(info.defaults);
  const limits = modelLimits(info.transformer, info.vae, info.transformer2 ? 2 : 1);
  await checkLoras(request, info.transformer, limits.experts ?? 1, info.transformer2);
  const base = {
    ...request.options,
    width: request.options.width ?? defaults.width,
    height: request.options.height ?? defaults.height,
  };
  // A model trained on one caption style (the bundled demo model) gets the prompt
  // rewritten onto it; shown later so the user sees what the model is asked for.
  const prepared = preparePrompt(
    cleanPrompt(request.prompt),
    info.captionStyle,
    base.rewrite !== false && !request.files.promptEmbeds,
  );
  // Size problems are reported before any input is decoded (option errors become usage errors).
  resolveOptions(
    { ...base, extend: false, strength: undefined, contextFrames: undefined },
    defaults,
    limits,
    () => 0,
  );
  const inputs = await readInputs(request.files, base, base);
  const embeds = await readEmbeds(
    request.files,
    info.transformer.text_dim,
    info.textLength ?? WAN_SAMPLING_DEFAULTS.textLength,
  );
  const { dispose: disposeEmbeds, ...given } = embeds;
  const opts = { ...base, ...inputs, ...given };
  try {
    // An image-to-video model's image (Wan2.1 I2V / FLF2V, Wan2.2 I2V-A14B), before the load too.
    const resolved = resolveOptions(opts, defaults, limits, () => 0);
    checkImageConditionedOptions(opts, resolved, { config: info.transformer }, true);
  } catch (e) {
    disposeEmbeds();
    throw e;
  }
  return { defaults, opts, inputs, fps: request.fps ?? defaults.fps, prepared, disposeEmbeds };
}

/**
 * --lora files against the model's transformer, from their tensor names and shapes
 * (no weights read): a LoRA for another model is a usage error before the model loads.
 */
async function checkLoras(
  request: GenerateRequest,
  transformer: WanTransformerConfig,
  experts: number,
  transformer2?: WanTransformerConfig,
) {
  if ((request.options.loras2?.length ?? 0) > 0 && experts < 2)
    throw new UsageError(
      `--lora-2 is for the low-noise expert of a two-expert model (Wan2.2 A14B); ${request.modelDir} has one expert (its transformer): give its LoRAs with --lora`,
    );
  const target = wanLoraTarget(transformer, `the transformer of ${request.modelDir}`);
  for (const l of request.options.loras ?? [])
    try {
      await planLoraFile(l.path as string, target);
    } catch (e) {
      if (e instanceof LoraError) throw new UsageError(`--lora: ${e.message}`);
      throw e;
    }
  if (!transformer2) return;
  const target2 = wanLoraTarget(transformer2, `the transformer_2 (low-noise expert) of ${request.modelDir}`);
  for (const l of request.options.loras2 ?? [])
    try {
      await planLoraFile(l.path as string, target2);
    } catch (e) {
      if (e instanceof LoraError) throw new UsageError(`--lora-2: ${e.message}`);
      throw e;
    }
}

/** Why a CUDA device cannot be used (null when it can, and for the CPU). */
function deviceProblem(device: Device): string | null {
  if (device.kind !== "cuda") return null;
  const s = cudaStatus();
  if (s.available && device.index < s.count) return null;
  return `device ${device.name} is not available: ${s.available ? `${s.count} GPU(s) found` : s.reason}`;
}

export async function generateCommand(
  argv: string[],
  out: (s: string) => void,
  err: (s: string) => void,
): Promise<number> {
  const request = readGenerateFlags(argv);
  const { output, modelDir, dtype, vaeDtype } = request;
  let device = request.device;
  if (needsFfmpeg(output) && !ffmpegAvailable()) {
    err(
      `tessera: writing ${extname(output)} needs ffmpeg, which was not found (install it, or set TESSERA_FFMPEG); ` +
        "-o with .gif, .y4m or a folder/ works without it",
    );
    return 1;
  }

  const ac = new AbortController();
  const onSigint = () => ac.abort();
  let pipeline: WanPipeline | null = null;
  let multi: MultiGpu = { kind: "single" };
  let done = false; // a rank that failed exits without waiting on its communicator
  let disposeEmbeds = () => {};
  try {
    const checked = await checkBeforeLoad(request);
    const { defaults, opts, inputs, fps, prepared } = checked;
    disposeEmbeds = checked.disposeEmbeds;

    // --gpus N: this process launches N ranks and waits, or is one of them (multigpu.ts).
    multi = await multiGpu({
      gpus: request.gpus,
      argv,
      device: request.deviceFlag,
      seed: opts.seed,
      err,
    });
    if (multi.kind === "launched") return multi.exitCode;
    if (multi.kind === "rank") device = multi.device;

    const unavailable = deviceProblem(device);
    if (unavailable) {
      err(`tessera: ${unavailable}`);
      return 1;
    }

    const quiet = request.json || (multi.kind === "rank" && multi.env.rank !== 0);
    const tty = process.stderr.isTTY === true;
    const say = (s: string) => {
      if (!quiet || tty) err(s);
    };
    sayRewrite(prepared, say);
    say(`loading ${modelDir} on ${device.name} (${dtype}${vaeDtype !== "f32" ? `, VAE ${vaeDtype}` : ""})`);
    const tLoad = performance.now();
    pipeline = await WanPipeline.load(modelDir, {
      device,
      dtype,
      vaeDtype,
      expertSwap: request.expertSwap,
      ...(request.offload ? { offload: true } : {}),
      ...(request.maxGpuMemory !== undefined ? { maxGpuMemory: request.maxGpuMemory } : {}),
    });
    if (pipeline.offload)
      say(
        `weight offload: the transformer blocks wait in host memory, copied in one block ahead${request.offload ? "" : " (the model does not fit --max-gpu-memory resident)"}`,
      );
    for (const l of opts.loras ?? []) say(`LoRA ${l.path} at strength ${l.strength ?? 1}`);
    for (const l of opts.loras2 ?? [])
      say(`LoRA ${l.path} at strength ${l.strength ?? 1} (low-noise expert)`);
    if (pipeline.transformer2)
      say(
        `two experts, handing over at timestep ${pipeline.boundary}; ${pipeline.expertSwap ? "the idle one waits in host memory" : "both on the device"}`,
      );
    const loadMs = performance.now() - tLoad;
    const mode = modeName(inputs, opts.extend === true);
    say(
      `${mode}: ${opts.width}x${opts.height}, ${opts.frames ?? defaults.frames} frames, seed ${opts.seed ?? "random"}`,
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
    if (opts.stepCache !== undefined)
      say(`step cache: ${result.fullSteps} of ${result.stepsRun} steps ran the whole model`);
    if (result.experts)
      say(
        `experts: ${result.experts.steps[0]} + ${result.experts.steps[1]} steps${result.experts.swaps ? `, ${result.experts.swaps} swap(s) in ${(result.timings.swap / 1000).toFixed(2)} s` : ""}`,
      );
    if (result.stepGraph.state === "failed")
      say(`CUDA graph capture failed, every step ran without it: ${result.stepGraph.reason}`);
    say(`writing ${output}`);
    const written: Written = await writeOutput(output, result, fps, opts.extend ? inputs.video : undefined);
    done = true;
    const report = buildReport(
      {
        request,
        defaults,
        mode,
        fps,
        device: device.name,
        ...(multi.kind === "rank" ? { gpus: multi.env.worldSize } : {}),
        loadMs,
      },
      result,
      written,
    );
    printReport(report, result, request.json, out);
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
    disposeEmbeds();
    if (multi.kind === "rank" && done) await multi.comm.destroy();
  }
}

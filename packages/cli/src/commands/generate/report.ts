// What a finished generation prints on stdout: one line, or with --json the
// whole report (output, settings as run, timings).
import type { GenerateResult, GenerationDefaults } from "@tessera/core";
import { formatDuration } from "../model-args.js";
import type { GenerateRequest } from "./flags.js";
import type { Inputs } from "./inputs.js";
import type { Written } from "./output.js";

/** The kind of generation, in words, from which inputs it has. */
export function modeName(inputs: Inputs, extend: boolean): string {
  if (inputs.endImage) return inputs.image ? "interpolation" : "text-to-video to an end image";
  if (inputs.image) return "image-to-video";
  if (inputs.video) return extend ? "extension" : "video-to-video";
  return "text-to-video";
}

export interface RunFacts {
  request: GenerateRequest;
  defaults: GenerationDefaults;
  mode: string;
  fps: number;
  /** The device the run used (a rank's GPU under --gpus). */
  device: string;
  /** Ranks of a multi-GPU run. */
  gpus?: number;
  loadMs: number;
}

export function buildReport(f: RunFacts, result: GenerateResult, written: Written) {
  const r = f.request;
  const o = r.options;
  const schedule = o.timesteps ?? o.sigmas;
  return {
    output: written.path,
    format: written.format,
    bytes: written.bytes,
    width: written.width,
    height: written.height,
    frames: written.frameCount,
    fps: f.fps,
    mode: f.mode,
    prompt: r.prompt,
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
    steps: schedule?.length ?? o.steps ?? f.defaults.steps,
    stepsRun: result.stepsRun,
    ...(o.timesteps ? { timesteps: o.timesteps } : {}),
    ...(o.sigmas ? { sigmas: o.sigmas } : {}),
    ...(o.loras?.length ? { loras: o.loras.map((l) => ({ path: l.path, strength: l.strength ?? 1 })) } : {}),
    ...(o.loras2?.length
      ? { loras2: o.loras2.map((l) => ({ path: l.path, strength: l.strength ?? 1 })) }
      : {}),
    ...(o.stepCache !== undefined ? { stepCache: o.stepCache, fullSteps: result.fullSteps } : {}),
    stepGraph: result.stepGraph,
    ...(result.offload ? { offload: true } : {}),
    // An explicit schedule runs the Euler sampler.
    scheduler: schedule ? "euler" : (o.scheduler ?? f.defaults.scheduler),
    shift: o.shift ?? f.defaults.shift,
    guidance: o.guidance ?? f.defaults.guidance,
    // Two experts: the second's guidance, the hand-over and the swaps.
    ...(result.experts
      ? { guidance2: o.guidance2 ?? o.guidance ?? f.defaults.guidance, experts: result.experts }
      : {}),
    model: r.modelDir,
    device: f.device,
    ...(f.gpus !== undefined ? { gpus: f.gpus } : {}),
    dtype: r.dtype,
    vaeDtype: r.vaeDtype,
    timings: { load: f.loadMs, ...result.timings },
  };
}

/** The report as JSON (--json) or as one line. */
export function printReport(
  report: ReturnType<typeof buildReport>,
  result: GenerateResult,
  json: boolean,
  out: (s: string) => void,
): void {
  if (json) {
    out(JSON.stringify(report, null, 2));
    return;
  }
  const t = result.timings;
  out(
    `wrote ${report.output} (${report.frames} frames, ${report.width}x${report.height} @ ${report.fps} fps, seed ${result.seed}) ` +
      `in ${formatDuration(t.total)}: text ${formatDuration(t.text)}, ` +
      `denoise ${formatDuration(t.denoise)} (${formatDuration(t.step)}/step), ` +
      `decode ${formatDuration(t.decode)}`,
  );
}

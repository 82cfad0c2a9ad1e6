// What the model commands (generate, models, info, create-model) share: number
// flags, where model folders live, and turning library errors into exit codes.
import { existsSync, statSync } from "node:fs";
import { delimiter, isAbsolute, join, resolve } from "node:path";
import { DEMO_MODEL_DIR, GenerateOptionError, hasDemoModel } from "@tessera/core";
import { Device, DeviceError } from "@tessera/native";
import { choiceFlag, UsageError } from "../args.js";

/** A finite number flag within [min, max] (or (min, max] with exclusiveMin). */
export function numberFlag(
  name: string,
  v: string | undefined,
  min: number,
  max: number,
  opts: { exclusiveMin?: boolean } = {},
): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  const low = opts.exclusiveMin ? n > min : n >= min;
  if (v.trim() === "" || !Number.isFinite(n) || !low || n > max)
    throw new UsageError(
      `--${name} must be a number ${opts.exclusiveMin ? "above" : "from"} ${min} ${opts.exclusiveMin ? "and at most" : "to"} ${max}, got '${v}'`,
    );
  return n;
}

/** --device: a bad name is a usage error; an unavailable device fails later, at run time (exit 1). */
export function deviceFlag(v: string | undefined, fallback: () => Device): Device {
  if (v === undefined) return fallback();
  try {
    return Device.parse(v);
  } catch (e) {
    if (e instanceof DeviceError) throw new UsageError(`--device: ${e.message}`);
    throw e;
  }
}

/** Folders searched for models by name: $TESSERA_MODELS (a path list), else ./models. */
export function modelRoots(): string[] {
  const env = process.env.TESSERA_MODELS;
  if (env) return env.split(delimiter).filter((p) => p.length > 0);
  return [resolve("models")];
}

/** Name of the bundled demo model for --model. */
export const DEMO_MODEL_NAME = "tessera-world";

/**
 * --model: a path to a model folder, or a bare name looked up in modelRoots()
 * ("tessera-world" is the bundled demo model unless a folder of that name is found
 * there). Absent: $TESSERA_MODEL, else the bundled demo model.
 */
export function resolveModel(v: string | undefined): string {
  const given = v ?? process.env.TESSERA_MODEL;
  if (given === undefined || given === "") {
    if (hasDemoModel()) return DEMO_MODEL_DIR;
    throw new UsageError(
      "--model is required: this install has no bundled demo model (packages/core/models/tessera-world); " +
        "give a model folder, or the name of one under $TESSERA_MODELS or ./models",
    );
  }
  if (isAbsolute(given) || given.includes("/") || given.startsWith(".") || existsSync(given))
    return resolve(given);
  for (const root of modelRoots()) {
    const p = join(root, given);
    if (existsSync(p) && statSync(p).isDirectory()) return p;
  }
  if (given === DEMO_MODEL_NAME && hasDemoModel()) return DEMO_MODEL_DIR;
  return resolve(given);
}

/** The CLI flag that sets each generate() option, for messages. */
const FLAG_OF: Record<string, string> = {
  width: "--size",
  height: "--size",
  frames: "--frames",
  steps: "--steps",
  guidance: "--guidance",
  shift: "--shift",
  scheduler: "--scheduler",
  seed: "--seed",
  strength: "--strength",
  image: "--image",
  endImage: "--end-image",
  video: "--video",
  extend: "--extend",
  loop: "--loop",
  contextFrames: "--context",
  prompt: "PROMPT",
  negativePrompt: "--negative",
};

/** A GenerateOptionError as the usage error of the flag behind it. */
export function usageFromOption(e: GenerateOptionError): UsageError {
  const flag = FLAG_OF[e.field] ?? `--${e.field}`;
  return new UsageError(`${flag}: ${e.message}`);
}

/** Prints a runtime failure without a stack and gives exit code 1; usage errors pass through. */
export function runtimeFailure(e: unknown, err: (s: string) => void): number {
  if (e instanceof UsageError) throw e;
  if (e instanceof GenerateOptionError) throw usageFromOption(e);
  const msg = e instanceof Error ? e.message : String(e);
  err(`tessera: ${msg}`);
  if (process.env.TESSERA_DEBUG && e instanceof Error && e.stack) err(e.stack);
  return 1;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return "?";
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/** The flags `serve` and `worker` share for the model that generates. */
export const GENERATOR_FLAGS = {
  model: { type: "string" },
  device: { type: "string" },
  dtype: { type: "string" },
  format: { type: "string" },
} as const;

export interface GeneratorFlags {
  modelDir: string;
  device: Device;
  dtype?: "f32" | "bf16" | "f16";
  format: "mp4" | "gif";
}

/** Validates the shared generator flags (UsageError naming the flag). */
export function generatorFlags(values: {
  model?: string;
  device?: string;
  dtype?: string;
  format?: string;
}): GeneratorFlags {
  const dtype =
    values.dtype === undefined ? undefined : choiceFlag("dtype", values.dtype, ["f32", "bf16", "f16"], "f32");
  return {
    modelDir: resolveModel(values.model),
    device: deviceFlag(values.device, () => Device.cpu),
    ...(dtype ? { dtype } : {}),
    format: choiceFlag("format", values.format, ["mp4", "gif"] as const, "mp4"),
  };
}

/** Loads the pipeline behind a server or worker, saying what it loads. */
export async function loadGenerator(g: GeneratorFlags, err: (s: string) => void) {
  const { loadPipelineGenerator } = await import("@tessera/server");
  err(`tessera: loading ${g.modelDir} on ${g.device.name}…`);
  return loadPipelineGenerator({
    modelDir: g.modelDir,
    device: g.device.name,
    ...(g.dtype ? { dtype: g.dtype } : {}),
    format: g.format,
  });
}

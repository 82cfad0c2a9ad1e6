// What the model commands (generate, models, info, create-model, serve, worker)
// share: --device, where model folders live, turning library errors into exit
// codes (naming the flag behind an option), and formatting sizes and times.
import { existsSync, statSync } from "node:fs";
import { delimiter, isAbsolute, join, resolve } from "node:path";
import { DEMO_MODEL_DIR, GenerateOptionError, hasDemoModel } from "@tessera/core";
import { cliName } from "@tessera/core/params";
import { Device, DeviceError } from "@tessera/native";
import { UsageError } from "../args.js";

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

/** A GenerateOptionError as the usage error of the flag behind it. */
export function usageFromOption(e: GenerateOptionError): UsageError {
  return new UsageError(`${cliName(e.field)}: ${e.message}`);
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

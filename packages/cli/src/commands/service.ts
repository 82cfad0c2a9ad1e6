// What `serve` and `worker` share: the model that generates (--model, --device,
// --dtype, --format), the data folder, the Redis queue, the drain time, and
// running until a signal, letting the running job finish before exiting.
// @tessera/server is imported only when a service starts, so other commands start fast.
import { statSync } from "node:fs";
import { resolve } from "node:path";
import { OFFLOAD_OPTIONS, parseByteSize } from "@tessera/core";
import { Device } from "@tessera/native";
import { choiceFlag, UsageError } from "../args.js";
import type { Flags } from "../flags.js";
import { deviceFlag, resolveModel, runtimeFailure } from "./model-args.js";

/** The flags `serve` and `worker` share for the model that generates. */
export const GENERATOR_FLAGS = {
  model: {
    kind: "string",
    value: "DIR|NAME",
    defaultText: "$TESSERA_MODEL, else the bundled demo model, tessera-world",
    description: "the model folder that generates (a path, or a name under $TESSERA_MODELS or ./models)",
  },
  device: { kind: "string", value: "cpu|cuda[:N]", default: "cpu", description: "where the model runs" },
  dtype: {
    kind: "choice",
    choices: ["f32", "bf16", "f16"],
    defaultText: "f32 on the CPU, bf16 on a GPU",
    description: "precision of the transformer",
  },
  format: {
    kind: "choice",
    choices: ["mp4", "gif"],
    default: "mp4",
    description: "the videos' container (mp4 falls back to gif without ffmpeg)",
  },
  loras: {
    kind: "string",
    value: "DIR",
    description:
      "a folder of LoRA .safetensors files that requests may pick by name (GET /v1/loras lists them; never by path)",
  },
  offload: { kind: "boolean", description: OFFLOAD_OPTIONS.offload.description },
  "max-gpu-memory": {
    kind: "string",
    value: OFFLOAD_OPTIONS.maxGpuMemory.value,
    description: OFFLOAD_OPTIONS.maxGpuMemory.description,
  },
} as const satisfies Flags;

/** The flags both services take besides the model's: where data lives, the queue, the drain time. */
export const SERVICE_FLAGS = {
  data: {
    kind: "string",
    value: "DIR",
    defaultText: "$TESSERA_DATA, else ./tessera-data",
    description: "the data folder: jobs database, inputs, outputs (shared by serve and its workers)",
  },
  queue: {
    kind: "string",
    value: "URL",
    description: "the Redis queue, redis://HOST:PORT or rediss://HOST:PORT",
  },
  "drain-seconds": {
    kind: "integer",
    value: "N",
    min: 0,
    max: 86_400,
    default: 30,
    description: "on SIGTERM or SIGINT, how long the running job may take to finish",
  },
} as const satisfies Flags;

/**
 * The flags of the API in front of the jobs (serve): where it may be reached from,
 * whether it may run without keys, and what it admits.
 */
export const API_FLAGS = {
  "public-url": {
    kind: "string",
    value: "URL[,URL…]",
    description:
      "where clients reach this server besides its own addresses (a proxy, a DNS name): requests for other host names are refused",
  },
  open: {
    kind: "boolean",
    description:
      "serve without API keys even after every key was revoked (with no key ever made, it is open anyway)",
  },
  "memory-budget": {
    kind: "bytes",
    defaultText: "90% of the GPU's memory; on the CPU, of the container's limit, else of the RAM",
    description: "refuse requests the model estimates to need more memory than this (0: no check)",
  },
  "max-image-megapixels": {
    kind: "number",
    value: "N",
    min: 0.01,
    max: 1000,
    default: 40,
    description: "largest uploaded image, in megapixels (checked before it is decoded)",
  },
} as const satisfies Flags;

/** --public-url: one or more http(s) URLs, comma-separated. */
export function publicUrlsFlag(v: string | undefined): string[] {
  if (v === undefined) return [];
  return v.split(",").map((s) => {
    let u: URL | null = null;
    try {
      u = new URL(s.trim());
    } catch {}
    if (!u || (u.protocol !== "http:" && u.protocol !== "https:"))
      throw new UsageError(
        `--public-url must be http:// or https:// URLs, comma-separated, got '${s.trim()}'`,
      );
    return u.origin;
  });
}

export interface GeneratorFlags {
  modelDir: string;
  device: Device;
  dtype?: "f32" | "bf16" | "f16";
  format: "mp4" | "gif";
  /** The LoRA folder (absolute), if any. */
  loraDir?: string;
  /** --offload: the transformer blocks' weights in host memory. */
  offload?: true;
  /** --max-gpu-memory in bytes. */
  maxGpuMemory?: number;
}

/** Validates the shared generator flags (UsageError naming the flag). */
export function generatorFlags(values: {
  model?: string;
  device?: string;
  dtype?: string;
  format?: string;
  loras?: string;
  offload?: boolean;
  "max-gpu-memory"?: string;
}): GeneratorFlags {
  let maxGpuMemory: number | undefined;
  if (values["max-gpu-memory"] !== undefined) {
    try {
      maxGpuMemory = parseByteSize(values["max-gpu-memory"], "--max-gpu-memory");
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  const dtype =
    values.dtype === undefined ? undefined : choiceFlag("dtype", values.dtype, ["f32", "bf16", "f16"], "f32");
  return {
    modelDir: resolveModel(values.model),
    device: deviceFlag(values.device, () => Device.cpu),
    ...(dtype ? { dtype } : {}),
    format: choiceFlag("format", values.format, ["mp4", "gif"] as const, "mp4"),
    ...(values.loras !== undefined ? { loraDir: loraFolder(values.loras) } : {}),
    ...(values.offload ? { offload: true as const } : {}),
    ...(maxGpuMemory !== undefined ? { maxGpuMemory } : {}),
  };
}

/** --loras: an existing folder (its .safetensors files are the LoRAs requests may name). */
function loraFolder(v: string): string {
  const dir = resolve(v);
  if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory())
    throw new UsageError(`--loras must be a folder of LoRA .safetensors files; ${dir} is not a folder`);
  return dir;
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
    ...(g.loraDir ? { loraDir: g.loraDir } : {}),
    ...(g.offload ? { offload: true } : {}),
    ...(g.maxGpuMemory !== undefined ? { maxGpuMemory: g.maxGpuMemory } : {}),
  });
}

/** --queue: a redis:// or rediss:// URL (checked without loading the server). */
export function queueFlag(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  let u: URL | null = null;
  try {
    u = new URL(v);
  } catch {}
  if (!u || (u.protocol !== "redis:" && u.protocol !== "rediss:") || !u.hostname)
    throw new UsageError(`--queue must be a redis://HOST:PORT or rediss://HOST:PORT URL, got '${v}'`);
  return v;
}

/** The URL without its password, for logs. */
export function redactUrl(v: string): string {
  const u = new URL(v);
  if (u.password) u.password = "***";
  return u.toString();
}

export function dataFlag(v: string | undefined): string {
  return resolve(v ?? process.env.TESSERA_DATA ?? "tessera-data");
}

/**
 * Runs until SIGTERM or SIGINT, then `stop()` (which lets the running job finish)
 * and resolves with the exit code; a second signal exits at once.
 */
export function untilSignalled(o: {
  /** What stopping does, after "tessera: SIGTERM: ". */
  stopping: string;
  stop: () => Promise<void>;
  err: (s: string) => void;
}): Promise<number> {
  return new Promise<number>((done) => {
    let stopping = false;
    const onSignal = (signal: string) => {
      if (stopping) {
        // A second Ctrl-C means "now": the running job is requeued by the next start anyway.
        o.err(`tessera: ${signal} again, exiting without waiting`);
        process.exit(130);
      }
      stopping = true;
      o.err(`tessera: ${signal}: ${o.stopping}`);
      o.stop().then(
        () => {
          o.err("tessera: stopped");
          done(0);
        },
        (e) => done(runtimeFailure(e, o.err)),
      );
    };
    process.once("SIGTERM", () => onSignal("SIGTERM"));
    process.on("SIGINT", () => onSignal("SIGINT"));
  });
}

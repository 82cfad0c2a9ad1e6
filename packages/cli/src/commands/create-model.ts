// `tessera create-model DIR`: a random-weight model folder in the diffusers
// layout, so the whole path (load, text, denoise, decode, write) can be tried on
// a fresh clone before any checkpoint is downloaded.
import { existsSync, readdirSync, statSync } from "node:fs";
import { resolve } from "node:path";
import {
  looksLikeModelFolder,
  RANDOM_MODEL_NAMES,
  RANDOM_MODELS,
  type RandomModelName,
  writeRandomWanModel,
} from "@tessera/core";
import type { DType } from "@tessera/native";
import { UsageError } from "../args.js";
import { type Flags, readFlags } from "../flags.js";
import type { CommandHelp } from "../help.js";
import { formatBytes, runtimeFailure } from "./model-args.js";

const FLAGS = {
  config: {
    kind: "choice",
    choices: RANDOM_MODEL_NAMES,
    default: "tiny",
    description: `the architecture: ${RANDOM_MODEL_NAMES.map((n) => `${n} (${RANDOM_MODELS[n].description})`).join(", ")}`,
  },
  seed: {
    kind: "integer",
    value: "N",
    min: 0,
    max: 2 ** 31,
    default: 0,
    description: "seed of the random weights",
  },
  dtype: {
    kind: "choice",
    choices: ["f32", "bf16", "f16"],
    defaultText: "f32 for the tiny ones, else bf16",
    description: "dtype of the weights written",
  },
  json: { kind: "boolean", description: "print what was written as JSON" },
} as const satisfies Flags;

export const CREATE_MODEL_HELP: CommandHelp = {
  usage: ["create-model DIR [options]"],
  summary: "Write a random-weight model folder (diffusers layout) to try the whole path with.",
  flags: FLAGS,
};

// Image-to-video models need their image (FLF2V: and the end image).
function imageHint(config: RandomModelName): string {
  if (config.includes("flf2v")) return " --image FIRST.png --end-image LAST.png";
  return config.includes("i2v") ? " --image FIRST.png" : "";
}

export async function createModelCommand(
  argv: string[],
  out: (s: string) => void,
  err: (s: string) => void,
): Promise<number> {
  const { values, positionals } = readFlags(argv, FLAGS);
  if (positionals.length !== 1) throw new UsageError("create-model takes one DIR (the folder to write)");
  const dir = resolve(positionals[0] as string);
  const config: RandomModelName = values.config;
  const seed = values.seed;
  const tiny = config.startsWith("tiny");
  const dtype: DType = values.dtype ?? (tiny ? "f32" : "bf16");
  // Never write into a folder that holds something other than a model.
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new UsageError(`DIR '${dir}' exists and is not a folder`);
    if (readdirSync(dir).length > 0 && !looksLikeModelFolder(dir))
      throw new UsageError(`DIR '${dir}' is not empty and not a model folder; refusing to write into it`);
  }
  try {
    const t0 = performance.now();
    let last = "";
    const written = await writeRandomWanModel(dir, {
      config,
      seed,
      dtype,
      onProgress: ({ component }) => {
        if (component !== last && !values.json && !tiny) err(`writing ${component}...`);
        last = component;
      },
    });
    const ms = performance.now() - t0;
    if (values.json) out(JSON.stringify({ dir, config, seed, dtype, bytes: written.bytes, ms }, null, 2));
    else
      out(
        `wrote a random ${config} model (seed ${seed}, ${dtype}, ${formatBytes(written.bytes)} of weights) to ${dir}\n` +
          `try: tessera generate "a red ball" --model ${dir}${imageHint(config)} -o ball.gif`,
      );
    return 0;
  } catch (e) {
    return runtimeFailure(e, err);
  }
}

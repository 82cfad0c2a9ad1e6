// `tessera create-model DIR`: a random-weight model folder in the diffusers
// layout, so the whole path (load, text, denoise, decode, write) can be tried on
// a fresh clone before any checkpoint is downloaded.
import { existsSync, readdirSync, statSync } from "node:fs";
import { resolve } from "node:path";
import {
  looksLikeModelFolder,
  RANDOM_MODEL_NAMES,
  type RandomModelName,
  writeRandomWanModel,
} from "@tessera/core";
import type { DType } from "@tessera/native";
import { choiceFlag, intFlag, parse, UsageError } from "../args.js";
import { formatBytes, runtimeFailure } from "./model-args.js";

export async function createModelCommand(
  argv: string[],
  out: (s: string) => void,
  err: (s: string) => void,
): Promise<number> {
  const { values, positionals } = parse(argv, {
    config: { type: "string" },
    seed: { type: "string" },
    dtype: { type: "string" },
    json: { type: "boolean" },
  });
  if (positionals.length !== 1) throw new UsageError("create-model takes one DIR (the folder to write)");
  const dir = resolve(positionals[0] as string);
  const config = choiceFlag<RandomModelName>("config", values.config, RANDOM_MODEL_NAMES, "tiny");
  const seed = intFlag("seed", values.seed, 0, 0, 2 ** 31);
  const dtype = choiceFlag<DType>(
    "dtype",
    values.dtype,
    ["f32", "bf16", "f16"],
    config === "tiny" ? "f32" : "bf16",
  );
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
        if (component !== last && !values.json && config !== "tiny") err(`writing ${component}...`);
        last = component;
      },
    });
    const ms = performance.now() - t0;
    if (values.json) out(JSON.stringify({ dir, config, seed, dtype, bytes: written.bytes, ms }, null, 2));
    else
      out(
        `wrote a random ${config} model (seed ${seed}, ${dtype}, ${formatBytes(written.bytes)} of weights) to ${dir}\n` +
          `try: tessera generate "a red ball" --model ${dir} -o ball.gif`,
      );
    return 0;
  } catch (e) {
    return runtimeFailure(e, err);
  }
}

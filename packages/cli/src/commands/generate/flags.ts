// `tessera generate`'s flags: those about the run (output, model, device,
// precision, GPUs) are declared here; those that set a generation parameter are
// the CLI spellings of @tessera/core/params, so a parameter declared there is a
// flag here, with its parsing, range and help, without an edit.
import {
  EXPERT_SWAPS,
  type ExpertSwap,
  type GenerateOptions,
  OFFLOAD_OPTIONS,
  parseByteSize,
} from "@tessera/core";
import { cliName, type ParamSpec, paramsOn } from "@tessera/core/params";
import { type Device, type DType, defaultDevice } from "@tessera/native";
import { UsageError } from "../../args.js";
import { type FlagSpec, type Flags, readFlags } from "../../flags.js";
import type { CommandHelp } from "../../help.js";
import { deviceFlag, resolveModel } from "../model-args.js";
import { checkInput } from "./inputs.js";
import { checkOutput } from "./output.js";

const DTYPES = ["f32", "bf16", "f16"] as const;

/** The flags about the run rather than the video. */
const RUN_FLAGS = {
  output: {
    kind: "string",
    short: "o",
    value: "FILE",
    default: "out.mp4",
    description: "where to write: .mp4 or .webm (need ffmpeg), .gif, .y4m, or DIR/ for PNG frames",
  },
  model: {
    kind: "string",
    value: "DIR|NAME",
    defaultText: "$TESSERA_MODEL, else the bundled demo model, tessera-world",
    description: "a model folder, or the name of one under $TESSERA_MODELS or ./models",
  },
  device: {
    kind: "string",
    value: "cpu|cuda[:N]",
    defaultText: "cuda when a GPU is found, else cpu",
    description: "where to run",
  },
  dtype: {
    kind: "choice",
    choices: DTYPES,
    defaultText: "bf16 on a GPU, f32 on the CPU",
    description: "precision of the transformer and text encoder",
  },
  "vae-dtype": {
    kind: "choice",
    choices: DTYPES,
    default: "f32",
    description:
      "precision of the VAE; bf16 decodes on the GPU's implicit-GEMM conv kernel (faster, less memory)",
  },
  "expert-swap": {
    kind: "choice",
    choices: EXPERT_SWAPS,
    default: "auto",
    description:
      "two-expert models (Wan2.2 A14B): keep the idle expert in host memory and swap it in at the boundary (always), keep both on the device (never), or swap when both do not fit (auto)",
  },
  offload: { kind: "boolean", description: OFFLOAD_OPTIONS.offload.description },
  "max-gpu-memory": {
    kind: "string",
    value: OFFLOAD_OPTIONS.maxGpuMemory.value,
    description: OFFLOAD_OPTIONS.maxGpuMemory.description,
  },
  gpus: {
    kind: "string",
    value: "N",
    range: "1 to 1024",
    description: "one generation over N GPUs (a process each, NCCL; text-to-video)",
  },
  json: { kind: "boolean", description: "print a JSON report on stdout instead of a line" },
} as const satisfies Flags;

/** The CLI's parameters, each as its flag (all but the PROMPT positional). */
function paramFlags(): Record<string, FlagSpec> {
  const flags: Record<string, FlagSpec> = {};
  for (const p of paramsOn("cli")) {
    const cli = p.cli;
    if (!cli || cli.positional) continue;
    flags[cli.flag] = cli.negates
      ? { kind: "boolean", description: cli.description ?? p.description }
      : { kind: "param", param: p };
  }
  return flags;
}

export const GENERATE_FLAGS = { ...RUN_FLAGS, ...paramFlags() };

export const GENERATE_HELP: CommandHelp = {
  usage: ["generate PROMPT [options]"],
  summary:
    "Make a video from a text prompt with a Wan-family model folder (the bundled demo model by default).",
  flags: GENERATE_FLAGS,
  notes: [
    "modes: --image FILE (image-to-video), --end-image FILE (with --image: interpolation),",
    "  --video FILE [--strength X] (video-to-video), --video FILE --extend [--context N] [--loop] (extension)",
    "few steps with a distillation LoRA (lightx2v's 4 steps at 1000/750/500/250, shift 5, no guidance):",
    "  --lora distill.safetensors --sigmas 1,0.75,0.5,0.25 --shift 5 --guidance 1",
    "your own text encoder: --prompt-embeds FILE (a .safetensors of one tensor, or of prompt_embeds and",
    "  negative_prompt_embeds) instead of PROMPT; --negative-prompt-embeds FILE for the negative alone",
    'example: tessera generate "a red ball bounces" -o ball.gif --steps 20',
  ],
};

// The flag of a parameter, without its dashes, as GENERATE_FLAGS keys it.
const cliFlag = (key: string): keyof typeof GENERATE_FLAGS =>
  cliName(key).replace(/^--/, "") as keyof typeof GENERATE_FLAGS;

export type InputName = "image" | "endImage" | "video" | "promptEmbeds" | "negativePromptEmbeds";

/** The flags that set generation parameters, as generate() options, input files, and CLI-only values. */
export interface ParamValues {
  /** Options the flags set (inputs not yet read). */
  options: Partial<GenerateOptions>;
  /** Input files by option name, as given. */
  files: Partial<Record<InputName, string>>;
  /** Parameters only the CLI carries (fps), by key. */
  cliOnly: Record<string, unknown>;
}

function isLibrary(p: ParamSpec): boolean {
  return p.surfaces.includes("library");
}

/** Maps each given parameter flag onto what it sets, as its declaration says. */
export function paramValues(values: Record<string, unknown>): ParamValues {
  const options: Record<string, unknown> = {};
  const files: Partial<Record<InputName, string>> = {};
  const cliOnly: Record<string, unknown> = {};
  for (const p of paramsOn("cli")) {
    const cli = p.cli;
    if (!cli || cli.positional) continue;
    const v = values[cli.flag];
    if (v === undefined || v === false) continue;
    if (cli.negates) options[p.key] = false;
    else if (p.type.kind === "input") files[p.key as InputName] = v as string;
    else if (p.type.kind === "loras")
      // LoRA files, like inputs, must exist; the paths are made absolute.
      options[p.key] = (v as { path: string; strength?: number }[]).map((l) => ({
        ...l,
        path: checkInput(`--${cli.flag}`, l.path),
      }));
    else if (p.spells) for (const [i, k] of p.spells.entries()) options[k] = (v as unknown[])[i];
    else if (isLibrary(p)) options[p.key] = v;
    else cliOnly[p.key] = v;
  }
  return { options: options as Partial<GenerateOptions>, files, cliOnly };
}

/** Everything `generate` was asked for, checked as far as it can be without the model. */
export interface GenerateRequest {
  prompt: string;
  output: string;
  modelDir: string;
  device: Device;
  dtype: DType;
  vaeDtype: DType;
  /** Two-expert models: where the idle expert waits (--expert-swap). */
  expertSwap: ExpertSwap;
  /** Weight offload: true (--offload), or undefined to offload only when the model does not fit maxGpuMemory. */
  offload: true | undefined;
  /** --max-gpu-memory in bytes. */
  maxGpuMemory: number | undefined;
  /** generate() options from the flags, without the inputs (read once the size is known). */
  options: GenerateOptions;
  /** Input files, resolved to absolute paths. */
  files: Partial<Record<InputName, string>>;
  fps: number | undefined;
  /** The raw --gpus and --device, for the multi-GPU launcher. */
  gpus: string | undefined;
  deviceFlag: string | undefined;
  json: boolean;
}

// Combinations the library would refuse too, said in flags and before any file is read.
function checkCombinations(o: Partial<GenerateOptions>, files: ParamValues["files"], gpus: unknown): void {
  const f = cliName;
  if (o.stepCache !== undefined && gpus !== undefined)
    throw new UsageError(`${f("stepCache")} runs on one device; it cannot be combined with --gpus`);
  if (files.endImage && files.video)
    throw new UsageError(`${f("endImage")} cannot be combined with ${f("video")}`);
  if (files.endImage && o.loop)
    throw new UsageError(`${f("endImage")} and ${f("loop")} both set the last frame; give one`);
  if (o.extend && !files.video)
    throw new UsageError(`${f("extend")} needs ${f("video")} (the clip to continue)`);
  if (o.strength !== undefined && !files.video)
    throw new UsageError(`${f("strength")} needs ${f("video")} (video-to-video)`);
  if (o.strength !== undefined && o.extend)
    throw new UsageError(`${f("strength")} applies to video-to-video, not ${f("extend")}`);
  if (o.contextFrames !== undefined && !o.extend)
    throw new UsageError(`${f("contextFrames")} applies to ${f("extend")} only`);
  if (files.image && files.video) throw new UsageError(`${f("image")} and ${f("video")} cannot be combined`);
}

/** Parses and checks generate's argv (UsageError naming the flag at fault). */
export function readGenerateFlags(argv: string[]): GenerateRequest {
  const { values, positionals } = readFlags(argv, GENERATE_FLAGS);
  const prompt = positionals.join(" ").trim();
  // --prompt-embeds stands for the PROMPT (as diffusers takes prompt or prompt_embeds).
  const embeds = values[cliFlag("promptEmbeds")] !== undefined;
  if (prompt === "" && !embeds)
    throw new UsageError('generate needs a PROMPT, e.g. tessera generate "a red ball" --model DIR');
  if (prompt !== "" && embeds)
    throw new UsageError(
      `give a PROMPT or ${cliName("promptEmbeds")}, not both (the embeddings stand for the prompt)`,
    );
  if (
    values[cliFlag("negativePrompt")] !== undefined &&
    values[cliFlag("negativePromptEmbeds")] !== undefined
  )
    throw new UsageError(`give ${cliName("negativePrompt")} or ${cliName("negativePromptEmbeds")}, not both`);
  const output = values.output;
  checkOutput(output);
  const device = deviceFlag(values.device, defaultDevice);
  const dtype = values.dtype ?? (device.kind === "cpu" ? "f32" : "bf16");
  if (device.kind === "cpu" && dtype !== "f32") throw new UsageError("--dtype on the CPU must be f32");
  const vaeDtype = values["vae-dtype"];
  if (device.kind === "cpu" && vaeDtype !== "f32") throw new UsageError("--vae-dtype on the CPU must be f32");

  const { options, files, cliOnly } = paramValues(values);
  checkCombinations(options, files, values.gpus);
  let maxGpuMemory: number | undefined;
  if (values["max-gpu-memory"] !== undefined) {
    try {
      maxGpuMemory = parseByteSize(values["max-gpu-memory"], "--max-gpu-memory");
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  const resolved: Partial<Record<InputName, string>> = {};
  for (const [key, path] of Object.entries(files) as [InputName, string][])
    resolved[key] = checkInput(cliName(key), path);
  return {
    prompt,
    output,
    modelDir: resolveModel(values.model),
    device,
    dtype,
    vaeDtype,
    expertSwap: values["expert-swap"],
    offload: values.offload ? true : undefined,
    maxGpuMemory,
    options: { ...options, prompt },
    files: resolved,
    fps: cliOnly.fps as number | undefined,
    gpus: values.gpus,
    deviceFlag: values.device,
    json: values.json,
  };
}

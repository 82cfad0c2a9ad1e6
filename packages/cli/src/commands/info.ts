// `tessera info MODEL`: what a model folder holds — configs, parameters and
// on-disk dtypes per component, sampling defaults — and a rough memory estimate
// for a generation size, read from the configs and safetensors headers without
// loading any weights.
import { stat } from "node:fs/promises";
import {
  clipParameterCount,
  componentWeightFiles,
  detectWanFamily,
  estimateMemory,
  generationDefaults,
  inspectWeights,
  modelLimits,
  parameterCount,
  readModelFolder,
  resolveOptions,
  spatialFactor,
  temporalFactor,
  umt5ParameterCount,
  vaeParameterCount,
} from "@tessera/core";
import { param } from "@tessera/core/params";
import { type DType, defaultDevice } from "@tessera/native";
import { UsageError } from "../args.js";
import { type Flags, readFlags } from "../flags.js";
import type { CommandHelp } from "../help.js";
import { formatBytes, formatCount, resolveModel, runtimeFailure } from "./model-args.js";

// --size and --frames are generate's: the generation parameters' own flags.
const FLAGS = {
  size: { kind: "param", param: param("size") },
  frames: { kind: "param", param: param("frames") },
  dtype: {
    kind: "choice",
    choices: ["f32", "bf16", "f16"],
    defaultText: "bf16 on a GPU, f32 on the CPU (as generate)",
    description: "precision of the memory estimate",
  },
  json: { kind: "boolean", description: "print the report as JSON" },
} as const satisfies Flags;

export const INFO_HELP: CommandHelp = {
  usage: ["info [MODEL] [options]"],
  summary:
    "A model folder's configs, parameters and on-disk dtypes, its sampling defaults, and a rough memory estimate for a size.",
  flags: FLAGS,
  notes: ["MODEL: a folder, or a name under $TESSERA_MODELS or ./models (default: as generate's --model)"],
};

export async function infoCommand(
  argv: string[],
  out: (s: string) => void,
  err: (s: string) => void,
): Promise<number> {
  const { values, positionals } = readFlags(argv, FLAGS);
  if (positionals.length > 1) throw new UsageError(`info takes one MODEL, got ${positionals.length}`);
  const dir = resolveModel(positionals[0]);
  // Estimate for how `generate` would run here by default: bf16 on a GPU, f32 on the CPU.
  const device = defaultDevice().kind;
  const dtype: DType = values.dtype ?? (device === "cpu" ? "f32" : "bf16");
  const size = values.size as [number, number] | undefined;
  const framesFlag = values.frames as number | undefined;
  try {
    const info = await readModelFolder(dir);
    const defaults = generationDefaults(info.defaults);
    const [width, height] = size ?? [defaults.width, defaults.height];
    const frames = framesFlag ?? defaults.frames;
    resolveOptions(
      { prompt: "", width, height, frames },
      defaults,
      modelLimits(info.transformer, info.vae, info.transformer2 ? 2 : 1),
      () => 0,
    );

    const components: Record<
      string,
      { parameters: number; dtypes: Record<string, number>; bytes: number; files: number }
    > = {};
    const params: Record<string, number> = {
      transformer: parameterCount(info.transformer),
      ...(info.transformer2 ? { transformer_2: parameterCount(info.transformer2) } : {}),
      vae: vaeParameterCount(info.vae),
      text_encoder: umt5ParameterCount(info.textEncoder),
      // Image-to-video models (Wan2.1 I2V / FLF2V): the CLIP vision tower.
      ...(info.image ? { image_encoder: clipParameterCount(info.image.imageEncoder) } : {}),
    };
    for (const [name, parameters] of Object.entries(params)) {
      const files = await componentWeightFiles(dir, name);
      let bytes = 0;
      for (const f of files) bytes += (await stat(f)).size;
      const dtypes: Record<string, number> = {};
      if (files.length > 0) {
        const inv = await inspectWeights(`${dir}/${name}`);
        for (const e of inv.tensors.values()) dtypes[e.info.dtype] = (dtypes[e.info.dtype] ?? 0) + 1;
      }
      components[name] = { parameters, dtypes, bytes, files: files.length };
    }
    const estimate = (expertSwap: boolean, offload = false) =>
      estimateMemory({
        transformer: info.transformer,
        vae: info.vae,
        textParams: params.text_encoder as number,
        ...(params.image_encoder !== undefined ? { imageParams: params.image_encoder } : {}),
        dtype,
        device,
        width,
        height,
        frames,
        guidance: defaults.guidance,
        ...(info.transformer2 ? { transformer2: info.transformer2, expertSwap } : {}),
        ...(offload ? { offload } : {}),
      });
    const memory = estimate(false);
    // Also the run with the transformer blocks' weights in host memory (--offload).
    const offloaded = device === "cuda" ? estimate(false, true) : null;
    // Two experts: also the run with the idle expert in host memory (--expert-swap).
    const swapped = info.transformer2 && device === "cuda" ? estimate(true) : null;
    const family = await detectWanFamily(dir);
    const report = {
      path: info.dir,
      class: info.className,
      family: family?.name ?? null,
      ...(info.description ? { description: info.description } : {}),
      transformer: info.transformer,
      vae: info.vae,
      textEncoder: info.textEncoder,
      scheduler: info.scheduler,
      defaults,
      components,
      estimate: { width, height, frames, dtype, device, ...memory },
      ...(offloaded ? { estimateOffload: { width, height, frames, dtype, device, ...offloaded } } : {}),
      ...(info.transformer2
        ? {
            transformer2: info.transformer2,
            boundaryRatio: info.boundaryRatio,
            ...(swapped ? { estimateExpertSwap: { width, height, frames, dtype, device, ...swapped } } : {}),
          }
        : {}),
    };
    if (values.json) {
      out(JSON.stringify(report, null, 2));
      return 0;
    }
    const t = info.transformer;
    const c = info.textEncoder;
    const line = (name: string, what: string) => {
      const k = components[name] as (typeof components)[string];
      const dt = Object.entries(k.dtypes)
        .map(([d, n]) => `${d}×${n}`)
        .join(" ");
      out(
        `  ${name.padEnd(13)} ${formatCount(k.parameters).padStart(8)} params  ${what}\n` +
          `  ${"".padEnd(13)} ${k.files ? `${formatBytes(k.bytes)} in ${k.files} file(s), tensors ${dt}` : "no weight files"}`,
      );
    };
    out(
      `${info.dir}  (${family ? `${family.name}, ` : ""}${info.className})${info.description ? `\n  ${info.description}` : ""}`,
    );
    line(
      "transformer",
      `${t.num_layers} layers, ${t.num_attention_heads} heads × ${t.attention_head_dim}, ffn ${t.ffn_dim}, patch ${t.patch_size.join("×")}, ${t.in_channels} latent channels`,
    );
    const t2 = info.transformer2;
    if (t2)
      line(
        "transformer_2",
        `the low-noise expert: ${t2.num_layers} layers, ${t2.num_attention_heads} heads × ${t2.attention_head_dim}, ffn ${t2.ffn_dim}; ` +
          `timesteps below ${(info.boundaryRatio as number) * (info.scheduler?.numTrainTimesteps ?? 1000)} (boundary_ratio ${info.boundaryRatio})`,
      );
    line(
      "vae",
      `base ${info.vae.base_dim}, z ${info.vae.z_dim}, ×${spatialFactor(info.vae)} space, ×${temporalFactor(info.vae)} time`,
    );
    line("text_encoder", `umT5 ${c.num_layers} layers, d_model ${c.d_model}, vocab ${c.vocab_size}`);
    if (info.image) {
      const ie = info.image.imageEncoder;
      line(
        "image_encoder",
        `CLIP vision ${ie.num_hidden_layers} layers, width ${ie.hidden_size}, ${ie.image_size} px in ${ie.patch_size} px patches, ${ie.hidden_act}`,
      );
    }
    out(
      `  sampling      ${defaults.scheduler} shift ${defaults.shift}, ${defaults.steps} steps, guidance ${defaults.guidance}, ` +
        `${defaults.width}x${defaults.height}, ${defaults.frames} frames @ ${defaults.fps} fps`,
    );
    out(
      `  memory        ~${formatBytes(memory.total)} for ${width}x${height}, ${frames} frames at ${dtype} ` +
        `on the ${device === "cpu" ? "CPU" : "GPU"} (weights ${formatBytes(memory.weights)}, denoising ${formatBytes(memory.denoise)}, ` +
        `decoding ${formatBytes(memory.decode)}, runtime ${formatBytes(memory.runtime)}; an estimate that errs high)`,
    );
    if (memory.experts)
      out(
        `  experts       both on the device: ${formatBytes(memory.experts[0])} + ${formatBytes(memory.experts[1])} of weights` +
          (swapped
            ? `; swapping the idle one (--expert-swap always, or auto when both do not fit): ~${formatBytes(swapped.total)} ` +
              `on the GPU and ${formatBytes(swapped.hostWeights ?? 0)} of page-locked host memory, one expert copied in at the boundary`
            : ""),
      );
    if (offloaded)
      out(
        `  offload       with the transformer blocks in host memory (--offload, or auto under --max-gpu-memory): ` +
          `~${formatBytes(offloaded.total)} on the GPU and ${formatBytes(offloaded.hostWeights ?? 0)} of page-locked host memory`,
      );
    return 0;
  } catch (e) {
    return runtimeFailure(e, err);
  }
}

// `tessera forward`: one forward pass of a Wan-family transformer with random
// weights on the chosen device — a real end-to-end run of the native ops until a
// model checkpoint is loaded by `generate`.
import {
  parameterCount,
  randomWanTransformerWeights,
  WAN_TINY,
  WAN21_T2V_1_3B,
  WanTransformer,
  type WanTransformerConfig,
} from "@tessera/core";
import { Device, type DType, full, randn, scope } from "@tessera/native";
import { UsageError } from "../args.js";
import { type Flags, noArguments, readFlags } from "../flags.js";
import type { CommandHelp } from "../help.js";

const FLAGS = {
  device: { kind: "string", value: "cpu|cuda[:N]", default: "cpu", description: "where to run" },
  config: {
    kind: "choice",
    choices: ["tiny", "wan2.1-1.3b"],
    default: "tiny",
    description: "the transformer's architecture",
  },
  layers: {
    kind: "integer",
    value: "N",
    min: 1,
    max: 64,
    defaultText: "the config's",
    description: "transformer blocks to run",
  },
  frames: {
    kind: "integer",
    value: "N",
    min: 1,
    max: 1024,
    default: 5,
    description: "video frames of the latent",
  },
  size: { kind: "size", default: [64, 64], description: "video size, each side a multiple of 16" },
  dtype: {
    kind: "choice",
    choices: ["f32", "bf16", "f16"],
    defaultText: "bf16 on a GPU, f32 on the CPU",
    description: "precision",
  },
  seed: {
    kind: "integer",
    value: "N",
    min: 0,
    max: 2 ** 31,
    default: 0,
    description: "seed of the weights and inputs",
  },
  json: { kind: "boolean", description: "print the report as JSON" },
} as const satisfies Flags;

export const FORWARD_HELP: CommandHelp = {
  usage: ["forward [options]"],
  summary:
    "Run one forward pass of a Wan-family transformer with random weights (a check of the native ops).",
  flags: FLAGS,
};

export async function forwardCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = readFlags(argv, FLAGS);
  noArguments("forward", positionals);
  const device = Device.parse(values.device);
  const configName = values.config;
  const base: WanTransformerConfig = configName === "tiny" ? WAN_TINY : WAN21_T2V_1_3B;
  const config = { ...base, num_layers: values.layers ?? base.num_layers };
  const dtype: DType = values.dtype ?? (device.kind === "cpu" ? "f32" : "bf16");
  if (device.kind === "cpu" && dtype !== "f32") throw new UsageError("--dtype on the CPU must be f32");
  const frames = values.frames;
  const [width, height] = values.size;
  if (width % 16 || height % 16)
    throw new UsageError(`--size must be a multiple of 16 in each side, got ${width}x${height}`);
  const seed = values.seed;
  // Latent of a Wan VAE: 4x in time (first frame kept), 8x in space.
  const lf = Math.floor((frames - 1) / 4) + 1;
  const lh = height / 8;
  const lw = width / 8;
  const textLen = 16;

  const t0 = performance.now();
  const weights = randomWanTransformerWeights(config, { seed, device, dtype });
  const model = new WanTransformer(config, weights);
  const result = await scope(async () => {
    const latents = randn([1, lf, lh, lw, config.in_channels], { seed: seed + 1, device, dtype });
    const context = randn([1, textLen, config.text_dim], { seed: seed + 2, device, dtype });
    const timesteps = full([1], 500, { device, dtype: "f32" });
    await device.synchronize();
    const t1 = performance.now();
    const y = model.forward({ latents, timesteps, context });
    const values = await y.toFloat32Array();
    const t2 = performance.now();
    let sum = 0;
    let sq = 0;
    let finite = true;
    for (const v of values) {
      sum += v;
      sq += v * v;
      if (!Number.isFinite(v)) finite = false;
    }
    return {
      shape: y.shape,
      mean: sum / values.length,
      rms: Math.sqrt(sq / values.length),
      finite,
      ms: t2 - t1,
      setupMs: t1 - t0,
    };
  });
  weights.dispose();
  const report = {
    device: device.name,
    config: configName,
    parameters: parameterCount(config),
    dtype,
    latent: [1, lf, lh, lw, config.in_channels],
    tokens: (lf / config.patch_size[0]) * (lh / config.patch_size[1]) * (lw / config.patch_size[2]),
    ...result,
  };
  if (values.json) out(JSON.stringify(report, null, 2));
  else
    out(
      `forward ${configName} (${(report.parameters / 1e6).toFixed(2)}M params, ${report.tokens} tokens) on ${device.name} ${dtype}: ` +
        `${result.ms.toFixed(1)} ms, output [${result.shape.join(", ")}] mean ${result.mean.toFixed(4)} rms ${result.rms.toFixed(4)}`,
    );
  if (!result.finite) {
    out("error: the output holds non-finite values");
    return 1;
  }
  return 0;
}

// Wan2.2 A14B's two-expert schedule against golden tensors from
// training/make_golden_a14b.py: two tiny random experts, the engine's own noise for a
// seed, prompt and negative-prompt text states, and the float64 Euler sample after
// four steps that cross the boundary (two per expert, each with its own guidance).
// The whole WanPipeline.generate() runs — the one denoising loop, with the expert
// choice, the per-expert guidance and (second run) the swap through host memory —
// and its final latents must agree to ‖out − ref‖ / ‖ref‖ ≤ 1e-3 in f32 (a
// multi-step pipeline output). The prompt embeddings are the input (promptEmbeds,
// as diffusers' prompt_embeds); the random tiny text encoder and VAE only complete
// the pipeline. A plain module, like checks.ts.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Device, type DType, randn } from "@tessera/native";
import { UMT5_TINY } from "../models/t5/config.js";
import type { WanTransformerConfig } from "../models/wan/config.js";
import { WanTransformer } from "../models/wan/transformer.js";
import { WAN_VAE_TINY } from "../models/wan-vae/config.js";
import { randomWanComponents } from "../pipelines/model-folder.js";
import { type GenerateResult, WanPipeline } from "../pipelines/wan.js";
import { loadWeights } from "../weights/load.js";
import { type GoldenResult, goldenDir, goldenMeta } from "./fixture.js";
import { PIPELINE_LOW_PRECISION_BOUND } from "./pipeline.js";

export const A14B_FIXTURE = "wan_a14b_schedule.safetensors";
/** A multi-step pipeline output in f32. */
export const PIPELINE_BOUND = 1e-3;

/** Why the two-expert golden check cannot run here (its fixture is absent), or null. */
export function a14bGoldenMissing(dir = goldenDir()): string | null {
  const p = join(dir, A14B_FIXTURE);
  return existsSync(p)
    ? null
    : `${p} is absent: run python3 training/make_golden_a14b.py (see training/README.md)`;
}

const isData = (n: string) => /^(input|output)\./.test(n);

// Unlike fixture.ts's relErr, guarded against an all-zero reference.
function relErr(out: Float32Array, ref: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    num += ((out[i] as number) - (ref[i] as number)) ** 2;
    den += (ref[i] as number) ** 2;
  }
  return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-300);
}

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = a.length === b.length ? 0 : Number.POSITIVE_INFINITY;
  for (let i = 0; i < Math.min(a.length, b.length); i++)
    m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

/**
 * Runs the two-expert schedule checks on `device` (default the CPU) with the experts in
 * `dtype` (default f32; bf16 on a GPU is held to the pipeline checks' looser bound).
 */
export async function runA14bGoldenChecks(
  opts: { device?: string; dtype?: DType; dir?: string } = {},
): Promise<GoldenResult[]> {
  const device = Device.parse(opts.device ?? "cpu");
  const dtype = opts.dtype ?? "f32";
  const bound = dtype === "f32" ? PIPELINE_BOUND : PIPELINE_LOW_PRECISION_BOUND;
  const path = join(opts.dir ?? goldenDir(), A14B_FIXTURE);
  const meta = await goldenMeta(path);
  const config = JSON.parse(meta.config as string) as WanTransformerConfig;
  const num = (k: string) => Number(meta[k]);
  const results: GoldenResult[] = [];
  const data = await loadWeights(path, { filter: isData });
  try {
    const f32 = async (name: string) => data.get(name).toFloat32Array();
    const noise = data.get("input.noise");

    // The noise the pipeline draws for the seed is the fixture's.
    const mine = randn(noise.shape, { seed: num("noise_seed") });
    const dNoise = maxAbs(await mine.toFloat32Array(), await noise.toFloat32Array());
    mine.dispose();
    results.push({
      name: "a14b noise",
      error: dNoise,
      bound: 1e-6,
      pass: dNoise <= 1e-6,
      detail: `randn(seed ${meta.noise_seed}) against the fixture's port of the engine's Philox noise (max abs diff)`,
    });

    const [, f, h, w] = noise.shape as [number, number, number, number, number];
    const run = async (expertSwap: boolean) => {
      const textLength = data.get("input.context").shape[1] as number;
      const pipe = await twoExpertPipeline(
        path,
        config,
        textLength,
        device,
        dtype,
        num("boundary_ratio"),
        expertSwap,
      );
      const timesteps: number[] = [];
      try {
        const r: GenerateResult = await pipe.generate({
          prompt: "",
          promptEmbeds: data.get("input.context"),
          negativePromptEmbeds: data.get("input.negative_context"),
          width: w * 8,
          height: h * 8,
          frames: 1 + 4 * (f - 1),
          sigmas: Array.from(await f32("input.sigmas")),
          shift: num("shift"),
          guidance: num("guidance"),
          guidance2: num("guidance_2"),
          seed: num("noise_seed"),
          onProgress: (p) => timesteps.push(p.timestep),
        });
        const latents = await r.latents.toFloat32Array();
        r.latents.dispose();
        r.video.dispose();
        return { latents, timesteps, experts: r.experts, swap: r.timings.swap };
      } finally {
        pipe.dispose();
      }
    };

    const ref = await f32("output.latents");
    const a = await run(false);
    const err = relErr(a.latents, ref);
    results.push({
      name: "a14b schedule",
      error: err,
      bound,
      pass: err <= bound,
      detail: `${dtype} generate() latents after ${a.timesteps.length} Euler steps over two experts (guidance ${meta.guidance} / guidance_2 ${meta.guidance_2}) vs float64`,
    });

    const wantTs = Array.from(await f32("output.timesteps"));
    const wantExperts = Array.from((await data.get("output.experts").toTypedArray()) as Int32Array);
    const counts = [0, 1].map((e) => wantExperts.filter((x) => x === e).length);
    const dTs = maxAbs(a.timesteps, wantTs);
    const stepsOk = a.experts?.steps[0] === counts[0] && a.experts?.steps[1] === counts[1];
    results.push({
      name: "a14b experts per step",
      error: stepsOk ? dTs : Number.NaN,
      bound: 1e-3,
      pass: stepsOk && dTs <= 1e-3,
      detail: `timesteps [${a.timesteps.map((t) => t.toFixed(2)).join(", ")}], expert steps [${a.experts?.steps.join(", ")}] (want [${counts.join(", ")}] at boundary ${a.experts?.boundary})`,
    });

    const b = await run(true);
    const dSwap = maxAbs(b.latents, a.latents);
    results.push({
      name: "a14b swap",
      error: dSwap,
      bound: 0,
      pass: dSwap === 0 && (b.experts?.swaps ?? 0) === 1,
      detail: `the same run with the idle expert in host memory (${b.experts?.swaps} swap, ${b.swap.toFixed(1)} ms): max abs diff`,
    });
  } finally {
    data.dispose();
  }
  return results;
}

// The fixture's two experts with a random tiny VAE of their latent width (and a random
// tiny text encoder, which the prompt embeddings leave idle).
async function twoExpertPipeline(
  path: string,
  config: WanTransformerConfig,
  textLength: number,
  device: Device,
  dtype: DType,
  boundaryRatio: number,
  expertSwap: boolean,
): Promise<WanPipeline> {
  const z = config.in_channels;
  const c = randomWanComponents({
    device,
    dtype,
    config: {
      transformer: config,
      vae: { ...WAN_VAE_TINY, z_dim: z, latents_mean: Array(z).fill(0), latents_std: Array(z).fill(1) },
      textEncoder: { ...UMT5_TINY, d_model: config.text_dim },
      defaults: {},
      shift: 3,
    },
  });
  c.transformer.weights.dispose();
  const expert = async (prefix: string) =>
    new WanTransformer(
      config,
      await loadWeights(path, {
        filter: (n) => n.startsWith(`${prefix}.`),
        rename: (n) => n.slice(prefix.length + 1),
        device: expertSwap && prefix === "transformer_2" ? "cpu" : device,
        dtype,
      }),
    );
  return new WanPipeline({
    ...c,
    transformer: await expert("transformer"),
    transformer2: await expert("transformer_2"),
    boundaryRatio,
    expertSwap,
    textLength,
  });
}

// One text-to-video generation split over a Communicator's ranks (one per GPU):
// every rank holds the whole model and the whole latents and runs the same
// scheduler; each step's velocity is computed in parallel and gathered, and the VAE
// decode is split in space. Every rank ends with the same video (rank 0 writes it).
//
// Velocity strategies:
//   cfg:     2 ranks, guidance > 1: rank 0 the conditional branch, rank 1 the
//            unconditional one (no communication inside the transformer);
//   ulysses: the video tokens split in equal contiguous runs (forwardWhole), an
//            all-to-all around attention (heads divisible by the world size); both
//            guidance branches as a batch;
//   ring:    the same split with ring attention (any head count).
// "auto" picks cfg for 2 ranks with guidance, else ulysses where the heads divide,
// else ring.
//
// Mirrors WanPipeline.generate for text-to-video (no image, video or loop
// conditioning), which the in-process tests check it equals.
import { axpby, cast, concat, randn, scope, slice, Tensor } from "@tessera/native";
import type { WanTransformer } from "../models/wan/transformer.js";
import { AbortError, cleanPrompt, type GenerateOptions } from "../pipelines/options.js";
import {
  type GenerateResult,
  type GenerateTimings,
  guidedVelocity,
  type WanPipeline,
} from "../pipelines/wan.js";
import type { FlowScheduler } from "../schedulers/common.js";
import { createScheduler } from "../schedulers/index.js";
import type { Communicator } from "./comm.js";
import { cfgParallelVelocity, type SequenceParallelAttention, UlyssesWanTransformer } from "./ulysses.js";
import { decodeSpatialParallel } from "./vae.js";

export type ParallelStrategy = "cfg" | SequenceParallelAttention;

export interface ParallelGenerateOptions extends GenerateOptions {
  /** How the velocity is split (default "auto"; see the file header). */
  strategy?: ParallelStrategy | "auto";
}

/** The strategy "auto" picks for this world, guidance and head count. */
export function pickStrategy(worldSize: number, guidance: number, heads: number): ParallelStrategy {
  if (worldSize === 2 && guidance > 1) return "cfg";
  return heads % worldSize === 0 ? "ulysses" : "ring";
}

export interface ParallelVelocityOptions {
  strategy: ParallelStrategy;
  /** Conditional text states [1, Lt, text_dim] in the transformer's dtype. */
  cond: Tensor;
  /** Unconditional ones, with guidance > 1. */
  uncond?: Tensor;
  guidance: number;
  /** Latent frames of the whole video (unused since the tokens are split; kept for callers). */
  latentFrames?: number;
}

/**
 * The guided velocity of one step over `comm`'s ranks: (latents [1, F, h, w, C], the
 * same on every rank; timestep) → the whole velocity [1, F, h, w, C] in f32 on every
 * rank (guidedVelocity with one rank). The returned function owns a concatenation of
 * the text states: call dispose() on it when done.
 */
export function parallelVelocity(
  transformer: WanTransformer,
  comm: Communicator,
  o: ParallelVelocityOptions,
): ((latents: Tensor, timestep: number) => Promise<Tensor>) & { dispose(): void } {
  const n = comm.worldSize;
  const cfg = o.guidance > 1;
  if (cfg && !o.uncond) throw new Error("parallelVelocity: guidance > 1 needs the unconditional text states");
  if (o.strategy === "cfg" && (n !== 2 || !cfg))
    throw new Error(
      `parallelVelocity: the cfg strategy needs 2 ranks and guidance > 1, got ${n} rank(s) and guidance ${o.guidance}`,
    );
  const dtype = transformer.weights.get("patch_embedding.weight").dtype;
  const both = cfg ? concat([o.cond, o.uncond as Tensor], 0) : o.cond;
  const par =
    o.strategy === "cfg" || n === 1
      ? null
      : new UlyssesWanTransformer(transformer, comm, { attention: o.strategy });
  const fn = async (x: Tensor, t: number): Promise<Tensor> => {
    if (n === 1) return guidedVelocity(transformer, x, t, both, o.guidance, dtype);
    if (o.strategy === "cfg")
      return cfgParallelVelocity(
        comm,
        transformer,
        x,
        t,
        comm.rank === 0 ? o.cond : (o.uncond as Tensor),
        o.guidance,
      );
    // The tokens split over the ranks (forwardWhole), both branches as a batch of two.
    return scope(async () => {
      const batch = cfg ? 2 : 1;
      const xd = x.dtype === dtype ? x : cast(x, dtype);
      const input = batch === 2 ? concat([xd, xd], 0) : xd;
      const ts = Tensor.from(batch === 2 ? [t, t] : [t], [batch], { device: x.device });
      const raw = await (par as UlyssesWanTransformer).forwardWhole({
        latents: input,
        timesteps: ts,
        context: both,
      });
      const out = raw.dtype === "f32" ? raw : cast(raw, "f32");
      return batch === 2 ? axpby(slice(out, 0, 0, 1), slice(out, 0, 1, 2), o.guidance, 1 - o.guidance) : out;
    });
  };
  return Object.assign(fn, {
    dispose: () => {
      if (both !== o.cond) both.dispose();
    },
  });
}

function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError("generation was aborted", { cause: signal.reason });
}

/**
 * Text-to-video on every rank of `comm` (call it on all of them with the same
 * options, including the seed). Returns what WanPipeline.generate returns.
 */
export async function generateParallel(
  pipe: WanPipeline,
  comm: Communicator,
  opts: ParallelGenerateOptions,
): Promise<GenerateResult> {
  const t0 = performance.now();
  if (comm.worldSize > 1 && opts.seed === undefined)
    throw new Error("generateParallel: pass a seed: every rank must draw the same noise");
  const r = pipe.resolve(opts);
  const prepared = pipe.preparePrompt(r.prompt, opts.rewrite !== false);
  if (r.mode !== "t2v" || r.loop || r.endImage)
    throw new Error(
      `generateParallel: multi-GPU generation does text-to-video only; ${r.loop ? "--loop" : r.endImage ? "an end image" : "image/video conditioning"} runs on one GPU`,
    );
  if (r.stepCache !== false)
    throw new Error(
      "generateParallel: step caching (stepCache) runs on one device; leave it off with several GPUs",
    );
  const n = comm.worldSize;
  const cfg = r.guidance > 1;
  const heads = pipe.transformer.config.num_attention_heads;
  const strategy =
    !opts.strategy || opts.strategy === "auto" ? pickStrategy(n, r.guidance, heads) : opts.strategy;
  if (strategy === "cfg" && (n !== 2 || !cfg))
    throw new Error(
      `generateParallel: the cfg strategy needs 2 ranks and guidance > 1, got ${n} rank(s) and guidance ${r.guidance}`,
    );
  if (strategy === "ulysses" && heads % n !== 0)
    throw new Error(
      `generateParallel: ${heads} attention heads are not divisible by ${n} ranks; use the ring strategy`,
    );
  const signal = opts.signal;
  checkAbort(signal);
  const device = pipe.device;
  const sf = pipe.vae.spatialFactor;
  const shape = [1, r.latentFrames, r.height / sf, r.width / sf, pipe.vae.config.z_dim];

  const owned: Tensor[] = [];
  let latents: Tensor | null = null;
  let scheduler: FlowScheduler | null = null;
  let video: Tensor | null = null;
  let velocity: ReturnType<typeof parallelVelocity> | null = null;
  const timings: GenerateTimings = { text: 0, encode: 0, denoise: 0, step: 0, decode: 0, total: 0 };
  try {
    const tText = performance.now();
    const cond = await pipe.encodeText(prepared.prompt);
    owned.push(cond);
    let uncond: Tensor | null = null;
    if (cfg) {
      uncond = await pipe.encodeText(cleanPrompt(r.negativePrompt));
      owned.push(uncond);
    }
    timings.text = performance.now() - tText;
    checkAbort(signal);

    const noise = randn(shape, { seed: r.seed, device });
    owned.push(noise);
    scheduler = createScheduler(r.scheduler, { shift: r.shift, numTrainTimesteps: pipe.numTrainTimesteps });
    scheduler.setTimesteps(r.steps);
    latents = cast(noise, "f32");

    velocity = parallelVelocity(pipe.transformer, comm, {
      strategy,
      cond,
      ...(uncond ? { uncond } : {}),
      guidance: r.guidance,
      latentFrames: r.latentFrames,
    });

    const tDen = performance.now();
    for (let i = 0; i < r.steps; i++) {
      checkAbort(signal);
      const cur: Tensor = latents;
      const v = await velocity(cur, scheduler.timesteps[i] as number);
      let next: Tensor;
      try {
        next = scheduler.step(v, cur, i);
      } finally {
        v.dispose();
      }
      cur.dispose();
      latents = next;
      await device.synchronize();
      const done = i + 1;
      const elapsed = performance.now() - tDen;
      opts.onProgress?.({
        step: done,
        total: r.steps,
        elapsed,
        eta: (elapsed / done) * (r.steps - done),
        timestep: scheduler.timesteps[i] as number,
        sigma: scheduler.sigmas[i + 1] as number,
      });
    }
    timings.denoise = performance.now() - tDen;
    timings.step = timings.denoise / r.steps;
    scheduler.reset();
    checkAbort(signal);

    const tDec = performance.now();
    const final: Tensor = latents;
    const zIn = pipe.vaeDtype === "f32" ? final : cast(final, pipe.vaeDtype);
    const px = await decodeSpatialParallel(pipe.vae, zIn, comm);
    if (zIn !== final) zIn.dispose();
    video = px.dtype === "f32" ? px : cast(px, "f32");
    if (video !== px) px.dispose();
    await device.synchronize();
    timings.decode = performance.now() - tDec;
    timings.total = performance.now() - t0;
    const result: GenerateResult = {
      video,
      latents: final,
      timings,
      seed: r.seed,
      width: r.width,
      height: r.height,
      frames: r.frames,
      fps: pipe.defaults.fps,
      stepsRun: r.steps,
      fullSteps: r.steps,
      contextFrames: r.contextFrames,
      textCacheHits: 0,
      prompt: prepared.prompt,
      rewrite: prepared.rewrite,
      // Each step exchanges activations between ranks through NCCL: run eagerly.
      stepGraph: { state: "off", replays: 0 },
    };
    latents = null;
    video = null;
    return result;
  } finally {
    velocity?.dispose();
    for (const t of owned) t.dispose();
    latents?.dispose();
    video?.dispose();
    scheduler?.dispose();
  }
}

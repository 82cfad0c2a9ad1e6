// Entry points over a parallel plan (parallel/plan.ts) for callers that hold a communicator:
// generateParallel runs the one pipeline (WanPipeline.generate) under the plan;
// parallelVelocity and cfgParallelVelocity time or test one step's velocity the way
// the pipeline computes it. None of them holds a loop of its own.
import { concat, type DType, type Tensor } from "@tessera/native";
import type { WanTransformer } from "../models/wan/transformer.js";
import type { Communicator } from "../parallel/comm.js";
import { branchesOf, type ParallelStrategy, parallelPlan, planRun, stepSplit } from "../parallel/plan.js";
import { guidedVelocity } from "./guided-velocity.js";
import type { GenerateOptions } from "./options.js";
import type { GenerateResult, WanPipeline } from "./wan.js";

export interface ParallelGenerateOptions extends GenerateOptions {
  /** How the velocity is split (default "auto"; see parallel/plan.ts). */
  strategy?: ParallelStrategy | "auto";
}

/**
 * pipe.generate() under parallelPlan(comm, { strategy }): call it on every rank of
 * `comm` with the same options, including the seed. Returns what generate() returns,
 * the same on every rank.
 */
export function generateParallel(
  pipe: WanPipeline,
  comm: Communicator,
  opts: ParallelGenerateOptions,
): Promise<GenerateResult> {
  const { strategy, ...rest } = opts;
  return pipe.generate(rest, parallelPlan(comm, strategy ? { strategy } : {}));
}

export interface ParallelVelocityOptions {
  strategy: ParallelStrategy | "auto";
  /** Conditional text states [1, Lt, text_dim] in the transformer's dtype. */
  cond: Tensor;
  /** Unconditional ones, with guidance > 1. */
  uncond?: Tensor;
  guidance: number;
  /** Latent rows, to check the plan's VAE split (default: not checked). */
  latentRows?: number;
}

/**
 * The guided velocity of one step over `comm`'s ranks as generate() computes it under
 * parallelPlan(comm, { strategy }): (latents [1, F, h, w, C], the same on every rank;
 * timestep) → the whole velocity [1, F, h, w, C] in f32 on every rank. The returned
 * function owns a concatenation of the text states: call dispose() on it when done.
 */
export function parallelVelocity(
  transformer: WanTransformer,
  comm: Communicator,
  o: ParallelVelocityOptions,
): ((latents: Tensor, timestep: number) => Promise<Tensor>) & { dispose(): void } {
  const cfg = o.guidance > 1;
  if (cfg && !o.uncond) throw new Error("parallelVelocity: guidance > 1 needs the unconditional text states");
  const run = planRun(parallelPlan(comm, { strategy: o.strategy, vae: "whole" }), {
    guidance: o.guidance,
    heads: transformer.config.num_attention_heads,
    latentRows: o.latentRows ?? comm.worldSize,
    seeded: true,
  });
  const branches = cfg ? branchesOf(run, o.cond, o.uncond as Tensor) : [o.cond];
  const context = branches.length === 1 ? (branches[0] as Tensor) : concat(branches, 0);
  const split = stepSplit(run, transformer.config);
  const dtype: DType = transformer.weights.get("patch_embedding.weight").dtype;
  const fn = async (x: Tensor, t: number): Promise<Tensor> =>
    split
      ? guidedVelocity(transformer, x, t, context, o.guidance, dtype, { split })
      : guidedVelocity(transformer, x, t, context, o.guidance, dtype);
  return Object.assign(fn, {
    dispose: () => {
      if (!branches.includes(context)) context.dispose();
    },
  });
}

/**
 * Guidance-parallel velocity over a communicator of exactly 2 ranks: rank 0 runs the
 * conditional branch (its `context` is the conditional text states, batch 1), rank 1
 * the unconditional one; the two outputs are gathered and combined on both ranks as
 * uncond + g·(cond − uncond) in f32 — the same as guidedVelocity's batch of two.
 */
export async function cfgParallelVelocity(
  comm: Communicator,
  model: WanTransformer,
  latents: Tensor,
  timestep: number,
  context: Tensor,
  guidance: number,
): Promise<Tensor> {
  if (comm.worldSize !== 2)
    throw new Error(`cfgParallelVelocity: needs a world of 2 ranks (cond, uncond), got ${comm.worldSize}`);
  if ((latents.shape[0] as number) !== 1 || (context.shape[0] as number) !== 1)
    throw new Error("cfgParallelVelocity: latents and this rank's context must have batch 1");
  return guidedVelocity(model, latents, timestep, context, guidance, context.dtype, {
    split: { branches: (raw) => comm.allGather(raw, 0) },
  });
}

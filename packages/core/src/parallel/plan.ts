// Parallelism as a plan that the one pipeline consults (WanPipeline.generate), the
// way diffusers declares a context-parallel plan on a model instead of writing a
// second pipeline. Every rank holds the whole model, the whole latents and the same
// scheduler, and runs the same generate() call; the plan says what is split and which
// collective joins it again:
//
//   guidance  "batch": both branches on every rank as one batch of two;
//             "ranks": rank 0 runs the conditional branch, rank 1 the unconditional
//             one; the two outputs are all-gathered (dim 0) before the combine.
//   tokens    "whole" on every rank; "ulysses" / "ring": each rank keeps a run of the
//             tokens after patch embedding, self-attention is Ulysses all-to-all or
//             ring attention, the head's output is all-gathered (tokens) before
//             unpatchify (parallel/sequence.ts).
//   vae       "whole" on every rank; "rows": each rank decodes a band of latent rows,
//             with halo rows by ring shifts before every 3×3 conv, the mid-block
//             attention's keys and values all-gathered, and the bands all-gathered at
//             the end (parallel/vae.ts).
//   step cache  each rank caches its own share; the per-token sums its decision reads
//             are all-gathered first, so every rank decides as one device would.
//
// One rank is the trivial plan (SINGLE_DEVICE: no communicator, nothing split): the
// pipeline then runs exactly as it always has, CUDA graph and step cache included.
// A ParallelPlan is what the caller asks for ("auto" picks per run); planRun() turns
// it into a RunPlan for one run's guidance, model and size, or says why it cannot.
import type { Tensor } from "@tessera/native";
import type { MaybePromise } from "../models/maybe-async.js";
import type { WanTransformerConfig } from "../models/wan/config.js";
import type { StepCacheOptions } from "../models/wan/step-cache.js";
import type { TokenGrid, TokenSplit } from "../models/wan/transformer.js";
import type { WanVAE } from "../models/wan-vae/vae.js";
import type { Communicator } from "./comm.js";
import { gatherTokens, type SequenceParallelAttention, sequenceSplit, tokenRun } from "./sequence.js";
import { decodeSpatialParallel } from "./vae.js";

/** How each step's velocity is split over the ranks. */
export type ParallelStrategy = "cfg" | SequenceParallelAttention;

/** What the caller asks for; see the file header. */
export interface ParallelPlan {
  /** The ranks; null for one device. */
  readonly comm: Communicator | null;
  /** The velocity's split; "auto" picks per run (pickStrategy). */
  readonly strategy: ParallelStrategy | "auto";
  /** The VAE decode: split in row bands, or whole on every rank. */
  readonly vae: "rows" | "whole";
}

/** The trivial plan: one device, nothing split. */
export const SINGLE_DEVICE: ParallelPlan = Object.freeze({ comm: null, strategy: "auto", vae: "whole" });

export interface ParallelPlanOptions {
  /** Default "auto". */
  strategy?: ParallelStrategy | "auto";
  /** Default "rows". */
  vae?: "rows" | "whole";
}

/** The plan over `comm`'s ranks (one rank: SINGLE_DEVICE). Call generate() with it on every rank. */
export function parallelPlan(comm: Communicator, opts: ParallelPlanOptions = {}): ParallelPlan {
  const strategy = opts.strategy ?? "auto";
  if (!["auto", "cfg", "ulysses", "ring"].includes(strategy))
    throw new Error(`parallelPlan: unknown strategy '${String(strategy)}' (auto, cfg, ulysses or ring)`);
  if (comm.worldSize === 1) return SINGLE_DEVICE;
  return Object.freeze({ comm, strategy, vae: opts.vae ?? "rows" });
}

/** The strategy "auto" picks for this world, guidance and head count. */
export function pickStrategy(worldSize: number, guidance: number, heads: number): ParallelStrategy {
  if (worldSize === 2 && guidance > 1) return "cfg";
  return heads % worldSize === 0 ? "ulysses" : "ring";
}

/** One run's plan: what is split, in the terms of the file header. */
export interface RunPlan {
  readonly comm: Communicator | null;
  readonly guidance: "batch" | "ranks";
  readonly tokens: "whole" | SequenceParallelAttention;
  readonly vae: "whole" | "rows";
}

/** What planRun needs to know about the run. */
export interface RunFacts {
  guidance: number;
  /** The transformer's attention heads. */
  heads: number;
  /** The latent height (rows the VAE decode can split). */
  latentRows: number;
  /** Whether the caller fixed the seed (every rank must draw the same noise). */
  seeded: boolean;
}

/** `plan` for one run, or an error that says what does not fit and what to do. */
export function planRun(plan: ParallelPlan, run: RunFacts): RunPlan {
  const comm = plan.comm;
  if (!comm || comm.worldSize === 1) return { comm: null, guidance: "batch", tokens: "whole", vae: "whole" };
  const n = comm.worldSize;
  if (!run.seeded)
    throw new Error(`parallel generation over ${n} ranks: pass a seed: every rank must draw the same noise`);
  const strategy = plan.strategy === "auto" ? pickStrategy(n, run.guidance, run.heads) : plan.strategy;
  if (strategy === "cfg" && (n !== 2 || !(run.guidance > 1)))
    throw new Error(
      `parallel generation: the cfg strategy needs 2 ranks and guidance > 1, got ${n} rank(s) and guidance ${run.guidance}; use ulysses or ring`,
    );
  if (strategy === "ulysses" && run.heads % n !== 0)
    throw new Error(
      `parallel generation: ${run.heads} attention heads are not divisible by ${n} ranks; use the ring strategy`,
    );
  if (plan.vae === "rows" && run.latentRows < n)
    throw new Error(
      `parallel generation: the VAE decode splits ${run.latentRows} latent rows (the height / 8) over ${n} ranks, and each needs one; generate a taller video or decode whole (vae: "whole")`,
    );
  return {
    comm,
    guidance: strategy === "cfg" ? "ranks" : "batch",
    tokens: strategy === "cfg" ? "whole" : strategy,
    vae: plan.vae,
  };
}

/** The split points of one denoising step (guidedVelocity takes them). */
export interface StepSplit {
  /** The transformer's tokens over the ranks. */
  tokens?: TokenSplit;
  /** Every rank's guidance branch [1, ...], joined in rank order (conditional first) before the combine. */
  branches?: (raw: Tensor) => Promise<Tensor>;
}

/** The step's split points under `run`; null when nothing is split. */
export function stepSplit(run: RunPlan, config: WanTransformerConfig): StepSplit | null {
  const comm = run.comm;
  if (!comm) return null;
  if (run.guidance === "ranks") return { branches: (raw) => comm.allGather(raw, 0) };
  if (run.tokens !== "whole") return { tokens: sequenceSplit(comm, config, run.tokens) };
  return null;
}

/** The guidance branch(es) this rank's transformer call takes: the conditional and unconditional text states as one batch, or this rank's own. */
export function branchesOf(run: RunPlan, cond: Tensor, uncond: Tensor): Tensor[] {
  if (run.guidance === "ranks") return [run.comm?.rank === 0 ? cond : uncond];
  return [cond, uncond];
}

/** The step cache's options under `run` for a video of token grid `grid` (see StepCache). */
export function stepCacheOptions(run: RunPlan, grid: TokenGrid): StepCacheOptions {
  const comm = run.comm;
  if (!comm) return {};
  if (run.guidance === "ranks") return { gather: (sums) => comm.allGather(sums, 1) };
  if (run.tokens !== "whole") {
    const real = tokenRun(grid, comm.worldSize, comm.rank).real;
    return { gather: (sums) => gatherTokens(comm, sums, 2, real) };
  }
  return {};
}

/** The VAE decode of normalised latents under `run`: the whole video on every rank. */
export function decodeLatents(run: RunPlan, vae: WanVAE, z: Tensor): MaybePromise<Tensor> {
  if (run.vae === "rows" && run.comm) return decodeSpatialParallel(vae, z, run.comm);
  // The CPU backend allocates at queue time: there, decode a frame at a time (see decodeStreaming).
  return z.device.kind === "cpu" ? vae.decodeStreaming(z) : vae.decode(z);
}

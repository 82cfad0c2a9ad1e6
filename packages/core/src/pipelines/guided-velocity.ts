// The transformer call of one denoising step, with classifier-free guidance.
import { axpby, cast, concat, type DType, scope, slice, Tensor } from "@tessera/native";
import type { StepCache } from "../models/wan/step-cache.js";
import type { WanTransformer } from "../models/wan/transformer.js";
import type { StepSplit } from "../parallel/plan.js";

/**
 * What a step calls: a WanTransformer, or one with a run's conditioning bound to it
 * (image-conditioning.ts: the image-to-video models' condition channels and image states).
 */
export type StepModel = Pick<
  WanTransformer,
  "config" | "weights" | "forward" | "forwardSplit" | "forwardStepCached"
>;

/**
 * A step's timestep: one number for every token, or one per token frame (Wan2.2
 * TI2V's per-token timesteps: known frames at 0; see pipelines/ti2v.ts).
 */
export type StepTime = number | readonly number[];

/** The f32 timestep tensor a step takes: one entry (or row of per-frame entries) per guidance branch of `context`. */
export function stepTimesteps(timestep: StepTime, context: Tensor): Tensor {
  const batch = context.shape[0] as number;
  if (typeof timestep !== "number")
    return Tensor.from(Array.from({ length: batch }, () => timestep).flat(), [batch, timestep.length], {
      device: context.device,
    });
  return Tensor.from(new Array<number>(batch).fill(timestep), [batch], { device: context.device });
}

/** How guidedVelocity runs a step besides the plain forward. */
export interface StepRun {
  /** Through this step cache (see step-cache.ts). */
  cache?: StepCache;
  /** With a cache: run every block (the pipeline's first and last steps). */
  full?: boolean;
  /** The parallel plan's split points (parallel/plan.ts). */
  split?: StepSplit;
}

/**
 * The guided velocity at one step: with guidance > 1 (a context of batch 2,
 * conditional first) both branches run as one batch of two and combine as
 * uncond + g·(cond − uncond); otherwise the single branch. Returns f32. With `run`,
 * asynchronously: through a step cache (it reads its distance back) and/or split over
 * ranks (its collectives); under a guidance split each rank's context is its own
 * branch, and the branches are gathered before the combine.
 */
export function guidedVelocity(
  transformer: StepModel,
  latents: Tensor,
  timestep: StepTime,
  context: Tensor,
  guidance: number,
  dtype?: DType,
): Tensor;
export function guidedVelocity(
  transformer: StepModel,
  latents: Tensor,
  timestep: StepTime,
  context: Tensor,
  guidance: number,
  dtype: DType | undefined,
  run: StepRun,
): Promise<Tensor>;
export function guidedVelocity(
  transformer: StepModel,
  latents: Tensor,
  timestep: StepTime,
  context: Tensor,
  guidance: number,
  dtype: DType = transformer.weights.get("patch_embedding.weight").dtype,
  run?: StepRun,
): Tensor | Promise<Tensor> {
  return scope(() => {
    const ts = stepTimesteps(timestep, context);
    if (!run) return guidedVelocityAt(transformer, latents, ts, context, guidance, dtype);
    const fwd = { latents: guidanceInput(latents, context, dtype), timesteps: ts, context };
    const tokens = run.split?.tokens ?? null;
    const raw = run.cache
      ? transformer.forwardStepCached(fwd, run.cache, run.full ?? false, tokens)
      : tokens
        ? transformer.forwardSplit(fwd, tokens)
        : transformer.forward(fwd);
    const branches = run.split?.branches;
    return Promise.resolve(raw).then(async (out) => combine(branches ? await branches(out) : out, guidance));
  });
}

/**
 * guidedVelocity() with the timesteps already a tensor (stepTimesteps) and no
 * step cache: device work only, so a CUDA graph can capture it (step-graph.ts).
 */
export function guidedVelocityAt(
  transformer: StepModel,
  latents: Tensor,
  timesteps: Tensor,
  context: Tensor,
  guidance: number,
  dtype: DType,
): Tensor {
  return scope(() =>
    combine(
      transformer.forward({ latents: guidanceInput(latents, context, dtype), timesteps, context }),
      guidance,
    ),
  );
}

// The latents in the transformer's dtype, repeated for each guidance branch.
function guidanceInput(latents: Tensor, context: Tensor, dtype: DType): Tensor {
  const x = latents.dtype === dtype ? latents : cast(latents, dtype);
  return context.shape[0] === 2 ? concat([x, x], 0) : x;
}

// Combined in f32: with g = 5 the difference of two bf16 branches is amplified
// fivefold, and the upcast costs one pass over a latent-sized tensor.
// g·cond + (1 − g)·uncond is uncond + g·(cond − uncond) in one pass.
function combine(raw: Tensor, guidance: number): Tensor {
  const out = raw.dtype === "f32" ? raw : cast(raw, "f32");
  return raw.shape[0] === 2 ? axpby(slice(out, 0, 0, 1), slice(out, 0, 1, 2), guidance, 1 - guidance) : out;
}

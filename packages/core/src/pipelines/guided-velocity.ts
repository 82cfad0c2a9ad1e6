// The transformer call of one denoising step, with classifier-free guidance.
import { axpby, cast, concat, type DType, scope, slice, Tensor } from "@tessera/native";
import type { StepCache } from "../models/wan/step-cache.js";
import type { WanTransformer } from "../models/wan/transformer.js";

/** The f32 timestep tensor a step takes: one entry per guidance branch of `context`. */
export function stepTimesteps(timestep: number, context: Tensor): Tensor {
  const batch = context.shape[0] as number;
  return Tensor.from(new Array<number>(batch).fill(timestep), [batch], { device: context.device });
}

/**
 * The guided velocity at one step: with guidance > 1 (a context of batch 2,
 * conditional first) both branches run as one batch of two and combine as
 * uncond + g·(cond − uncond); otherwise the single branch. Returns f32. With
 * `step`, the transformer runs through the step cache (asynchronously: the cache
 * reads its distance back), `full` forcing every block.
 */
export function guidedVelocity(
  transformer: WanTransformer,
  latents: Tensor,
  timestep: number,
  context: Tensor,
  guidance: number,
  dtype?: DType,
): Tensor;
export function guidedVelocity(
  transformer: WanTransformer,
  latents: Tensor,
  timestep: number,
  context: Tensor,
  guidance: number,
  dtype: DType | undefined,
  step: { cache: StepCache; full: boolean },
): Promise<Tensor>;
export function guidedVelocity(
  transformer: WanTransformer,
  latents: Tensor,
  timestep: number,
  context: Tensor,
  guidance: number,
  dtype: DType = transformer.weights.get("patch_embedding.weight").dtype,
  step?: { cache: StepCache; full: boolean },
): Tensor | Promise<Tensor> {
  return scope(() => {
    const ts = stepTimesteps(timestep, context);
    if (step) {
      const fwd = { latents: guidanceInput(latents, context, dtype), timesteps: ts, context };
      return transformer.forwardStepCached(fwd, step.cache, step.full).then((raw) => combine(raw, guidance));
    }
    return guidedVelocityAt(transformer, latents, ts, context, guidance, dtype);
  });
}

/**
 * guidedVelocity() with the timesteps already a tensor (stepTimesteps) and no
 * step cache: device work only, so a CUDA graph can capture it (step-graph.ts).
 */
export function guidedVelocityAt(
  transformer: WanTransformer,
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

// The activation memory of a DiT step (issue #18): the forward frees each intermediate
// once its last reader is enqueued and each block's input once the block is done, so
// the live set peaks inside one block's feed-forward — its input, the normed input and
// the ffn_dim-wide hidden state — instead of every block's output plus one block's two
// dozen intermediates. Measured on the CPU run inline (Device.setInline), where memory is
// freed in program order as a CUDA stream frees it, in units of one residual-stream
// tensor [B, L, dim]; the bounds leave room for allocator rounding and the small tensors
// (modulation, text states) but fail well before the old plan (30.2 units at 6 layers; 8.06 now).
import { Device, liveTensorCount, randn, Tensor } from "@tessera/native";
import { measurePeak } from "@tessera/native/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { guidedVelocityAt } from "../../pipelines/guided-velocity.js";
import { WAN21_T2V_1_3B, type WanTransformerConfig } from "./config.js";
import { randomWanTransformerWeights } from "./params.js";
import { StepCache } from "./step-cache.js";
import { WanTransformer } from "./transformer.js";

const cpu = Device.cpu;
// The 1.3B block (head dim 128, qk and cross-attention norms, ffn/dim 6 against its 5.83) at
// width 256, with sizes that are whole MiB, the allocator's rounding step for large blocks.
const CFG: WanTransformerConfig = {
  ...WAN21_T2V_1_3B,
  num_attention_heads: 2,
  ffn_dim: 1536,
  num_layers: 6,
  text_dim: 64,
};
const DIM = 256;
const FRAMES = 4;
const LATENT = [2, FRAMES, 16, 32, 16];
const TOKENS = FRAMES * 8 * 16;
const UNIT = 2 * TOKENS * DIM * 4; // one f32 [2, L, dim]: 1 MiB
// x + normed x + hidden (ffn/dim = 6): 8 units; the bound allows one more for the rest.
const BOUND = 9 * UNIT;

describe("Wan transformer activation memory", () => {
  beforeAll(() => cpu.setInline(true));
  afterAll(() => cpu.setInline(false));

  it("peaks at one block's feed-forward, whatever the depth, for the forward, the guided step and the step cache", async () => {
    const before = liveTensorCount();
    const weights = randomWanTransformerWeights(CFG, { seed: 1 });
    const model = new WanTransformer(CFG, weights);
    const latents = randn(LATENT, { seed: 2 });
    const latent1 = randn([1, ...LATENT.slice(1)], { seed: 3 });
    const context = randn([2, 16, CFG.text_dim], { seed: 4 });
    const timesteps = Tensor.from([700, 700], [2]);
    await cpu.synchronize();
    const held = cpu.memoryStats().inUse; // weights and inputs

    const fwd = await measurePeak(cpu, () => model.forward({ latents, timesteps, context }));
    const out = fwd.result;
    expect(fwd.peakBytes).toBeGreaterThan(7 * UNIT);
    expect(fwd.peakBytes).toBeLessThanOrEqual(BOUND);
    // Against what the step holds anyway, weights and inputs (39.5 MiB): 1.20 now, 1.76 before.
    expect((held + fwd.peakBytes) / held).toBeLessThan(1.5);
    // Nothing but the output stays.
    expect(cpu.memoryStats().inUse).toBe(held + out.nbytes);

    const guided = await measurePeak(cpu, () =>
      guidedVelocityAt(model, latent1, timesteps, context, 5, "f32"),
    );
    expect(guided.peakBytes).toBeLessThanOrEqual(BOUND);

    // Per-frame timesteps (TI2V): the modulation acts on views with the frames folded into the batch.
    const perFrame = Tensor.from([0, 700, 700, 700, 0, 700, 700, 700], [2, FRAMES]);
    const framed = await measurePeak(cpu, () => model.forward({ latents, timesteps: perFrame, context }));
    expect(framed.peakBytes).toBeLessThanOrEqual(BOUND);

    // The step cache holds two residuals between steps, the first block's and the other blocks'
    // ([2, L, dim] each), beside which the next step's first block runs (the first step's
    // output is still held too).
    const cache = new StepCache(1e9);
    const cached = await measurePeak(cpu, async () => {
      const a = await model.forwardStepCached({ latents, timesteps, context }, cache, true);
      const b = await model.forwardStepCached({ latents, timesteps, context }, cache);
      return [a, b];
    });
    expect(cache.cachedSteps).toBe(1);
    expect(cached.peakBytes).toBeLessThanOrEqual(BOUND + 3 * UNIT);
    // Same values as before the plan: the op sequence is unchanged, only when memory is freed.
    const [a, b] = cached.result as [Tensor, Tensor];
    expect(Array.from(await a.toFloat32Array())).toEqual(Array.from(await out.toFloat32Array()));
    for (const t of [a, b, out, guided.result, framed.result, perFrame, latents, latent1, context, timesteps])
      t.dispose();
    cache.dispose();
    weights.dispose();
    expect(liveTensorCount()).toBe(before);
  });
});

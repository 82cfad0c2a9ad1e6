import { full, liveTensorCount, randn, type Tensor } from "@tessera/native";
import { maxAbsError } from "@tessera/native/testing";
import { describe, expect, it } from "vitest";
import { WAN_TINY } from "./config.js";
import { randomWanTransformerWeights } from "./params.js";
import { StepCache } from "./step-cache.js";
import { WanTransformer } from "./transformer.js";

async function values(t: Tensor): Promise<number[]> {
  return Array.from(await t.toFloat32Array());
}

function maxAbsDiff(a: number[], b: number[]): number {
  expect(a.length).toBe(b.length);
  return maxAbsError(a, b);
}

describe("Wan transformer step cache", () => {
  it("full steps equal forward(); a reused step adds the cached residual; nothing leaks", async () => {
    const before = liveTensorCount();
    const weights = randomWanTransformerWeights(WAN_TINY, { seed: 3 });
    const model = new WanTransformer(WAN_TINY, weights);
    const latents = randn([2, 2, 4, 6, 16], { seed: 1 });
    const other = randn([2, 2, 4, 6, 16], { seed: 5 });
    const context = randn([2, 7, WAN_TINY.text_dim], { seed: 2 });
    const t700 = full([2], 700, { dtype: "f32" });
    const t600 = full([2], 600, { dtype: "f32" });
    const y = model.forward({ latents, timesteps: t700, context });
    const expected = await values(y);

    // Threshold 0: every step in full, the same values as forward().
    const zero = new StepCache(0);
    for (const x of [latents, other, latents]) {
      const out = await model.forwardStepCached({ latents: x, timesteps: t700, context }, zero);
      if (x === latents) expect(await values(out)).toEqual(expected);
      out.dispose();
    }
    expect(zero.fullSteps).toBe(3);
    expect(zero.cachedSteps).toBe(0);
    zero.dispose();

    const cache = new StepCache(0.5);
    // The first step runs in full (nothing to compare with).
    const a = await model.forwardStepCached({ latents, timesteps: t700, context }, cache);
    expect(await values(a)).toEqual(expected);
    // The same input again: distance 0, so the cached residual is reused, and
    // block₀ + (blocks 1..n−1 − block₀) is the full output up to rounding.
    const b = await model.forwardStepCached({ latents, timesteps: t700, context }, cache);
    expect(cache.cachedSteps).toBe(1);
    expect(cache.distances[1]).toBe(0);
    expect(maxAbsDiff(await values(b), expected)).toBeLessThan(1e-4);
    // A nearby timestep reuses too, and differs from the full model's answer only a little.
    const c = await model.forwardStepCached({ latents, timesteps: t600, context }, cache);
    const y600 = model.forward({ latents, timesteps: t600, context });
    expect(cache.cachedSteps).toBe(2);
    const cv = await values(c);
    expect(cv.every(Number.isFinite)).toBe(true);
    expect(maxAbsDiff(cv, await values(y600))).toBeGreaterThan(0);
    // Forced: a full step whatever the distance, which resets the accumulated distance.
    const d = await model.forwardStepCached({ latents, timesteps: t700, context }, cache, true);
    expect(cache.fullSteps).toBe(2);
    expect(await values(d)).toEqual(expected);
    // Other latents move the first block's residual by far more than 0.5: a full step.
    const e = await model.forwardStepCached({ latents: other, timesteps: t700, context }, cache);
    expect(cache.fullSteps).toBe(3);
    expect(cache.distances[4]).toBeGreaterThan(0.5);
    cache.dispose();
    cache.dispose();
    await expect(model.forwardStepCached({ latents, timesteps: t700, context }, cache)).rejects.toThrow(
      /after dispose/,
    );
    for (const t of [y, a, b, c, d, e, y600, latents, other, context, t700, t600]) t.dispose();
    weights.dispose();
    expect(liveTensorCount()).toBe(before);
  });

  it("rejects a bad threshold", () => {
    for (const bad of [-0.1, Number.NaN, Number.POSITIVE_INFINITY])
      expect(() => new StepCache(bad)).toThrow(/threshold/);
  });
});

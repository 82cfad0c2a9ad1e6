// Per-frame timesteps (Wan2.2 TI2V's expand_timesteps): a frame's tokens are modulated
// by their frame's timestep. Checked here by its two defining properties; the numbers
// against the reference are the golden fixture's (golden/).
import { liveTensorCount, randn, Tensor } from "@tessera/native";
import { describe, expect, it } from "vitest";
import { parameterCount, WAN_TINY, WAN22_TI2V_5B } from "./config.js";
import { randomWanTransformerWeights } from "./params.js";
import { WanTransformer } from "./transformer.js";

const values = (t: Tensor) => t.toFloat32Array();

describe("Wan transformer with per-frame timesteps", () => {
  it("counts TI2V-5B's parameters (about 5 billion)", () => {
    const n = parameterCount(WAN22_TI2V_5B);
    expect(n).toBeGreaterThan(4.9e9);
    expect(n).toBeLessThan(5.1e9);
  });

  it("equals the per-sample forward when every frame has the same timestep, and each frame follows its own", async () => {
    const before = liveTensorCount();
    const weights = randomWanTransformerWeights(WAN_TINY, { seed: 3 });
    const model = new WanTransformer(WAN_TINY, weights);
    const latents = randn([2, 3, 4, 6, 16], { seed: 1 });
    const context = randn([2, 5, WAN_TINY.text_dim], { seed: 2 });
    const run = (ts: number[], shape: number[]) => {
      const t = Tensor.from(ts, shape);
      try {
        return model.forward({ latents, timesteps: t, context });
      } finally {
        t.dispose();
      }
    };
    const perSample = run([700, 300], [2]);
    const perFrame = run([700, 700, 700, 300, 300, 300], [2, 3]);
    const a = await values(perSample);
    expect(Array.from(await values(perFrame))).toEqual(Array.from(a));
    // Frame 0 at t = 0: the other frames' outputs change only through attention, so
    // compare against a run where every frame is at 0 on frame 0's slice.
    const mixed = run([0, 700, 700, 0, 300, 300], [2, 3]);
    const zero = run([0, 0], [2]);
    const m = await values(mixed);
    const z = await values(zero);
    const frame = 4 * 6 * 16;
    expect(m.subarray(0, frame).some((v, i) => Math.abs(v - (a[i] as number)) > 1e-4)).toBe(true);
    expect(m.subarray(0, frame).some((v, i) => Math.abs(v - (z[i] as number)) > 1e-6)).toBe(true);
    expect(() => run([1, 2], [1, 2])).toThrow(/timesteps must be \[2\] \(per sample\) or \[2, 3\]/);
    for (const t of [perSample, perFrame, mixed, zero, latents, context]) t.dispose();
    weights.dispose();
    expect(liveTensorCount()).toBe(before);
  });
});

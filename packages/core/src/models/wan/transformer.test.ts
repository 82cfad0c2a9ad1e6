import { full, liveTensorCount, randn, Tensor } from "@tessera/native";
import { describe, expect, it } from "vitest";
import { WeightError, WeightStore } from "../../weights/store.js";
import { parameterCount, WAN_TINY, WAN21_T2V_1_3B } from "./config.js";
import { randomWanTransformerWeights, wanTransformerParams } from "./params.js";
import { WanTransformer } from "./transformer.js";

describe("Wan transformer", () => {
  it("counts the published 1.3B model's parameters", () => {
    // Wan2.1-T2V-1.3B has about 1.42 billion parameters in its transformer.
    const n = parameterCount(WAN21_T2V_1_3B);
    expect(n).toBeGreaterThan(1.3e9);
    expect(n).toBeLessThan(1.5e9);
    let fromSpecs = 0;
    for (const spec of wanTransformerParams(WAN21_T2V_1_3B).values())
      fromSpecs += spec.shape.reduce((a, b) => a * b, 1);
    expect(fromSpecs).toBe(n);
  });

  it("runs a forward pass on the CPU: right shape, finite, deterministic, no leaks", async () => {
    const before = liveTensorCount();
    const weights = randomWanTransformerWeights(WAN_TINY, { seed: 3 });
    const model = new WanTransformer(WAN_TINY, weights);
    const latents = randn([1, 2, 4, 6, 16], { seed: 1 });
    const context = randn([1, 7, WAN_TINY.text_dim], { seed: 2 });
    const timesteps = full([1], 700, { dtype: "f32" });
    const y1 = model.forward({ latents, timesteps, context });
    const y2 = model.forward({ latents, timesteps, context });
    expect(y1.shape).toEqual([1, 2, 4, 6, 16]);
    const a = await y1.toFloat32Array();
    const b = await y2.toFloat32Array();
    expect(a.every(Number.isFinite)).toBe(true);
    expect(Array.from(a)).toEqual(Array.from(b));
    // The output depends on the timestep (the modulation path is live).
    const t2 = full([1], 100, { dtype: "f32" });
    const y3 = model.forward({ latents, timesteps: t2, context });
    const c = await y3.toFloat32Array();
    expect(c.some((v, i) => Math.abs(v - (a[i] as number)) > 1e-4)).toBe(true);
    for (const t of [y1, y2, y3, latents, context, timesteps, t2]) t.dispose();
    weights.dispose();
    expect(liveTensorCount()).toBe(before);
  });

  it("rejects weights that do not match the config, naming the tensor", () => {
    const weights = randomWanTransformerWeights({ ...WAN_TINY, num_layers: 1 });
    expect(() => new WanTransformer(WAN_TINY, weights)).toThrow(WeightError);
    expect(() => new WanTransformer(WAN_TINY, weights)).toThrow(/blocks\.1\./);
    weights.set("blocks.0.ffn.net.2.bias", Tensor.from([1, 2], [2]));
    expect(() => new WanTransformer({ ...WAN_TINY, num_layers: 1 }, weights)).toThrow(
      /'blocks\.0\.ffn\.net\.2\.bias' has shape \[2\]/,
    );
    weights.dispose();
  });

  it("rejects latents of the wrong shape", () => {
    const weights = randomWanTransformerWeights(WAN_TINY);
    const model = new WanTransformer(WAN_TINY, weights);
    const bad = randn([1, 2, 5, 6, 16], { seed: 1 });
    const context = randn([1, 7, WAN_TINY.text_dim], { seed: 2 });
    const t = full([1], 1, { dtype: "f32" });
    expect(() => model.forward({ latents: bad, timesteps: t, context })).toThrow(/multiple of the patch/);
    for (const x of [bad, context, t]) x.dispose();
    weights.dispose();
  });
});

describe("WeightStore", () => {
  it("names missing and extra tensors", () => {
    const s = new WeightStore("test.safetensors");
    s.set("a", Tensor.from([1], [1]));
    expect(() => s.get("b")).toThrow("test.safetensors: missing tensor 'b'");
    expect(() =>
      s.checkExactly(
        new Map([
          ["a", [1]],
          ["c", [2]],
        ]),
      ),
    ).toThrow(/missing 1 tensor\(s\): c/);
    expect(() => s.checkExactly(new Map())).toThrow(/unexpected tensor\(s\): a/);
    s.dispose();
  });
});

// The Wan2.1 transformer's tensors under their diffusers names, with shapes and
// how to initialise them randomly (for tests and benchmarks with no checkpoint).
import { affine, cast, type DeviceLike, type DType, full, randn, type Tensor } from "@tessera/native";
import { WeightStore } from "../../weights/store.js";
import { innerDim, type WanTransformerConfig } from "./config.js";
import { imageParams } from "./image.js";

export type Init = "normal" | "zeros" | "ones";
export interface ParamSpec {
  shape: number[];
  init: Init;
  fanIn?: number;
}

export function wanTransformerParams(c: WanTransformerConfig): Map<string, ParamSpec> {
  const d = innerDim(c);
  const [pt, ph, pw] = c.patch_size;
  const p = new Map<string, ParamSpec>();
  const linear = (name: string, i: number, o: number) => {
    p.set(`${name}.weight`, { shape: [o, i], init: "normal", fanIn: i });
    p.set(`${name}.bias`, { shape: [o], init: "normal", fanIn: i * 16 });
  };
  p.set("patch_embedding.weight", {
    shape: [d, c.in_channels, pt, ph, pw],
    init: "normal",
    fanIn: c.in_channels * pt * ph * pw,
  });
  p.set("patch_embedding.bias", { shape: [d], init: "zeros" });
  linear("condition_embedder.time_embedder.linear_1", c.freq_dim, d);
  linear("condition_embedder.time_embedder.linear_2", d, d);
  linear("condition_embedder.time_proj", d, 6 * d);
  linear("condition_embedder.text_embedder.linear_1", c.text_dim, d);
  linear("condition_embedder.text_embedder.linear_2", d, d);
  for (let i = 0; i < c.num_layers; i++) {
    const b = `blocks.${i}`;
    for (const attn of ["attn1", "attn2"]) {
      for (const proj of ["to_q", "to_k", "to_v", "to_out.0"]) linear(`${b}.${attn}.${proj}`, d, d);
      if (c.qk_norm) {
        p.set(`${b}.${attn}.norm_q.weight`, { shape: [d], init: "ones" });
        p.set(`${b}.${attn}.norm_k.weight`, { shape: [d], init: "ones" });
      }
    }
    if (c.cross_attn_norm) {
      p.set(`${b}.norm2.weight`, { shape: [d], init: "ones" });
      p.set(`${b}.norm2.bias`, { shape: [d], init: "zeros" });
    }
    linear(`${b}.ffn.net.0.proj`, d, c.ffn_dim);
    linear(`${b}.ffn.net.2`, c.ffn_dim, d);
    p.set(`${b}.scale_shift_table`, { shape: [1, 6, d], init: "normal", fanIn: d });
  }
  linear("proj_out", d, c.out_channels * pt * ph * pw);
  p.set("scale_shift_table", { shape: [1, 2, d], init: "normal", fanIn: d });
  imageParams(c, p);
  return p;
}

/** Random weights (std 1/sqrt(fan_in)) from a seed: the same numbers on every device. */
export function randomWanTransformerWeights(
  c: WanTransformerConfig,
  opts: { seed?: number; device?: DeviceLike; dtype?: DType } = {},
): WeightStore {
  const store = new WeightStore(`random Wan transformer (seed ${opts.seed ?? 0})`);
  const device = opts.device ?? "cpu";
  const dtype = opts.dtype ?? "f32";
  let offset = 0;
  for (const [name, spec] of wanTransformerParams(c)) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    if (spec.init === "normal") {
      const std = 1 / Math.sqrt(spec.fanIn ?? 1);
      const raw = randn(spec.shape, { seed: opts.seed ?? 0, offset, device, dtype: "f32" });
      offset += n + (n % 2);
      const scaled = affineCast(raw, std, dtype);
      raw.dispose();
      store.set(name, scaled);
    } else {
      store.set(name, full(spec.shape, spec.init === "ones" ? 1 : 0, { device, dtype }));
    }
  }
  return store;
}

function affineCast(t: Tensor, std: number, dtype: DType): Tensor {
  const s = affine(t, std, 0);
  if (dtype === "f32") return s;
  const c = cast(s, dtype);
  s.dispose();
  return c;
}

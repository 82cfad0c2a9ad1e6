// The Wan VAE's tensors (Wan2.1 and Wan2.2 forms) under their diffusers names (AutoencoderKLWan's
// state_dict), with shapes and how to initialise them randomly (tests, benchmarks).
import { affine, cast, type DeviceLike, type DType, full, randn, type Tensor } from "@tessera/native";
import { WeightStore } from "../../weights/store.js";
import type { ParamSpec } from "../wan/params.js";
import { type VaeLayer, type WanVaeConfig, wanVaeLayout } from "./config.js";

export function wanVaeParams(c: WanVaeConfig): Map<string, ParamSpec> {
  const L = wanVaeLayout(c);
  const p = new Map<string, ParamSpec>();
  const conv = (name: string, cout: number, cin: number, k: number[], gain = 1) => {
    const fanIn = cin * k.reduce((a, b) => a * b, 1);
    p.set(`${name}.weight`, { shape: [cout, cin, ...k], init: "normal", fanIn: fanIn * gain });
    p.set(`${name}.bias`, { shape: [cout], init: "normal", fanIn: fanIn * 16 });
  };
  // Channel-first RMS_norm keeps gamma broadcastable: [C, 1, 1, 1] over video, [C, 1, 1] over images.
  const norm = (name: string, dim: number, images: boolean) =>
    p.set(`${name}.gamma`, { shape: images ? [dim, 1, 1] : [dim, 1, 1, 1], init: "ones" });
  const res = (name: string, cin: number, cout: number) => {
    norm(`${name}.norm1`, cin, false);
    conv(`${name}.conv1`, cout, cin, [3, 3, 3]);
    norm(`${name}.norm2`, cout, false);
    conv(`${name}.conv2`, cout, cout, [3, 3, 3]);
    if (cin !== cout) conv(`${name}.conv_shortcut`, cout, cin, [1, 1, 1]);
  };
  const attn = (name: string, dim: number) => {
    norm(`${name}.norm`, dim, true);
    conv(`${name}.to_qkv`, 3 * dim, dim, [1, 1]);
    conv(`${name}.proj`, dim, dim, [1, 1]);
  };
  const layer = (l: VaeLayer): void => {
    if (l.kind === "res") res(l.name, l.cin, l.cout);
    else if (l.kind === "block") for (const inner of l.layers) layer(inner);
    else {
      // resample.0 is the parameter-free Upsample / ZeroPad2d.
      conv(`${l.name}.resample.1`, l.cout, l.dim, [3, 3]);
      if (l.mode === "upsample3d") conv(`${l.name}.time_conv`, 2 * l.dim, l.dim, [3, 1, 1]);
      if (l.mode === "downsample3d") conv(`${l.name}.time_conv`, l.dim, l.dim, [3, 1, 1]);
    }
  };
  const mid = (prefix: string, dim: number) => {
    res(`${prefix}.mid_block.resnets.0`, dim, dim);
    attn(`${prefix}.mid_block.attentions.0`, dim);
    res(`${prefix}.mid_block.resnets.1`, dim, dim);
  };

  const e = L.encoder;
  conv("encoder.conv_in", e.convIn.cout, e.convIn.cin, [3, 3, 3]);
  for (const l of e.layers) layer(l);
  mid("encoder", e.dim);
  norm("encoder.norm_out", e.dim, false);
  conv("encoder.conv_out", 2 * c.z_dim, e.dim, [3, 3, 3]);
  conv("quant_conv", 2 * c.z_dim, 2 * c.z_dim, [1, 1, 1]);
  conv("post_quant_conv", c.z_dim, c.z_dim, [1, 1, 1]);
  const d = L.decoder;
  conv("decoder.conv_in", d.convIn.cout, d.convIn.cin, [3, 3, 3]);
  mid("decoder", d.midDim);
  for (const l of d.layers) layer(l);
  norm("decoder.norm_out", d.outDim, false);
  // A quarter of the usual scale keeps random decoders mostly inside the output clamp,
  // so tests comparing decodes are not comparing saturated ±1s.
  conv("decoder.conv_out", L.outChannels, d.outDim, [3, 3, 3], 16);
  return p;
}

/** Random weights (std 1/sqrt(fan_in)) from a seed: the same numbers on every device. */
export function randomWanVaeWeights(
  c: WanVaeConfig,
  opts: { seed?: number; device?: DeviceLike; dtype?: DType } = {},
): WeightStore {
  const store = new WeightStore(`random Wan VAE (seed ${opts.seed ?? 0})`);
  const device = opts.device ?? "cpu";
  const dtype = opts.dtype ?? "f32";
  let offset = 0;
  for (const [name, spec] of wanVaeParams(c)) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    if (spec.init === "normal") {
      const raw = randn(spec.shape, { seed: opts.seed ?? 0, offset, device, dtype: "f32" });
      offset += n + (n % 2);
      const scaled = affine(raw, 1 / Math.sqrt(spec.fanIn ?? 1), 0);
      raw.dispose();
      store.set(name, castTo(scaled, dtype));
    } else {
      store.set(name, full(spec.shape, spec.init === "ones" ? 1 : 0, { device, dtype }));
    }
  }
  return store;
}

function castTo(t: Tensor, dtype: DType): Tensor {
  if (dtype === "f32") return t;
  const c = cast(t, dtype);
  t.dispose();
  return c;
}

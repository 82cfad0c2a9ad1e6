// The umT5 encoder's tensors under Hugging Face's UMT5EncoderModel names (what its
// safetensors hold), with shapes and a random initialisation for tests.
import { affine, cast, type DeviceLike, type DType, full, randn, type Tensor } from "@tessera/native";
import { WeightStore } from "../../weights/store.js";
import { type UMT5Config, umt5InnerDim } from "./config.js";

export interface UMT5ParamSpec {
  shape: number[];
  /** Random init: mean + std·N(0, 1). Layer norms are mean 1, std 0 (HF's init). */
  mean: number;
  std: number;
}

/**
 * The embedding table's name. HF saves the tied embedding of UMT5EncoderModel as
 * `shared.weight` (`encoder.embed_tokens.weight` is its tied alias, listed in
 * _tied_weights_keys and normally not written); UMT5Encoder also accepts the alias.
 */
export const UMT5_EMBEDDING = "shared.weight";
export const UMT5_EMBEDDING_ALIAS = "encoder.embed_tokens.weight";

/** Every tensor of the encoder, HF names, in checkpoint order. */
export function umt5Params(c: UMT5Config): Map<string, UMT5ParamSpec> {
  const inner = umt5InnerDim(c);
  const p = new Map<string, UMT5ParamSpec>();
  // Stds follow HF's _init_weights (Mesh TensorFlow), so random activations keep a sane scale.
  p.set(UMT5_EMBEDDING, { shape: [c.vocab_size, c.d_model], mean: 0, std: 1 });
  for (let i = 0; i < c.num_layers; i++) {
    const a = `encoder.block.${i}.layer.0`;
    p.set(`${a}.SelfAttention.q.weight`, {
      shape: [inner, c.d_model],
      mean: 0,
      std: (c.d_model * c.d_kv) ** -0.5,
    });
    p.set(`${a}.SelfAttention.k.weight`, { shape: [inner, c.d_model], mean: 0, std: c.d_model ** -0.5 });
    p.set(`${a}.SelfAttention.v.weight`, { shape: [inner, c.d_model], mean: 0, std: c.d_model ** -0.5 });
    p.set(`${a}.SelfAttention.o.weight`, { shape: [c.d_model, inner], mean: 0, std: inner ** -0.5 });
    // umT5 (unlike T5) has a position-bias table in every layer, not only the first.
    p.set(`${a}.SelfAttention.relative_attention_bias.weight`, {
      shape: [c.relative_attention_num_buckets, c.num_heads],
      mean: 0,
      std: c.d_model ** -0.5,
    });
    p.set(`${a}.layer_norm.weight`, { shape: [c.d_model], mean: 1, std: 0 });
    const f = `encoder.block.${i}.layer.1`;
    p.set(`${f}.DenseReluDense.wi_0.weight`, { shape: [c.d_ff, c.d_model], mean: 0, std: c.d_model ** -0.5 });
    p.set(`${f}.DenseReluDense.wi_1.weight`, { shape: [c.d_ff, c.d_model], mean: 0, std: c.d_model ** -0.5 });
    p.set(`${f}.DenseReluDense.wo.weight`, { shape: [c.d_model, c.d_ff], mean: 0, std: c.d_ff ** -0.5 });
    p.set(`${f}.layer_norm.weight`, { shape: [c.d_model], mean: 1, std: 0 });
  }
  p.set("encoder.final_layer_norm.weight", { shape: [c.d_model], mean: 1, std: 0 });
  return p;
}

export interface RandomUMT5Options {
  seed?: number;
  device?: DeviceLike;
  dtype?: DType;
  /**
   * Multiplies every std (HF's initializer_factor). Tests raise the position-bias
   * table's effect with it; default 1.
   */
  factor?: number;
  /** Std of layer-norm weights around 1 (default 0, as HF); tests set it so a norm weight that is ignored shows. */
  normStd?: number;
}

/** Random weights from a seed: the same numbers on every device. */
export function randomUMT5Weights(c: UMT5Config, opts: RandomUMT5Options = {}): WeightStore {
  const seed = opts.seed ?? 0;
  const store = new WeightStore(`random umT5 encoder (seed ${seed})`);
  const device = opts.device ?? "cpu";
  const dtype = opts.dtype ?? "f32";
  const factor = opts.factor ?? 1;
  let offset = 0;
  for (const [name, spec] of umt5Params(c)) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const std = spec.std === 0 ? (opts.normStd ?? 0) : spec.std * factor;
    if (std === 0) {
      store.set(name, full(spec.shape, spec.mean, { device, dtype }));
      continue;
    }
    const raw = randn(spec.shape, { seed, offset, device, dtype: "f32" });
    // Even offsets: no Box–Muller pair (two correlated values) is split across two tensors.
    offset += n + (n % 2);
    const scaled = affine(raw, std, spec.mean);
    raw.dispose();
    store.set(name, toDtype(scaled, dtype));
  }
  return store;
}

function toDtype(t: Tensor, dtype: DType): Tensor {
  if (dtype === "f32") return t;
  const c = cast(t, dtype);
  t.dispose();
  return c;
}

import { liveTensorCount, randn, Tensor } from "@tessera/native";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { WeightError, WeightStore } from "../../weights/store.js";
import { UMT5_TINY, UMT5_XXL, type UMT5Config, umt5ConfigFromJson, umt5ParameterCount } from "./config.js";
import { UMT5Encoder } from "./encoder.js";
import { randomUMT5Weights, umt5Params } from "./params.js";

// ---- float64 reference: the whole forward written out, independent of the model code ----

type Weights64 = Map<string, Float64Array>;

async function readWeights(store: WeightStore): Promise<Weights64> {
  const out: Weights64 = new Map();
  for (const name of store.names()) out.set(name, Float64Array.from(await store.get(name).toFloat32Array()));
  return out;
}

function bucket64(rel: number, numBuckets: number, maxDistance: number): number {
  const half = numBuckets / 2;
  const base = rel > 0 ? half : 0;
  const n = Math.abs(rel);
  const maxExact = half / 2;
  if (n < maxExact) return base + n;
  const large =
    maxExact + Math.floor((Math.log(n / maxExact) / Math.log(maxDistance / maxExact)) * (half - maxExact));
  return base + Math.min(large, half - 1);
}

// y = x Wᵀ for x [rows, in], W [out, in].
function matT(x: Float64Array, rows: number, inn: number, w: Float64Array, out: number): Float64Array {
  const y = new Float64Array(rows * out);
  for (let r = 0; r < rows; r++)
    for (let o = 0; o < out; o++) {
      let s = 0;
      for (let i = 0; i < inn; i++) s += (x[r * inn + i] as number) * (w[o * inn + i] as number);
      y[r * out + o] = s;
    }
  return y;
}

// T5LayerNorm: no mean subtraction, no bias.
function rms(x: Float64Array, rows: number, d: number, w: Float64Array, eps: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let i = 0; i < d; i++) ss += (x[r * d + i] as number) ** 2;
    const inv = 1 / Math.sqrt(ss / d + eps);
    for (let i = 0; i < d; i++) y[r * d + i] = (x[r * d + i] as number) * inv * (w[i] as number);
  }
  return y;
}

const geluNew = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

/** HF UMT5EncoderModel(ids, attention_mask) followed by Wan's zeroing of rows ≥ length. */
function reference(c: UMT5Config, W: Weights64, ids: number[], l: number, length: number): Float64Array {
  const d = c.d_model;
  const H = c.num_heads;
  const dk = c.d_kv;
  const inner = H * dk;
  const g = (n: string) => W.get(n) ?? (W.get("encoder.embed_tokens.weight") as Float64Array);
  const shared = g("shared.weight");
  let x = new Float64Array(l * d);
  for (let t = 0; t < l; t++)
    for (let i = 0; i < d; i++) x[t * d + i] = shared[(ids[t] as number) * d + i] as number;
  for (let layer = 0; layer < c.num_layers; layer++) {
    const a = `encoder.block.${layer}.layer.0`;
    const f = `encoder.block.${layer}.layer.1`;
    const h = rms(x, l, d, g(`${a}.layer_norm.weight`), c.layer_norm_epsilon);
    const q = matT(h, l, d, g(`${a}.SelfAttention.q.weight`), inner);
    const k = matT(h, l, d, g(`${a}.SelfAttention.k.weight`), inner);
    const v = matT(h, l, d, g(`${a}.SelfAttention.v.weight`), inner);
    const rab = g(`${a}.SelfAttention.relative_attention_bias.weight`); // [buckets, H]
    const att = new Float64Array(l * inner);
    for (let hd = 0; hd < H; hd++)
      for (let i = 0; i < l; i++) {
        // Keys at or past the length get −∞ (HF adds finfo.min; same after softmax).
        const logits: number[] = [];
        for (let j = 0; j < length; j++) {
          let s = 0;
          for (let e = 0; e < dk; e++)
            s += (q[i * inner + hd * dk + e] as number) * (k[j * inner + hd * dk + e] as number);
          const bkt = bucket64(j - i, c.relative_attention_num_buckets, c.relative_attention_max_distance);
          logits.push(s + (rab[bkt * H + hd] as number)); // no 1/sqrt(d_kv)
        }
        const m = Math.max(...logits);
        const p = logits.map((z) => Math.exp(z - m));
        const z = p.reduce((s, y) => s + y, 0);
        for (let e = 0; e < dk; e++) {
          let s = 0;
          for (let j = 0; j < length; j++)
            s += ((p[j] as number) / z) * (v[j * inner + hd * dk + e] as number);
          att[i * inner + hd * dk + e] = s;
        }
      }
    const o = matT(att, l, inner, g(`${a}.SelfAttention.o.weight`), d);
    x = x.map((y, idx) => y + (o[idx] as number));
    const h2 = rms(x, l, d, g(`${f}.layer_norm.weight`), c.layer_norm_epsilon);
    const gate = matT(h2, l, d, g(`${f}.DenseReluDense.wi_0.weight`), c.d_ff).map(geluNew);
    const up = matT(h2, l, d, g(`${f}.DenseReluDense.wi_1.weight`), c.d_ff);
    const ff = matT(
      gate.map((y, idx) => y * (up[idx] as number)),
      l,
      c.d_ff,
      g(`${f}.DenseReluDense.wo.weight`),
      d,
    );
    x = x.map((y, idx) => y + (ff[idx] as number));
  }
  const y = rms(x, l, d, g("encoder.final_layer_norm.weight"), c.layer_norm_epsilon);
  y.fill(0, length * d);
  return y;
}

// ---- helpers ----

/** Random weights with a position-bias table strong enough to matter and non-unit norms. */
function testWeights(c: UMT5Config, seed: number): WeightStore {
  const w = randomUMT5Weights(c, { seed, normStd: 0.2 });
  for (let i = 0; i < c.num_layers; i++) {
    const name = `encoder.block.${i}.layer.0.SelfAttention.relative_attention_bias.weight`;
    w.set(name, randn([c.relative_attention_num_buckets, c.num_heads], { seed: seed + 100 + i }));
  }
  return w;
}

function idsTensor(rows: number[][]): Tensor {
  const l = (rows[0] as number[]).length;
  return Tensor.from(rows.flat(), [rows.length, l], { dtype: "i32" });
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>, n = a.length, offA = 0, offB = 0): number {
  let m = 0;
  for (let i = 0; i < n; i++) m = Math.max(m, Math.abs((a[offA + i] as number) - (b[offB + i] as number)));
  return m;
}

const C = UMT5_TINY;
const D = C.d_model;
const PROMPT = [5, 17, 42, 3, 60, 11, 29, 8, 33, 2, 19, 47, 23, 9, 51, 14, 38, 6, 1]; // 19 tokens, ends in EOS

describe("UMT5Encoder", () => {
  let before = 0;
  beforeEach(() => {
    before = liveTensorCount();
  });
  afterEach(() => {
    expect(liveTensorCount()).toBe(before);
  });

  it("counts the umT5-XXL encoder's parameters (about 5.7 billion)", () => {
    const n = umt5ParameterCount(UMT5_XXL);
    expect(n).toBeGreaterThan(5.6e9);
    expect(n).toBeLessThan(5.8e9);
    let fromSpecs = 0;
    for (const s of umt5Params(UMT5_XXL).values()) fromSpecs += s.shape.reduce((a, b) => a * b, 1);
    expect(fromSpecs).toBe(n);
  });

  it("names its tensors exactly as HF's UMT5EncoderModel state dict", () => {
    const names = [...umt5Params({ ...C, num_layers: 1 }).keys()];
    expect(names).toEqual([
      "shared.weight",
      "encoder.block.0.layer.0.SelfAttention.q.weight",
      "encoder.block.0.layer.0.SelfAttention.k.weight",
      "encoder.block.0.layer.0.SelfAttention.v.weight",
      "encoder.block.0.layer.0.SelfAttention.o.weight",
      "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
      "encoder.block.0.layer.0.layer_norm.weight",
      "encoder.block.0.layer.1.DenseReluDense.wi_0.weight",
      "encoder.block.0.layer.1.DenseReluDense.wi_1.weight",
      "encoder.block.0.layer.1.DenseReluDense.wo.weight",
      "encoder.block.0.layer.1.layer_norm.weight",
      "encoder.final_layer_norm.weight",
    ]);
    const p = umt5Params(UMT5_XXL);
    expect(p.get("encoder.block.23.layer.0.SelfAttention.q.weight")?.shape).toEqual([4096, 4096]);
    expect(p.get("encoder.block.23.layer.0.SelfAttention.relative_attention_bias.weight")?.shape).toEqual([
      32, 64,
    ]);
    expect(p.get("encoder.block.23.layer.1.DenseReluDense.wi_0.weight")?.shape).toEqual([10240, 4096]);
    expect(p.get("encoder.block.23.layer.1.DenseReluDense.wo.weight")?.shape).toEqual([4096, 10240]);
    expect(p.get("shared.weight")?.shape).toEqual([256384, 4096]);
  });

  it("matches a float64 reference forward within 1e-4", async () => {
    const weights = testWeights(C, 7);
    const W = await readWeights(weights);
    const model = new UMT5Encoder(C, weights);
    const l = 24; // offsets up to ±23 reach the logarithmic buckets (8, 16 boundaries)
    const rows = [
      [...PROMPT, 0, 0, 0, 0, 0],
      [40, 12, 7, 55, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    ];
    const lengths = [19, 5];
    const ids = idsTensor(rows);
    const expected = rows.map((r, i) => reference(C, W, r, l, lengths[i] as number));
    for (const trimPadding of [true, false]) {
      const y = model.encode(ids, lengths, { trimPadding });
      expect(y.shape).toEqual([2, l, D]);
      const got = await y.toFloat32Array();
      y.dispose();
      for (let b = 0; b < 2; b++) {
        const e = expected[b] as Float64Array;
        expect(maxAbsDiff(got, e, l * D, b * l * D, 0), `batch ${b}, trim ${trimPadding}`).toBeLessThan(1e-4);
      }
    }
    // The states are not trivially small (the tolerance means something).
    expect(Math.max(...(expected[0] as Float64Array).map(Math.abs))).toBeGreaterThan(0.5);
    ids.dispose();
    weights.dispose();
  });

  it("zeroes padding rows and gives the same real states whatever the padding", async () => {
    const weights = testWeights(C, 3);
    const model = new UMT5Encoder(C, weights);
    const n = 5;
    const prompt = PROMPT.slice(-n);
    const states = async (l: number, pad: number, trimPadding: boolean) => {
      const ids = idsTensor([[...prompt, ...new Array(l - n).fill(pad)]]);
      const y = model.encode(ids, [n], { trimPadding });
      expect(y.shape).toEqual([1, l, D]);
      const a = await y.toFloat32Array();
      ids.dispose();
      y.dispose();
      return a;
    };
    const a8 = await states(8, 0, false);
    const a16 = await states(16, 0, false);
    const a16junk = await states(16, 37, false); // what sits in the padding does not matter
    const a16trim = await states(16, 0, true);
    for (const a of [a8, a16, a16junk, a16trim]) {
      expect(a.every(Number.isFinite)).toBe(true);
      expect(a.subarray(n * D).every((v) => v === 0)).toBe(true);
      expect(a.subarray(0, n * D).some((v) => v !== 0)).toBe(true);
    }
    expect(maxAbsDiff(a8, a16, n * D)).toBeLessThan(1e-5);
    expect(maxAbsDiff(a16, a16junk, n * D)).toBeLessThan(1e-5);
    expect(maxAbsDiff(a16, a16trim, n * D)).toBeLessThan(1e-5);
    weights.dispose();
  });

  it("encodes a batch as its prompts one by one; an empty prompt gives zeros", async () => {
    const weights = testWeights(C, 11);
    const model = new UMT5Encoder(C, weights);
    const l = 20;
    const pad = (r: number[]) => [...r, ...new Array(l - r.length).fill(0)];
    const prompts = [PROMPT, PROMPT.slice(0, 7), []];
    const ids = idsTensor(prompts.map(pad));
    const y = model.encode(
      ids,
      prompts.map((p) => p.length),
    );
    const all = await y.toFloat32Array();
    for (let b = 0; b < prompts.length; b++) {
      const one = idsTensor([pad(prompts[b] as number[])]);
      const yb = model.encode(one, [(prompts[b] as number[]).length]);
      const s = await yb.toFloat32Array();
      expect(maxAbsDiff(all, s, l * D, b * l * D, 0)).toBeLessThan(1e-5);
      one.dispose();
      yb.dispose();
    }
    expect(all.subarray(2 * l * D).every((v) => v === 0)).toBe(true);
    const empty = idsTensor([pad([])]);
    const ye = model.encode(empty, [0]);
    expect((await ye.toFloat32Array()).every((v) => v === 0)).toBe(true);
    for (const t of [ids, y, empty, ye]) t.dispose();
    weights.dispose();
  });

  it("uses every layer's own position-bias table", async () => {
    const weights = testWeights(C, 5);
    const model = new UMT5Encoder(C, weights);
    const ids = idsTensor([PROMPT]);
    const y1 = model.encode(ids, [PROMPT.length]);
    const a = await y1.toFloat32Array();
    // Changing only the last layer's table changes the output (T5 would share layer 0's).
    const last = `encoder.block.${C.num_layers - 1}.layer.0.SelfAttention.relative_attention_bias.weight`;
    weights.set(last, randn([C.relative_attention_num_buckets, C.num_heads], { seed: 999 }));
    const y2 = model.encode(ids, [PROMPT.length]);
    expect(maxAbsDiff(a, await y2.toFloat32Array())).toBeGreaterThan(1e-3);
    for (const t of [ids, y1, y2]) t.dispose();
    weights.dispose();
  });

  it("accepts the embedding as shared.weight, encoder.embed_tokens.weight, or both", async () => {
    const weights = testWeights(C, 2);
    const ids = idsTensor([PROMPT]);
    const ref = new UMT5Encoder(C, weights);
    expect(ref.embeddingName).toBe("shared.weight");
    const y0 = ref.encode(ids, [PROMPT.length]);
    const a = await y0.toFloat32Array();

    // Only the alias (WeightStore has no rename: copy into a fresh store).
    const aliasOnly = new WeightStore("alias-only");
    for (const n of weights.names())
      aliasOnly.set(
        n === "shared.weight" ? "encoder.embed_tokens.weight" : n,
        await weights.get(n).to("cpu"),
      );
    const m = new UMT5Encoder(C, aliasOnly);
    expect(m.embeddingName).toBe("encoder.embed_tokens.weight");
    const y1 = m.encode(ids, [PROMPT.length]);
    expect(maxAbsDiff(a, await y1.toFloat32Array())).toBe(0);

    // Both (a checkpoint that wrote the tie out twice).
    weights.set("encoder.embed_tokens.weight", await weights.get("shared.weight").to("cpu"));
    expect(new UMT5Encoder(C, weights).embeddingName).toBe("shared.weight");

    // Both, but the alias mis-shaped: named in the error.
    weights.set("encoder.embed_tokens.weight", Tensor.from([1, 2], [1, 2]));
    expect(() => new UMT5Encoder(C, weights)).toThrow(/'encoder\.embed_tokens\.weight' has shape \[1, 2\]/);
    for (const x of [ids, y0, y1]) x.dispose();
    weights.dispose();
    aliasOnly.dispose();
  });

  it("rejects weights that do not match the config, naming the tensor", () => {
    const weights = randomUMT5Weights({ ...C, num_layers: 1 });
    expect(() => new UMT5Encoder(C, weights)).toThrow(WeightError);
    expect(() => new UMT5Encoder(C, weights)).toThrow(/missing \d+ tensor\(s\): encoder\.block\.1\./);
    const one = { ...C, num_layers: 1 };
    expect(() => new UMT5Encoder(one, weights)).not.toThrow();
    weights.set("encoder.block.0.layer.1.DenseReluDense.wo.weight", Tensor.from([1, 2], [2]));
    expect(() => new UMT5Encoder(one, weights)).toThrow(
      /'encoder\.block\.0\.layer\.1\.DenseReluDense\.wo\.weight' has shape \[2\], expected \[32, 48\]/,
    );
    weights.set(
      "encoder.block.0.layer.1.DenseReluDense.wo.weight",
      Tensor.from(new Array(32 * 48).fill(0), [32, 48]),
    );
    // T5's decoder-side / LM-head tensors are not part of the encoder.
    weights.set("lm_head.weight", Tensor.from([0], [1]));
    expect(() => new UMT5Encoder(one, weights)).toThrow(/1 unexpected tensor\(s\): lm_head\.weight/);
    weights.dispose();
  });

  it("rejects mixed dtypes and bad inputs", () => {
    const one = { ...C, num_layers: 1 };
    const weights = randomUMT5Weights(one);
    weights.set("encoder.final_layer_norm.weight", Tensor.from(new Array(D).fill(1), [D], { dtype: "bf16" }));
    expect(() => new UMT5Encoder(one, weights)).toThrow(/'encoder\.final_layer_norm\.weight' is bf16/);
    weights.set("encoder.final_layer_norm.weight", Tensor.from(new Array(D).fill(1), [D]));
    const model = new UMT5Encoder(one, weights);
    const ids = idsTensor([[1, 2, 3]]);
    const f = Tensor.from([1, 2, 3], [1, 3]);
    expect(() => model.encode(f, [3])).toThrow(/ids must be i32 \[B, L\]/);
    expect(() => model.encode(ids, [3, 3])).toThrow(/2 lengths given for a batch of 1/);
    expect(() => model.encode(ids, [4])).toThrow(/integer in \[0, 3\], got 4/);
    for (const t of [ids, f]) t.dispose();
    weights.dispose();
  });
});

describe("umT5 config", () => {
  it("reads an HF config.json and rejects what it cannot run", () => {
    // The fields of Wan2.1's text_encoder/config.json (UMT5EncoderModel, umt5-xxl).
    const json = {
      architectures: ["UMT5EncoderModel"],
      d_ff: 10240,
      d_kv: 64,
      d_model: 4096,
      decoder_start_token_id: 0,
      dense_act_fn: "gelu_new",
      dropout_rate: 0.1,
      eos_token_id: 1,
      feed_forward_proj: "gated-gelu",
      initializer_factor: 1.0,
      is_encoder_decoder: true,
      is_gated_act: true,
      layer_norm_epsilon: 1e-6,
      model_type: "umt5",
      num_decoder_layers: 24,
      num_heads: 64,
      num_layers: 24,
      pad_token_id: 0,
      relative_attention_max_distance: 128,
      relative_attention_num_buckets: 32,
      tie_word_embeddings: false,
      torch_dtype: "float32",
      vocab_size: 256384,
    };
    expect(umt5ConfigFromJson(json)).toEqual(UMT5_XXL);
    expect(() => umt5ConfigFromJson({ ...json, feed_forward_proj: "relu" })).toThrow(/feed_forward_proj/);
    expect(() => umt5ConfigFromJson({ ...json, d_model: undefined })).toThrow(/'d_model' is missing/);
    expect(() => umt5ConfigFromJson({ ...json, relative_attention_num_buckets: 2 })).toThrow(/at least 4/);
    expect(() => umt5ConfigFromJson([])).toThrow(/JSON object/);
  });
});

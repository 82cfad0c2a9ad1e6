// The umT5 text encoder (HF UMT5EncoderModel) as Wan2.1 conditions on it: token ids
// in, one d_model state per token out, with the states of padding positions zeroed.
import {
  add,
  attention,
  cast,
  concat,
  embedding,
  linear,
  mul,
  permute,
  rmsNorm,
  scope,
  slice,
  Tensor,
  zeros,
} from "@tessera/native";
import { WeightError, type WeightStore } from "../../weights/store.js";
import { relativePositionBuckets } from "./bucket.js";
import { type UMT5Config, umt5InnerDim, validateUMT5Config } from "./config.js";
import { UMT5_EMBEDDING, UMT5_EMBEDDING_ALIAS, umt5Params } from "./params.js";

export interface UMT5EncodeOptions {
  /**
   * Run the layers on the first max(lengths) positions only and append zero rows
   * (default true). The result is the same as running every position under the
   * attention mask, since real tokens never see padding and the position bias only
   * depends on offsets; a 512-token Wan prompt is mostly padding, so this saves most
   * of the work.
   */
  trimPadding?: boolean;
}

export class UMT5Encoder {
  /** Which name the embedding table was found under (see UMT5_EMBEDDING). */
  readonly embeddingName: string;
  readonly innerDim: number;
  readonly #buckets = new Map<number, Int32Array>();

  /**
   * Checks `weights` against umt5Params(config) exactly: every tensor present with
   * its shape, nothing extra, one dtype and device. The embedding may be named
   * `shared.weight` (required by default, what HF writes) or
   * `encoder.embed_tokens.weight` (its tied alias), or both (a checkpoint that wrote
   * the tie out twice; `shared.weight` is then used and the copies are not compared).
   */
  constructor(
    readonly config: UMT5Config,
    readonly weights: WeightStore,
  ) {
    validateUMT5Config(config);
    this.innerDim = umt5InnerDim(config);
    const expected = new Map<string, readonly number[]>();
    for (const [name, spec] of umt5Params(config)) expected.set(name, spec.shape);
    const embShape = expected.get(UMT5_EMBEDDING) as readonly number[];
    if (weights.has(UMT5_EMBEDDING_ALIAS)) {
      expected.set(UMT5_EMBEDDING_ALIAS, embShape);
      if (!weights.has(UMT5_EMBEDDING)) expected.delete(UMT5_EMBEDDING);
    }
    weights.checkExactly(expected);
    this.embeddingName = weights.has(UMT5_EMBEDDING) ? UMT5_EMBEDDING : UMT5_EMBEDDING_ALIAS;
    const ref = weights.get(this.embeddingName);
    for (const name of expected.keys()) {
      const t = weights.get(name);
      if (t.dtype !== ref.dtype || t.device.name !== ref.device.name)
        throw new WeightError(
          `${weights.source}: tensor '${name}' is ${t.dtype} on ${t.device.name} but '${this.embeddingName}' is ${ref.dtype} on ${ref.device.name}; the encoder needs one dtype and device`,
        );
    }
  }

  /**
   * Encoder states for a batch of token ids. ids: i32 [B, L] (each id in
   * [0, vocab_size); positions at or past a prompt's length are padding and may hold
   * any valid id); lengths[b]: real tokens of prompt b, EOS included. Returns
   * [B, L, d_model] in the weights' dtype, rows at or past each length set to zero
   * as Wan's pipeline does with the HF encoder's output.
   */
  encode(ids: Tensor, lengths: readonly number[], opts: UMT5EncodeOptions = {}): Tensor {
    const c = this.config;
    if (ids.dtype !== "i32" || ids.ndim !== 2)
      throw new Error(`UMT5Encoder: ids must be i32 [B, L], got ${ids.dtype} [${ids.shape.join(", ")}]`);
    const [b, l] = ids.shape as [number, number];
    if (lengths.length !== b)
      throw new Error(`UMT5Encoder: ${lengths.length} lengths given for a batch of ${b}`);
    for (const n of lengths)
      if (!Number.isInteger(n) || n < 0 || n > l)
        throw new Error(`UMT5Encoder: each length must be an integer in [0, ${l}], got ${n}`);
    const emb = this.weights.get(this.embeddingName);
    const device = emb.device;
    const dtype = emb.dtype;
    const run = opts.trimPadding === false ? l : Math.max(0, ...lengths);

    return scope(() => {
      if (run === 0) return zeros([b, l, c.d_model], { dtype, device });
      const x0 = run === l ? ids : slice(ids, 1, 0, run);
      const keyLengths = Tensor.from(lengths, [b], { dtype: "i32", device });
      const buckets = Tensor.from(this.buckets(run), [run, run], { dtype: "i32", device });
      let x = embedding(x0, emb);
      for (let i = 0; i < c.num_layers; i++) {
        const xi = x;
        x = scope(() => this.block(i, xi, keyLengths, buckets));
      }
      x = rmsNorm(x, {
        weight: this.weights.get("encoder.final_layer_norm.weight"),
        eps: c.layer_norm_epsilon,
      });
      if (lengths.some((n) => n < run)) {
        const keep = new Float32Array(b * run);
        for (let s = 0; s < b; s++) keep.fill(1, s * run, s * run + (lengths[s] as number));
        // Multiplying is exact for 0/1 and the rows are finite (each real query attends real keys).
        x = mul(x, Tensor.from(keep, [b, run, 1], { dtype, device }));
      }
      if (run < l) x = concat([x, zeros([b, l - run, c.d_model], { dtype, device })], 1);
      return x;
    });
  }

  private block(i: number, x: Tensor, keyLengths: Tensor, buckets: Tensor): Tensor {
    const c = this.config;
    const [b, l] = x.shape as [number, number];
    const eps = c.layer_norm_epsilon;
    const a = `encoder.block.${i}.layer.0`;
    const f = `encoder.block.${i}.layer.1`;
    const w = (name: string) => this.weights.get(name);

    const h = rmsNorm(x, { weight: w(`${a}.layer_norm.weight`), eps });
    const heads = (name: string) =>
      linear(h, w(`${a}.SelfAttention.${name}.weight`)).reshape([b, l, c.num_heads, c.d_kv]);
    // T5 folds 1/sqrt(d_kv) into the q initialisation, so logits are unscaled.
    const att = attention(heads("q"), heads("k"), heads("v"), {
      scale: 1,
      keyLengths,
      bias: this.positionBias(w(`${a}.SelfAttention.relative_attention_bias.weight`), buckets),
    });
    x = add(x, linear(att.reshape([b, l, this.innerDim]), w(`${a}.SelfAttention.o.weight`)));

    const h2 = rmsNorm(x, { weight: w(`${f}.layer_norm.weight`), eps });
    const gate = linear(h2, w(`${f}.DenseReluDense.wi_0.weight`), undefined, { epilogue: "gelu_tanh" });
    const up = linear(h2, w(`${f}.DenseReluDense.wi_1.weight`));
    return add(x, linear(mul(gate, up), w(`${f}.DenseReluDense.wo.weight`)));
  }

  /** Bias [H, L, L] (f32, as the attention op takes it) from a layer's table [buckets, H]. */
  private positionBias(table: Tensor, buckets: Tensor): Tensor {
    const t = table.dtype === "f32" ? table : cast(table, "f32");
    return permute(embedding(buckets, t), [2, 0, 1]);
  }

  private buckets(l: number): Int32Array {
    let t = this.#buckets.get(l);
    if (!t) {
      t = relativePositionBuckets(l, l, {
        bidirectional: true,
        numBuckets: this.config.relative_attention_num_buckets,
        maxDistance: this.config.relative_attention_max_distance,
      });
      // Prompts come padded to one length; a handful of entries covers any real use.
      if (this.#buckets.size >= 8) this.#buckets.clear();
      this.#buckets.set(l, t);
    }
    return t;
  }
}

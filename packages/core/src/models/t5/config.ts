// umT5 encoder configuration, with the field names of Hugging Face's T5Config /
// UMT5Config, so a checkpoint folder's config.json (text_encoder/config.json in the
// Wan2.1 diffusers repos) reads as is through umt5ConfigFromJson().

export interface UMT5Config {
  vocab_size: number;
  d_model: number;
  /** Per-head width of q/k/v; num_heads·d_kv need not equal d_model. */
  d_kv: number;
  d_ff: number;
  num_layers: number;
  num_heads: number;
  relative_attention_num_buckets: number;
  relative_attention_max_distance: number;
  /** Only the gated GELU feed-forward of umT5 is implemented. */
  feed_forward_proj: "gated-gelu";
  /** What HF derives from feed_forward_proj "gated-gelu": GELU with the tanh approximation. */
  dense_act_fn: "gelu_new";
  layer_norm_epsilon: number;
  pad_token_id: number;
  eos_token_id: number;
}

/**
 * google/umt5-xxl as Wan2.1 uses it (text_encoder/config.json of
 * Wan-AI/Wan2.1-T2V-*-Diffusers, architecture UMT5EncoderModel).
 */
export const UMT5_XXL: UMT5Config = {
  vocab_size: 256384,
  d_model: 4096,
  d_kv: 64,
  d_ff: 10240,
  num_layers: 24,
  num_heads: 64,
  relative_attention_num_buckets: 32,
  relative_attention_max_distance: 128,
  feed_forward_proj: "gated-gelu",
  dense_act_fn: "gelu_new",
  layer_norm_epsilon: 1e-6,
  pad_token_id: 0,
  eos_token_id: 1,
};

/**
 * A tiny member of the family for tests. num_heads·d_kv ≠ d_model on purpose, so a
 * mix-up of the two widths fails loudly; the buckets and distance are those of XXL so
 * that short test sequences still reach the logarithmic buckets (positions ≥ 8).
 */
export const UMT5_TINY: UMT5Config = {
  ...UMT5_XXL,
  vocab_size: 64,
  d_model: 32,
  d_kv: 8,
  d_ff: 48,
  num_layers: 2,
  num_heads: 3,
};

/** Attention width num_heads·d_kv (the q/k/v output size). */
export function umt5InnerDim(c: UMT5Config): number {
  return c.num_heads * c.d_kv;
}

/** Parameter count implied by a config (the encoder; the shared embedding counted once). */
export function umt5ParameterCount(c: UMT5Config): number {
  const inner = umt5InnerDim(c);
  const block =
    4 * c.d_model * inner + // q, k, v, o
    c.relative_attention_num_buckets * c.num_heads +
    3 * c.d_model * c.d_ff + // wi_0, wi_1, wo
    2 * c.d_model; // two layer norms
  return c.vocab_size * c.d_model + c.num_layers * block + c.d_model;
}

/** Checks a config for values the encoder cannot run with; throws naming the field. */
export function validateUMT5Config(c: UMT5Config): void {
  const positive = [
    "vocab_size",
    "d_model",
    "d_kv",
    "d_ff",
    "num_layers",
    "num_heads",
    "relative_attention_num_buckets",
    "relative_attention_max_distance",
  ] as const;
  for (const k of positive) {
    if (!Number.isInteger(c[k]) || c[k] <= 0)
      throw new Error(`umT5 config: ${k} must be a positive integer, got ${c[k]}`);
  }
  // Bidirectional bucketing halves the buckets, then gives half of those to exact
  // offsets: fewer than 4 leaves no exact bucket and the log formula divides by zero.
  if (c.relative_attention_num_buckets < 4)
    throw new Error(
      `umT5 config: relative_attention_num_buckets must be at least 4, got ${c.relative_attention_num_buckets}`,
    );
  const maxExact = Math.floor(Math.floor(c.relative_attention_num_buckets / 2) / 2);
  if (c.relative_attention_max_distance <= maxExact)
    throw new Error(
      `umT5 config: relative_attention_max_distance must exceed the ${maxExact} exact buckets, got ${c.relative_attention_max_distance}`,
    );
  if (c.feed_forward_proj !== "gated-gelu")
    throw new Error(
      `umT5 config: feed_forward_proj must be "gated-gelu" (the only one implemented), got ${JSON.stringify(c.feed_forward_proj)}`,
    );
  if (c.dense_act_fn !== "gelu_new")
    throw new Error(
      `umT5 config: dense_act_fn must be "gelu_new" (GELU, tanh approximation), got ${JSON.stringify(c.dense_act_fn)}`,
    );
  if (!(c.layer_norm_epsilon > 0))
    throw new Error(`umT5 config: layer_norm_epsilon must be positive, got ${c.layer_norm_epsilon}`);
  for (const k of ["pad_token_id", "eos_token_id"] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 0 || c[k] >= c.vocab_size)
      throw new Error(`umT5 config: ${k} must be an id in [0, ${c.vocab_size}), got ${c[k]}`);
  }
}

/**
 * A config from a parsed HF config.json (T5Config / UMT5Config fields; others are
 * ignored). Missing fields take UMT5Config's defaults except the sizes, which must be
 * present; dense_act_fn is derived from feed_forward_proj as HF does.
 */
export function umt5ConfigFromJson(json: unknown): UMT5Config {
  if (!json || typeof json !== "object" || Array.isArray(json))
    throw new Error("umT5 config: expected a JSON object");
  const j = json as Record<string, unknown>;
  if (j.is_decoder === true) throw new Error("umT5 config: is_decoder is true; this is an encoder");
  const num = (k: string, dflt?: number): number => {
    const v = j[k] ?? dflt;
    if (typeof v !== "number") throw new Error(`umT5 config: field '${k}' is missing or not a number`);
    return v;
  };
  const ffp = j.feed_forward_proj ?? "gated-gelu";
  // HF: "gated-gelu" means gelu_new whatever dense_act_fn says; anything else is unsupported here.
  const act = ffp === "gated-gelu" ? "gelu_new" : j.dense_act_fn;
  const eos = Array.isArray(j.eos_token_id) ? j.eos_token_id[0] : j.eos_token_id;
  const c = {
    vocab_size: num("vocab_size"),
    d_model: num("d_model"),
    d_kv: num("d_kv", 64),
    d_ff: num("d_ff"),
    num_layers: num("num_layers"),
    num_heads: num("num_heads"),
    relative_attention_num_buckets: num("relative_attention_num_buckets", 32),
    relative_attention_max_distance: num("relative_attention_max_distance", 128),
    feed_forward_proj: ffp,
    dense_act_fn: act,
    layer_norm_epsilon: num("layer_norm_epsilon", 1e-6),
    pad_token_id: typeof j.pad_token_id === "number" ? j.pad_token_id : 0,
    eos_token_id: typeof eos === "number" ? eos : 1,
  } as UMT5Config;
  validateUMT5Config(c);
  return c;
}

// The CLIP vision tower (Hugging Face CLIPVisionModel) as Wan2.1's image-to-video
// models use it: the image's patch embedding, a class token and learned positions,
// a LayerNorm before the encoder (HF's "pre_layrnorm"), then pre-LN layers. Wan takes
// the hidden states before the last layer (HF's hidden_states[-2]), every token with
// the class token first and no final norm, so the last layer is never run.
import {
  add,
  attention,
  concat,
  conv2d,
  gelu,
  layerNorm,
  linear,
  mul,
  scope,
  type Tensor,
  unary,
} from "@tessera/native";
import type { WeightStore } from "../../weights/store.js";
import { type ClipVisionConfig, clipTokens, validateClipVisionConfig } from "./config.js";
import { CLIP_PREFIX, clipVisionParams } from "./params.js";

export class ClipVisionEncoder {
  constructor(
    readonly config: ClipVisionConfig,
    readonly weights: WeightStore,
  ) {
    validateClipVisionConfig(config);
    const expected = new Map<string, readonly number[]>();
    for (const [name, spec] of clipVisionParams(config)) expected.set(name, spec.shape);
    weights.checkExactly(expected);
  }

  private w(name: string): Tensor {
    return this.weights.get(`${CLIP_PREFIX}.${name}`);
  }

  private lin(x: Tensor, name: string): Tensor {
    return linear(x, this.w(`${name}.weight`), this.w(`${name}.bias`));
  }

  private norm(x: Tensor, name: string): Tensor {
    return layerNorm(x, {
      eps: this.config.layer_norm_eps,
      weight: this.w(`${name}.weight`),
      bias: this.w(`${name}.bias`),
    });
  }

  /**
   * Preprocessed images [B, S, S, 3] (channels-last, preprocess.ts) -> the hidden
   * states after layer `layers` − 1 of the encoder [B, tokens, hidden]; by default
   * num_hidden_layers − 1 layers: HF's hidden_states[-2], what Wan conditions on.
   */
  encode(pixels: Tensor, layers = this.config.num_hidden_layers - 1): Tensor {
    const c = this.config;
    const s = c.image_size;
    if (
      pixels.ndim !== 4 ||
      pixels.shape[1] !== s ||
      pixels.shape[2] !== s ||
      pixels.shape[3] !== c.num_channels
    )
      throw new Error(
        `ClipVisionEncoder: pixels must be [B, ${s}, ${s}, ${c.num_channels}], got [${pixels.shape.join(", ")}]`,
      );
    if (!Number.isInteger(layers) || layers < 0 || layers > c.num_hidden_layers)
      throw new Error(`ClipVisionEncoder: layers must be 0..${c.num_hidden_layers}, got ${layers}`);
    return scope(() => {
      let x = this.norm(this.embed(pixels), "pre_layrnorm");
      for (let i = 0; i < layers; i++) {
        const xi = x;
        x = scope(() => this.layer(i, xi));
      }
      return x;
    });
  }

  // Patches (row-major, as HF flattens the conv output), the class token first, plus positions.
  private embed(pixels: Tensor): Tensor {
    const c = this.config;
    const b = pixels.shape[0] as number;
    const d = c.hidden_size;
    const g = c.image_size / c.patch_size;
    const patches = conv2d(pixels, this.w("embeddings.patch_embedding.weight"), {
      stride: c.patch_size,
    }).reshape([b, g * g, d]);
    const cls = this.w("embeddings.class_embedding").reshape([1, 1, d]);
    const tokens = concat(
      [
        b === 1
          ? cls
          : concat(
              Array.from({ length: b }, () => cls),
              0,
            ),
        patches,
      ],
      1,
    );
    return add(tokens, this.w("embeddings.position_embedding.weight").reshape([1, clipTokens(c), d]));
  }

  private layer(i: number, x: Tensor): Tensor {
    const c = this.config;
    const l = `encoder.layers.${i}`;
    const [b, n] = x.shape as [number, number];
    const shape = [b, n, c.num_attention_heads, c.hidden_size / c.num_attention_heads];
    const h = this.norm(x, `${l}.layer_norm1`);
    const q = this.lin(h, `${l}.self_attn.q_proj`).reshape(shape);
    const k = this.lin(h, `${l}.self_attn.k_proj`).reshape(shape);
    const v = this.lin(h, `${l}.self_attn.v_proj`).reshape(shape);
    const a = attention(q, k, v).reshape([b, n, c.hidden_size]);
    const x1 = add(x, this.lin(a, `${l}.self_attn.out_proj`));
    const m = this.activation(this.lin(this.norm(x1, `${l}.layer_norm2`), `${l}.mlp.fc1`));
    return add(x1, this.lin(m, `${l}.mlp.fc2`));
  }

  private activation(x: Tensor): Tensor {
    if (this.config.hidden_act === "gelu") return gelu(x);
    // quick_gelu: x·σ(1.702·x).
    return mul(x, unary(x, "sigmoid", 1.702, 0));
  }
}

// The CLIP vision tower's tensors under Hugging Face's CLIPVisionModel names
// (vision_model.*), with shapes and a random initialisation for tests.
import { affine, cast, type DeviceLike, type DType, full, randn, type Tensor } from "@tessera/native";
import { WeightStore } from "../../weights/store.js";
import { type ClipVisionConfig, clipTokens } from "./config.js";

export interface ClipParamSpec {
  shape: number[];
  /** Random init mean + std·N(0, 1); LayerNorm weights are 1, biases 0. */
  mean: number;
  std: number;
}

export const CLIP_PREFIX = "vision_model";

/**
 * Names some checkpoints carry that the tower does not use: the position_ids buffer
 * older transformers saved, and CLIPVisionModelWithProjection's projection (Wan reads
 * the hidden states, not the projected embedding). A loader drops them.
 */
export function isUnusedClipTensor(name: string): boolean {
  return name === `${CLIP_PREFIX}.embeddings.position_ids` || name.startsWith("visual_projection.");
}

export function clipVisionParams(c: ClipVisionConfig): Map<string, ClipParamSpec> {
  const d = c.hidden_size;
  const p = new Map<string, ClipParamSpec>();
  const v = CLIP_PREFIX;
  const lin = (name: string, i: number, o: number) => {
    p.set(`${name}.weight`, { shape: [o, i], mean: 0, std: i ** -0.5 });
    p.set(`${name}.bias`, { shape: [o], mean: 0, std: 0.02 });
  };
  const norm = (name: string) => {
    p.set(`${name}.weight`, { shape: [d], mean: 1, std: 0 });
    p.set(`${name}.bias`, { shape: [d], mean: 0, std: 0 });
  };
  p.set(`${v}.embeddings.class_embedding`, { shape: [d], mean: 0, std: d ** -0.5 });
  p.set(`${v}.embeddings.patch_embedding.weight`, {
    shape: [d, c.num_channels, c.patch_size, c.patch_size],
    mean: 0,
    std: (c.num_channels * c.patch_size ** 2) ** -0.5,
  });
  p.set(`${v}.embeddings.position_embedding.weight`, { shape: [clipTokens(c), d], mean: 0, std: 0.02 });
  norm(`${v}.pre_layrnorm`);
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const l = `${v}.encoder.layers.${i}`;
    for (const proj of ["q_proj", "k_proj", "v_proj", "out_proj"]) lin(`${l}.self_attn.${proj}`, d, d);
    norm(`${l}.layer_norm1`);
    lin(`${l}.mlp.fc1`, d, c.intermediate_size);
    lin(`${l}.mlp.fc2`, c.intermediate_size, d);
    norm(`${l}.layer_norm2`);
  }
  norm(`${v}.post_layernorm`);
  return p;
}

/** Random weights from a seed: the same numbers on every device. */
export function randomClipVisionWeights(
  c: ClipVisionConfig,
  opts: { seed?: number; device?: DeviceLike; dtype?: DType } = {},
): WeightStore {
  const seed = opts.seed ?? 0;
  const store = new WeightStore(`random CLIP vision tower (seed ${seed})`);
  const device = opts.device ?? "cpu";
  const dtype = opts.dtype ?? "f32";
  let offset = 0;
  for (const [name, spec] of clipVisionParams(c)) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    if (spec.std === 0) {
      store.set(name, full(spec.shape, spec.mean, { device, dtype }));
      continue;
    }
    const raw = randn(spec.shape, { seed, offset, device, dtype: "f32" });
    offset += n + (n % 2);
    const scaled = affine(raw, spec.std, spec.mean);
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

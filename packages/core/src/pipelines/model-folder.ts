// Model folders in the diffusers layout (what Wan-AI/Wan2.1-T2V-*-Diffusers ship):
//
//   model_index.json                 {"_class_name": "WanPipeline", component: [library, class], ...}
//   transformer/config.json          WanTransformer3DModel
//   transformer/diffusion_pytorch_model.safetensors   (or -0000i-of-0000n shards + .index.json)
//   vae/config.json, vae/diffusion_pytorch_model.safetensors                      AutoencoderKLWan
//   text_encoder/config.json, text_encoder/model.safetensors                      UMT5EncoderModel
//   tokenizer/tokenizer.json
//   scheduler/scheduler_config.json  UniPCMultistepScheduler (flow_shift, ...)
//   tessera.json                     optional, ours: generation defaults for the model
//
// and random-weight members of the family, in memory or written as such a folder,
// for tests and for trying the whole path on a fresh clone before any checkpoint
// is downloaded.
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { affine, cast, type DeviceLike, type DType, full, randn, type Tensor } from "@tessera/native";
import type { ClipVisionConfig } from "../models/clip/config.js";
import { ClipVisionEncoder } from "../models/clip/encoder.js";
import { clipImageProcessor } from "../models/clip/preprocess.js";
import { UMT5_TINY, UMT5_XXL, type UMT5Config } from "../models/t5/config.js";
import { UMT5Encoder } from "../models/t5/encoder.js";
import { umt5Params } from "../models/t5/params.js";
import {
  WAN_TINY,
  WAN21_T2V_1_3B,
  WAN21_T2V_14B,
  WAN22_TI2V_5B,
  type WanTransformerConfig,
} from "../models/wan/config.js";
import { takesImageLatents } from "../models/wan/image.js";
import { type ParamSpec, wanTransformerParams } from "../models/wan/params.js";
import { WanTransformer } from "../models/wan/transformer.js";
import {
  WAN_VAE_TINY,
  WAN21_VAE,
  WAN22_VAE,
  WAN22_VAE_TINY,
  type WanVaeConfig,
} from "../models/wan-vae/config.js";
import { wanVaeParams } from "../models/wan-vae/params.js";
import { WanVAE } from "../models/wan-vae/vae.js";
import { TextTokenizer } from "../tokenizer/tokenizer.js";
import { buildWordLevelTokenizerJson } from "../tokenizer/wordlevel.js";
import { type TensorToWrite, writeSafetensors } from "../weights/safetensors.js";
import { WeightStore } from "../weights/store.js";
import {
  clipInits,
  I2V_A14B_MODEL_INDEX,
  I2V_MODEL_INDEX,
  I2V_RANDOM_MODELS,
  writeImageEncoderConfigs,
} from "./i2v-model-folder.js";
import type { ImageEncoderParts } from "./image-conditioning.js";
import type { GenerationDefaults } from "./options.js";
import type { WanPipelineComponents } from "./wan.js";

export interface WanModelConfigs {
  transformer: WanTransformerConfig;
  vae: WanVaeConfig;
  textEncoder: UMT5Config;
  defaults: Partial<GenerationDefaults>;
  /** Flow shift written to scheduler_config.json. */
  shift: number;
  /** model_index.json's expand_timesteps (Wan2.2 TI2V's per-token timesteps). */
  expandTimesteps?: boolean;
  /** Two-expert models (Wan2.2 A14B): the second (low-noise) expert, drawn with seed + 3. */
  transformer2?: WanTransformerConfig;
  /** With transformer2: model_index.json's boundary_ratio. */
  boundaryRatio?: number;
  /** Image-to-video models: the CLIP image encoder (image_encoder/). */
  imageEncoder?: ClipVisionConfig;
}

/**
 * Words of the random models' tokenizer (ids 3..): enough for demo prompts. A word
 * outside it becomes <unk>, which is fine for weights that mean nothing anyway.
 */
export const DEMO_VOCAB: readonly string[] = (
  "a an the of in on and with at to is , . red green blue yellow white black orange purple " +
  "ball cat dog bird fish car tree house sky sea sun moon cloud flower river mountain city street forest " +
  "snow rain fire light big small fast slow bright dark running flying rolling jumping walking swimming " +
  "dancing night day cute old"
).split(" ");

/**
 * One random model of `tessera create-model --config NAME`: what it is (for --help) and
 * its configs. A family adds its real geometry (and a tiny member for tests) as one
 * entry of RANDOM_MODELS below; the name list, the CLI's choices and its help follow.
 */
export interface RandomModelSpec {
  /** A few words for --help: "Wan2.1-T2V-14B's geometry". */
  description: string;
  configs(): WanModelConfigs;
}

/** The random models by name (the order of --help). */
export const RANDOM_MODELS = {
  tiny: {
    description: "seconds on a CPU",
    configs: () => ({
      // The tiny VAE has 4 latent channels, so the transformer takes and gives 4.
      transformer: {
        ...WAN_TINY,
        in_channels: WAN_VAE_TINY.z_dim,
        out_channels: WAN_VAE_TINY.z_dim,
        text_dim: UMT5_TINY.d_model,
      },
      vae: WAN_VAE_TINY,
      textEncoder: UMT5_TINY,
      defaults: { width: 128, height: 128, frames: 17, steps: 20, fps: 8 },
      shift: 5,
    }),
  },
  "wan2.1-1.3b": {
    description: "Wan2.1-T2V-1.3B's geometry",
    configs: () => ({
      transformer: WAN21_T2V_1_3B,
      vae: WAN21_VAE,
      textEncoder: UMT5_XXL,
      defaults: {},
      // Wan-AI/Wan2.1-T2V-1.3B-Diffusers' scheduler_config.json.
      shift: 3,
    }),
  },
  "wan2.1-t2v-14b": {
    description: "Wan2.1-T2V-14B's geometry (about 28 GB in bf16)",
    configs: () => ({
      transformer: WAN21_T2V_14B,
      vae: WAN21_VAE,
      textEncoder: UMT5_XXL,
      defaults: {},
      // Wan's generate.py samples the T2V-14B with shift 5.
      shift: 5,
    }),
  },
  "wan2.2-ti2v-5b": {
    description: "Wan2.2-TI2V-5B's geometry: the Wan2.2 VAE, per-token timesteps",
    configs: () => ({
      transformer: WAN22_TI2V_5B,
      vae: WAN22_VAE,
      textEncoder: UMT5_XXL,
      defaults: {},
      // Wan-AI/Wan2.2-TI2V-5B-Diffusers' scheduler_config.json (flow_shift 5).
      shift: 5,
      expandTimesteps: true,
    }),
  },
  "tiny-ti2v": {
    description: "the TI2V trait at tiny size, for tests",
    configs: () => ({
      // The tiny Wan2.2 VAE (z 8, 16×16×4) under the tiny transformer.
      transformer: {
        ...WAN_TINY,
        in_channels: WAN22_VAE_TINY.z_dim,
        out_channels: WAN22_VAE_TINY.z_dim,
        text_dim: UMT5_TINY.d_model,
      },
      vae: WAN22_VAE_TINY,
      textEncoder: UMT5_TINY,
      defaults: { width: 128, height: 128, frames: 17, steps: 20, fps: 8 },
      shift: 5,
      expandTimesteps: true,
    }),
  },
  "tiny-a14b": {
    description: "tiny with two experts, Wan2.2 A14B's layout",
    // The tiny model with a second expert of the same geometry.
    configs: (): WanModelConfigs => {
      const tiny = RANDOM_MODELS.tiny.configs();
      return { ...tiny, transformer2: tiny.transformer, boundaryRatio: 0.875 };
    },
  },
  "wan2.2-t2v-a14b": {
    description: "Wan2.2-T2V-A14B's geometry: two 14B experts, about 57 GB in bf16",
    // Wan-AI/Wan2.2-T2V-A14B-Diffusers: two experts of Wan2.1-T2V-14B's geometry handing
    // over at boundary_ratio 0.875; Wan2.2's sampling (40 steps, shift 12, guidance 4 on
    // the high-noise expert; Wan2.2 uses 3 on the low-noise one: --guidance-2 3).
    configs: (): WanModelConfigs => ({
      transformer: WAN21_T2V_14B,
      transformer2: WAN21_T2V_14B,
      boundaryRatio: 0.875,
      vae: WAN21_VAE,
      textEncoder: UMT5_XXL,
      defaults: { steps: 40, guidance: 4 },
      shift: 12,
    }),
  },
  // Image-to-video: Wan2.1 tiny-i2v, I2V-14B (480P, 720P) and FLF2V-14B, Wan2.2
  // tiny-i2v-a14b and I2V-A14B (i2v-model-folder.ts).
  ...I2V_RANDOM_MODELS,
} as const satisfies Record<string, RandomModelSpec>;

export type RandomModelName = keyof typeof RANDOM_MODELS;
export const RANDOM_MODEL_NAMES = Object.keys(RANDOM_MODELS) as readonly RandomModelName[];

/** The configs of a random model by name. */
export function randomModelConfigs(name: RandomModelName): WanModelConfigs {
  const spec: RandomModelSpec | undefined = (RANDOM_MODELS as Record<string, RandomModelSpec>)[name];
  if (!spec)
    throw new RangeError(`unknown model config '${name as string}'; use ${RANDOM_MODEL_NAMES.join(", ")}`);
  return spec.configs();
}

type Init = { mean: number; std: number };

// Each component's tensors with how to draw them: mean + std·N(0, 1) from the
// seed's stream at a running offset, exactly as randomWanTransformerWeights,
// randomWanVaeWeights and randomUMT5Weights draw them, so a written folder holds
// the same numbers as the in-memory models of the same seed.
// The Wan transformer and VAE specs share one shape: normal draws scaled by fan-in, or constants.
function specInits(params: Map<string, ParamSpec>): Map<string, { shape: number[]; init: Init }> {
  const out = new Map<string, { shape: number[]; init: Init }>();
  for (const [name, s] of params)
    out.set(name, {
      shape: s.shape,
      init:
        s.init === "normal"
          ? { mean: 0, std: 1 / Math.sqrt(s.fanIn ?? 1) }
          : { mean: s.init === "ones" ? 1 : 0, std: 0 },
    });
  return out;
}

const transformerInits = (c: WanTransformerConfig) => specInits(wanTransformerParams(c));
const vaeInits = (c: WanVaeConfig) => specInits(wanVaeParams(c));

function t5Inits(c: UMT5Config): Map<string, { shape: number[]; init: Init }> {
  const out = new Map<string, { shape: number[]; init: Init }>();
  for (const [name, s] of umt5Params(c))
    out.set(name, { shape: s.shape, init: { mean: s.mean, std: s.std } });
  return out;
}

// Yields each tensor in turn (the caller disposes it), so a multi-gigabyte model
// never has to be in memory at once.
function* drawTensors(
  specs: Map<string, { shape: number[]; init: Init }>,
  seed: number,
  device: DeviceLike,
  dtype: DType,
): Generator<[string, Tensor]> {
  let offset = 0;
  for (const [name, { shape, init }] of specs) {
    const n = shape.reduce((a, b) => a * b, 1);
    let t: Tensor;
    if (init.std === 0) t = full(shape, init.mean, { device, dtype });
    else {
      const raw = randn(shape, { seed, offset, device, dtype: "f32" });
      // Even offsets: a Box–Muller pair is never split across two tensors.
      offset += n + (n % 2);
      const scaled = affine(raw, init.std, init.mean);
      raw.dispose();
      if (dtype === "f32") t = scaled;
      else {
        t = cast(scaled, dtype);
        scaled.dispose();
      }
    }
    yield [name, t];
  }
}

function storeOf(label: string, it: Generator<[string, Tensor]>): WeightStore {
  const s = new WeightStore(label);
  try {
    for (const [name, t] of it) s.set(name, t);
  } catch (e) {
    s.dispose();
    throw e;
  }
  return s;
}

export interface RandomPipelineOptions {
  config?: RandomModelName | WanModelConfigs;
  seed?: number;
  device?: DeviceLike;
  /** Transformer and text-encoder dtype (default f32); the VAE stays f32. */
  dtype?: DType;
  /** VAE dtype (default f32, as Wan runs it). */
  vaeDtype?: DType;
  textLength?: number;
  textCacheSize?: number;
}

/** In-memory components of a random-weight model (seeds: transformer seed, VAE seed + 1, text encoder seed + 2). */
export function randomWanComponents(opts: RandomPipelineOptions = {}): WanPipelineComponents {
  const cfg = typeof opts.config === "object" ? opts.config : randomModelConfigs(opts.config ?? "tiny");
  const seed = opts.seed ?? 0;
  const device = opts.device ?? "cpu";
  const dtype = opts.dtype ?? "f32";
  const stores: WeightStore[] = [];
  try {
    const tw = storeOf(
      `random Wan transformer (seed ${seed})`,
      drawTensors(transformerInits(cfg.transformer), seed, device, dtype),
    );
    stores.push(tw);
    const vw = storeOf(
      `random Wan VAE (seed ${seed + 1})`,
      drawTensors(vaeInits(cfg.vae), seed + 1, device, opts.vaeDtype ?? "f32"),
    );
    stores.push(vw);
    const ew = storeOf(
      `random umT5 (seed ${seed + 2})`,
      drawTensors(t5Inits(cfg.textEncoder), seed + 2, device, dtype),
    );
    stores.push(ew);
    const tokenizer = TextTokenizer.fromJson(
      buildWordLevelTokenizerJson(DEMO_VOCAB),
      {},
      "random model tokenizer",
    );
    let second: Partial<WanPipelineComponents> = {};
    if (cfg.transformer2) {
      const tw2 = storeOf(
        `random Wan transformer_2 (seed ${seed + 3})`,
        drawTensors(transformerInits(cfg.transformer2), seed + 3, device, dtype),
      );
      stores.push(tw2);
      second = {
        transformer2: new WanTransformer(cfg.transformer2, tw2),
        boundaryRatio: cfg.boundaryRatio ?? 0.875,
      };
    }
    let imageEncoder: ImageEncoderParts | undefined;
    if (cfg.imageEncoder) {
      const cw = storeOf(
        `random CLIP vision (seed ${seed + 3})`,
        drawTensors(clipInits(cfg.imageEncoder), seed + 3, device, dtype),
      );
      stores.push(cw);
      imageEncoder = {
        encoder: new ClipVisionEncoder(cfg.imageEncoder, cw),
        processor: clipImageProcessor(cfg.imageEncoder.image_size),
      };
    }
    return {
      ...second,
      ...(imageEncoder ? { imageEncoder } : {}),
      transformer: new WanTransformer(cfg.transformer, tw),
      vae: new WanVAE(cfg.vae, vw),
      textEncoder: new UMT5Encoder(cfg.textEncoder, ew),
      tokenizer,
      modelId: `random ${typeof opts.config === "string" ? opts.config : "custom"} seed ${seed} ${dtype}`,
      defaults: { ...cfg.defaults, shift: cfg.shift },
      ...(cfg.expandTimesteps ? { expandTimesteps: true } : {}),
      ...(opts.textLength !== undefined ? { textLength: opts.textLength } : {}),
      ...(opts.textCacheSize !== undefined ? { textCacheSize: opts.textCacheSize } : {}),
    };
  } catch (e) {
    for (const s of stores) s.dispose();
    throw e;
  }
}

const SAFETENSORS_DTYPE: Partial<Record<DType, "F32" | "BF16" | "F16">> = {
  f32: "F32",
  bf16: "BF16",
  f16: "F16",
};
const SHARD_BYTES = 2 * 1024 ** 3;

// Writes one component's tensors as <base>.safetensors, or as numbered shards of at
// most SHARD_BYTES with <base>.safetensors.index.json when they do not fit in one.
async function writeComponent(
  dir: string,
  base: string,
  tensors: Generator<[string, Tensor]>,
  onTensor?: (name: string) => void,
): Promise<number> {
  const shards: string[] = [];
  const weightMap: Record<string, string> = {};
  let current: Record<string, TensorToWrite> = {};
  let currentBytes = 0;
  let total = 0;
  const flush = async () => {
    if (Object.keys(current).length === 0) return;
    const tmp = join(dir, `${base}.part${shards.length}.tmp`);
    await writeSafetensors(tmp, current);
    shards.push(tmp);
    for (const k of Object.keys(current)) weightMap[k] = tmp;
    current = {};
    currentBytes = 0;
  };
  for (const [name, t] of tensors) {
    let data: ArrayBufferView;
    const dtype = SAFETENSORS_DTYPE[t.dtype];
    const shape = t.shape;
    try {
      if (!dtype) throw new Error(`cannot write ${t.dtype} weights`);
      data = await t.toTypedArray();
    } finally {
      t.dispose();
    }
    if (currentBytes > 0 && currentBytes + data.byteLength > SHARD_BYTES) await flush();
    current[name] = { dtype, shape, data };
    currentBytes += data.byteLength;
    total += data.byteLength;
    onTensor?.(name);
  }
  await flush();
  if (shards.length === 1) {
    await rename(shards[0] as string, join(dir, `${base}.safetensors`));
    return total;
  }
  const n = shards.length;
  const names = shards.map(
    (_, i) => `${base}-${String(i + 1).padStart(5, "0")}-of-${String(n).padStart(5, "0")}.safetensors`,
  );
  for (let i = 0; i < n; i++) await rename(shards[i] as string, join(dir, names[i] as string));
  const byTmp = new Map(shards.map((s, i) => [s, names[i] as string]));
  const map: Record<string, string> = {};
  for (const [k, v] of Object.entries(weightMap)) map[k] = byTmp.get(v) as string;
  await writeFile(
    join(dir, `${base}.safetensors.index.json`),
    `${JSON.stringify({ metadata: { total_size: total }, weight_map: map }, null, 2)}\n`,
  );
  return total;
}

export interface WriteRandomModelOptions {
  config?: RandomModelName;
  seed?: number;
  /** Weight dtype of the transformer and text encoder: f32 (default for tiny) or bf16 (default for the full-size config); the VAE is f32. */
  dtype?: DType;
  onProgress?: (p: { component: string; tensor: string }) => void;
}

export interface WrittenModel {
  dir: string;
  config: RandomModelName;
  bytes: number;
}

/**
 * Writes a random-weight model folder in the diffusers layout that WanPipeline.load
 * reads. The same seed gives the same weights as randomWanComponents. Replaces the
 * component folders if `dir` already holds a model.
 */
export async function writeRandomWanModel(
  dir: string,
  opts: WriteRandomModelOptions = {},
): Promise<WrittenModel> {
  const name = opts.config ?? "tiny";
  const cfg = randomModelConfigs(name);
  const seed = opts.seed ?? 0;
  const dtype = opts.dtype ?? (name.startsWith("tiny") ? "f32" : "bf16");
  if (!SAFETENSORS_DTYPE[dtype]) throw new RangeError(`dtype must be f32, bf16 or f16, got ${dtype}`);
  await mkdir(dir, { recursive: true });
  const subs = ["transformer", "transformer_2", "vae", "text_encoder", "tokenizer", "scheduler"];
  if (cfg.imageEncoder) subs.push("image_encoder", "image_processor");
  for (const sub of subs) {
    if (sub === "transformer_2" && !cfg.transformer2) {
      await rm(join(dir, sub), { recursive: true, force: true });
      continue;
    }
    await rm(join(dir, sub), { recursive: true, force: true });
    await mkdir(join(dir, sub));
  }
  const json = (path: string, v: unknown) => writeFile(join(dir, path), `${JSON.stringify(v, null, 2)}\n`);
  const progress = (component: string) => (tensor: string) => opts.onProgress?.({ component, tensor });
  const torchDtype = dtype === "f32" ? "float32" : dtype === "bf16" ? "bfloat16" : "float16";

  // Image-to-video: the image pipeline class, with the CLIP encoder or (Wan2.2 I2V-A14B) without.
  const imageIndex: Record<string, unknown> = cfg.imageEncoder
    ? I2V_MODEL_INDEX
    : takesImageLatents(cfg.transformer)
      ? I2V_A14B_MODEL_INDEX
      : {};
  await json("model_index.json", {
    _class_name: "WanPipeline",
    _diffusers_version: "0.33.1",
    scheduler: ["diffusers", "UniPCMultistepScheduler"],
    text_encoder: ["transformers", "UMT5EncoderModel"],
    tokenizer: ["transformers", "T5TokenizerFast"],
    transformer: ["diffusers", "WanTransformer3DModel"],
    vae: ["diffusers", "AutoencoderKLWan"],
    ...(cfg.expandTimesteps ? { boundary_ratio: null, expand_timesteps: true } : {}),
    ...(cfg.transformer2
      ? { transformer_2: ["diffusers", "WanTransformer3DModel"], boundary_ratio: cfg.boundaryRatio ?? 0.875 }
      : {}),
    ...imageIndex,
  });
  if (cfg.transformer2)
    await json("transformer_2/config.json", {
      _class_name: "WanTransformer3DModel",
      _diffusers_version: "0.35.0",
      added_kv_proj_dim: null,
      image_dim: null,
      ...cfg.transformer2,
    });
  await json("transformer/config.json", {
    _class_name: "WanTransformer3DModel",
    _diffusers_version: "0.33.1",
    added_kv_proj_dim: null,
    image_dim: null,
    ...cfg.transformer,
  });
  await json("vae/config.json", {
    _class_name: "AutoencoderKLWan",
    _diffusers_version: "0.33.1",
    ...cfg.vae,
  });
  await json("text_encoder/config.json", {
    architectures: ["UMT5EncoderModel"],
    model_type: "umt5",
    is_encoder_decoder: true,
    torch_dtype: torchDtype,
    ...cfg.textEncoder,
  });
  await json("tokenizer/tokenizer.json", buildWordLevelTokenizerJson(DEMO_VOCAB));
  await json("tokenizer/tokenizer_config.json", {
    tokenizer_class: "T5TokenizerFast",
    pad_token: "<pad>",
    eos_token: "</s>",
    unk_token: "<unk>",
    model_max_length: 512,
  });
  await json("scheduler/scheduler_config.json", {
    _class_name: "UniPCMultistepScheduler",
    _diffusers_version: "0.33.1",
    flow_shift: cfg.shift,
    num_train_timesteps: 1000,
    prediction_type: "flow_prediction",
    predict_x0: true,
    solver_order: 2,
    solver_type: "bh2",
    lower_order_final: true,
    use_flow_sigmas: true,
    final_sigmas_type: "zero",
    timestep_spacing: "linspace",
  });
  await json("tessera.json", {
    description: `random weights (${name}, seed ${seed}): a test model that draws noise-like video`,
    defaults: cfg.defaults,
  });

  let bytes = 0;
  bytes += await writeComponent(
    join(dir, "transformer"),
    "diffusion_pytorch_model",
    drawTensors(transformerInits(cfg.transformer), seed, "cpu", dtype),
    progress("transformer"),
  );
  if (cfg.transformer2)
    bytes += await writeComponent(
      join(dir, "transformer_2"),
      "diffusion_pytorch_model",
      drawTensors(transformerInits(cfg.transformer2), seed + 3, "cpu", dtype),
      progress("transformer_2"),
    );
  bytes += await writeComponent(
    join(dir, "vae"),
    "diffusion_pytorch_model",
    drawTensors(vaeInits(cfg.vae), seed + 1, "cpu", "f32"),
    progress("vae"),
  );
  bytes += await writeComponent(
    join(dir, "text_encoder"),
    "model",
    drawTensors(t5Inits(cfg.textEncoder), seed + 2, "cpu", dtype),
    progress("text_encoder"),
  );
  if (cfg.imageEncoder) {
    await writeImageEncoderConfigs(dir, cfg.imageEncoder, torchDtype);
    bytes += await writeComponent(
      join(dir, "image_encoder"),
      "model",
      drawTensors(clipInits(cfg.imageEncoder), seed + 3, "cpu", dtype),
      progress("image_encoder"),
    );
  }
  return { dir, config: name, bytes };
}

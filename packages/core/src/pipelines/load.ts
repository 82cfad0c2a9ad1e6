// Reading a diffusers-layout Wan2.1 text-to-video folder (see model-folder.ts)
// into pipeline components.
import { existsSync } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { Device, type DeviceLike, type DType } from "@tessera/native";
import { umt5ConfigFromJson, umt5ParameterCount } from "../models/t5/config.js";
import { UMT5Encoder } from "../models/t5/encoder.js";
import { BlockOffload } from "../models/wan/block-offload.js";
import {
  parameterCount,
  validateWanConfig,
  WAN21_T2V_1_3B,
  type WanTransformerConfig,
} from "../models/wan/config.js";
import { WanTransformer } from "../models/wan/transformer.js";
import { validateWanVaeConfig, WAN21_VAE, type WanVaeConfig } from "../models/wan-vae/config.js";
import { WanVAE } from "../models/wan-vae/vae.js";
import { schedulerFromConfig } from "../schedulers/index.js";
import { TextTokenizer } from "../tokenizer/tokenizer.js";
import { loadComponentWeights, openDiffusersFolder } from "../weights/diffusers.js";
import { readJsonFile } from "../weights/load.js";
import type { WeightStore } from "../weights/store.js";
import { readSecondExpert } from "./expert-folder.js";
import { type ExpertSwap, needsSwap } from "./experts.js";
import {
  type ImageEncoderInfo,
  loadImageEncoder,
  readImageEncoderInfo,
  WAN_PIPELINE_CLASSES,
} from "./image-encoder-folder.js";
import { estimateMemory } from "./memory-estimate.js";
import { chooseOffload, parseByteSize } from "./offload.js";
import type { GenerationDefaults, LoraSpec } from "./options.js";
import { checkLatentRgbProjection, type LatentRgbProjection } from "./preview.js";
import { CAPTION_STYLES, type CaptionStyle } from "./prompt-style.js";
import { readExpandTimesteps } from "./ti2v.js";
import type { WanPipelineComponents } from "./wan.js";

export class ModelFolderError extends Error {
  override name = "ModelFolderError";
}

export interface LoadPipelineOptions {
  /** Default "cpu". */
  device?: DeviceLike;
  /** Transformer dtype: f32 on the CPU (the only float type its kernels take); default f32 on the CPU, bf16 on CUDA. */
  dtype?: DType;
  /** Text-encoder dtype (default: dtype). */
  textEncoderDtype?: DType;
  /** Put the text encoder elsewhere, e.g. "cpu" to keep umT5-XXL off a small GPU (Wan's --t5_cpu). */
  textEncoderDevice?: DeviceLike;
  /** VAE dtype (default f32, as Wan runs it). */
  vaeDtype?: DType;
  textCacheSize?: number;
  onProgress?: (p: { component: string; loaded: number; total: number }) => void;
  /**
   * LoRAs merged into the transformer once it is loaded: the set every generate()
   * runs with unless it gives its own `loras`.
   */
  loras?: LoraSpec[];
  /** The folder LoRAs given by name are read from (name.safetensors there). */
  loraDir?: string;
  /** Two-expert models: LoRAs merged into the second (low-noise) expert, as `loras` for the first. */
  loras2?: LoraSpec[];
  /**
   * Two-expert models: keep only the running expert on the device, the other in
   * page-locked host memory, swapped at the boundary ("always"), keep both ("never"),
   * or swap only when both do not fit with a run's working memory ("auto", default).
   */
  expertSwap?: ExpertSwap;
  /**
   * Weight offload: keep the transformer blocks' weights in page-locked host memory
   * and copy each block to the device one block ahead of its use (true), keep them
   * resident (false), or offload only when a resident run's estimated peak exceeds
   * `maxGpuMemory` (unset, "auto"). Two-expert models offload both experts' blocks
   * and then need no expert swap.
   */
  offload?: boolean;
  /**
   * A cap on the device's memory, in bytes or as "24GiB": the device refuses to
   * allocate past it (device.setMemoryLimit), and with `offload` unset the model
   * offloads its blocks when a resident run would not fit under it.
   */
  maxGpuMemory?: number | string;
}

/** The load options about weight offload, as the CLI and server declare them. */
export const OFFLOAD_OPTIONS = {
  offload: {
    flag: "--offload",
    description:
      "keep the transformer blocks' weights in host memory and copy each to the GPU one block ahead of its use (default: only when the model does not fit --max-gpu-memory)",
  },
  maxGpuMemory: {
    flag: "--max-gpu-memory",
    value: "SIZE",
    description:
      "cap the GPU memory Tessera allocates (e.g. 24GiB); weights are offloaded when the model would not fit under it",
  },
} as const;

const COMPONENTS = ["transformer", "vae", "text_encoder", "tokenizer"] as const;

function obj(v: unknown, what: string): Record<string, unknown> {
  if (!v || typeof v !== "object" || Array.isArray(v))
    throw new ModelFolderError(`${what}: expected a JSON object`);
  return v as Record<string, unknown>;
}

/** The transformer config from a diffusers transformer/config.json. */
export function wanConfigFromJson(json: unknown, what = "transformer/config.json"): WanTransformerConfig {
  const j = obj(json, what);
  const num = (k: keyof WanTransformerConfig) => {
    const v = j[k];
    if (typeof v !== "number") throw new ModelFolderError(`${what}: field '${k}' is missing or not a number`);
    return v;
  };
  const c: WanTransformerConfig = {
    patch_size: (Array.isArray(j.patch_size) ? j.patch_size : WAN21_T2V_1_3B.patch_size) as [
      number,
      number,
      number,
    ],
    num_attention_heads: num("num_attention_heads"),
    attention_head_dim: num("attention_head_dim"),
    in_channels: num("in_channels"),
    out_channels: num("out_channels"),
    text_dim: num("text_dim"),
    freq_dim: num("freq_dim"),
    ffn_dim: num("ffn_dim"),
    num_layers: num("num_layers"),
    cross_attn_norm: typeof j.cross_attn_norm === "boolean" ? j.cross_attn_norm : true,
    qk_norm: j.qk_norm === null ? null : "rms_norm_across_heads",
    eps: typeof j.eps === "number" ? j.eps : 1e-6,
    rope_max_seq_len: typeof j.rope_max_seq_len === "number" ? j.rope_max_seq_len : 1024,
    // Wan2.1 I2V / FLF2V (image cross-attention; see models/wan/image.ts).
    ...(j.image_dim != null ? { image_dim: j.image_dim as number } : {}),
    ...(j.added_kv_proj_dim != null ? { added_kv_proj_dim: j.added_kv_proj_dim as number } : {}),
    ...(j.pos_embed_seq_len != null ? { pos_embed_seq_len: j.pos_embed_seq_len as number } : {}),
  };
  if (j.qk_norm !== undefined && j.qk_norm !== null && j.qk_norm !== "rms_norm_across_heads")
    throw new ModelFolderError(`${what}: qk_norm ${JSON.stringify(j.qk_norm)} is not supported`);
  try {
    validateWanConfig(c);
  } catch (e) {
    throw new ModelFolderError(`${what}: ${(e as Error).message}`);
  }
  return c;
}

/** The VAE config from a diffusers vae/config.json (absent fields take AutoencoderKLWan's defaults). */
export function wanVaeConfigFromJson(json: unknown, what = "vae/config.json"): WanVaeConfig {
  const j = obj(json, what);
  const pick = <K extends keyof WanVaeConfig>(k: K): WanVaeConfig[K] =>
    (j[k] === undefined ? WAN21_VAE[k] : j[k]) as WanVaeConfig[K];
  const c: WanVaeConfig = {
    base_dim: pick("base_dim"),
    decoder_base_dim: (j.decoder_base_dim ?? null) as number | null,
    z_dim: pick("z_dim"),
    dim_mult: pick("dim_mult"),
    num_res_blocks: pick("num_res_blocks"),
    attn_scales: pick("attn_scales"),
    temperal_downsample: pick("temperal_downsample"),
    dropout: pick("dropout"),
    latents_mean: pick("latents_mean"),
    latents_std: pick("latents_std"),
    ...(typeof j.in_channels === "number" ? { in_channels: j.in_channels } : {}),
    ...(typeof j.out_channels === "number" ? { out_channels: j.out_channels } : {}),
    ...(j.is_residual !== undefined ? { is_residual: j.is_residual as boolean } : {}),
    ...(j.patch_size !== undefined ? { patch_size: j.patch_size as number | null } : {}),
  };
  try {
    validateWanVaeConfig(c);
  } catch (e) {
    throw new ModelFolderError(`${what}: ${(e as Error).message}`);
  }
  return c;
}

/** What a model folder is, without loading weights (for `tessera models` / `info`). */
export interface ModelFolderInfo {
  dir: string;
  className: string;
  transformer: WanTransformerConfig;
  vae: WanVaeConfig;
  textEncoder: ReturnType<typeof umt5ConfigFromJson>;
  scheduler: { name: "unipc" | "euler"; shift: number; numTrainTimesteps: number } | null;
  defaults: Partial<GenerationDefaults>;
  description?: string;
  /** tessera.json: text states are padded to this many tokens (Wan's 512 when absent). */
  textLength?: number;
  /**
   * tessera.json: the caption style the text encoder was trained on. "tessera-world"
   * (the bundled demo model) turns on the prompt rewriter for this model.
   */
  captionStyle?: CaptionStyle;
  /** tessera.json's preview.latentRgb: the latent-to-RGB map of live previews (see preview.ts). */
  previewProjection?: LatentRgbProjection;
  /** model_index.json's expand_timesteps: per-token timesteps (Wan2.2 TI2V; see ti2v.ts). */
  expandTimesteps?: boolean;
  /** Two-expert models (Wan2.2 A14B): the second (low-noise) expert's config. */
  transformer2?: WanTransformerConfig;
  /** With transformer2: model_index.json's boundary_ratio. */
  boundaryRatio?: number;
  /** Image-to-video models (Wan2.1 I2V / FLF2V): the CLIP image encoder and processor configs. */
  image?: ImageEncoderInfo;
}

/** True when `dir` has a model_index.json (a candidate model folder). */
export function looksLikeModelFolder(dir: string): boolean {
  return existsSync(join(dir, "model_index.json"));
}

export async function readModelFolder(dir: string): Promise<ModelFolderInfo> {
  const root = resolve(dir);
  const s = await stat(root).catch(() => null);
  if (!s?.isDirectory()) throw new ModelFolderError(`${dir}: no such model folder`);
  if (!existsSync(join(root, "model_index.json")))
    throw new ModelFolderError(
      `${dir}: not a model folder (no model_index.json); expected the diffusers layout of Wan-AI/Wan2.1-T2V-*-Diffusers`,
    );
  const folder = await openDiffusersFolder(root);
  if (!(WAN_PIPELINE_CLASSES as readonly string[]).includes(folder.pipelineClass))
    throw new ModelFolderError(
      `${join(dir, "model_index.json")}: _class_name is '${folder.pipelineClass}'; only ${WAN_PIPELINE_CLASSES.join(" and ")} (Wan2.1 text- and image-to-video) folders are supported`,
    );
  const component = (name: string) => {
    const c = folder.components.get(name);
    if (!c) throw new ModelFolderError(`${join(dir, "model_index.json")}: the ${name} component is missing`);
    return c;
  };
  for (const c of COMPONENTS) component(c);
  const transformer = wanConfigFromJson(component("transformer").config, component("transformer").configFile);
  let expandTimesteps: boolean;
  try {
    expandTimesteps = readExpandTimesteps(root);
  } catch (e) {
    throw new ModelFolderError((e as Error).message);
  }
  const vae = wanVaeConfigFromJson(component("vae").config, component("vae").configFile);
  const image = readImageEncoderInfo(folder, transformer, (m) => new ModelFolderError(m));
  let textEncoder: ModelFolderInfo["textEncoder"];
  try {
    textEncoder = umt5ConfigFromJson(component("text_encoder").config);
  } catch (e) {
    throw new ModelFolderError(`${component("text_encoder").configFile}: ${(e as Error).message}`);
  }
  let scheduler: ModelFolderInfo["scheduler"] = null;
  const sched = folder.components.get("scheduler");
  if (sched) {
    try {
      scheduler = schedulerFromConfig(sched.config as Record<string, unknown>);
    } catch (e) {
      throw new ModelFolderError(`${sched.configFile}: ${(e as Error).message}`);
    }
  }
  const defaults: Partial<GenerationDefaults> = {};
  let description: string | undefined;
  let textLength: number | undefined;
  let captionStyle: CaptionStyle | undefined;
  let previewProjection: LatentRgbProjection | undefined;
  const extraPath = join(root, "tessera.json");
  if (existsSync(extraPath)) {
    const extra = obj(await readJsonFile(extraPath, "tessera.json"), extraPath);
    const d = extra.defaults === undefined ? {} : obj(extra.defaults, `${extraPath}: defaults`);
    for (const k of ["width", "height", "frames", "steps", "guidance", "shift", "fps"] as const)
      if (typeof d[k] === "number") defaults[k] = d[k] as number;
    if (d.scheduler === "unipc" || d.scheduler === "euler") defaults.scheduler = d.scheduler;
    if (typeof extra.description === "string") description = extra.description;
    if (extra.textLength !== undefined) {
      if (
        !Number.isInteger(extra.textLength) ||
        (extra.textLength as number) < 1 ||
        (extra.textLength as number) > 4096
      )
        throw new ModelFolderError(
          `${extraPath}: textLength must be an integer from 1 to 4096, got ${JSON.stringify(extra.textLength)}`,
        );
      textLength = extra.textLength as number;
    }
    if (extra.captionStyle !== undefined) {
      if (!CAPTION_STYLES.includes(extra.captionStyle as CaptionStyle))
        throw new ModelFolderError(
          `${extraPath}: captionStyle ${JSON.stringify(extra.captionStyle)} is not one of ${CAPTION_STYLES.join(", ")}; remove it for free-text prompts`,
        );
      captionStyle = extra.captionStyle as CaptionStyle;
    }
    const preview = extra.preview as { latentRgb?: unknown } | undefined;
    if (preview?.latentRgb !== undefined) {
      try {
        previewProjection = checkLatentRgbProjection(preview.latentRgb, vae.z_dim, "preview.latentRgb");
      } catch (e) {
        throw new ModelFolderError(`${extraPath}: ${(e as Error).message}`);
      }
    }
  }
  if (scheduler) {
    defaults.scheduler ??= scheduler.name;
    defaults.shift ??= scheduler.shift;
  }
  const second = await readSecondExpert(folder);
  return {
    ...(second ?? {}),
    dir: root,
    className: folder.pipelineClass,
    transformer,
    vae,
    textEncoder,
    scheduler,
    defaults,
    ...(description ? { description } : {}),
    ...(textLength !== undefined ? { textLength } : {}),
    ...(captionStyle !== undefined ? { captionStyle } : {}),
    ...(previewProjection !== undefined ? { previewProjection } : {}),
    ...(expandTimesteps ? { expandTimesteps } : {}),
    ...(image ? { image } : {}),
  };
}

/** Files of one component's weights (for size reports). */
export async function componentWeightFiles(dir: string, component: string): Promise<string[]> {
  const d = join(resolve(dir), component);
  const names = await readdir(d).catch(() => [] as string[]);
  return names.filter((n) => n.endsWith(".safetensors")).map((n) => join(d, n));
}

export async function loadWanComponents(
  dir: string,
  opts: LoadPipelineOptions = {},
): Promise<WanPipelineComponents> {
  const info = await readModelFolder(dir);
  const device = Device.parse(opts.device ?? "cpu");
  const dtype = opts.dtype ?? (device.kind === "cpu" ? "f32" : "bf16");
  const textDevice = Device.parse(opts.textEncoderDevice ?? device);
  const textDtype = opts.textEncoderDtype ?? (textDevice.kind === "cpu" ? "f32" : dtype);
  const vaeDtype = opts.vaeDtype ?? "f32";
  for (const [what, d, t] of [
    ["dtype", device, dtype],
    ["textEncoderDtype", textDevice, textDtype],
    ["vaeDtype", device, vaeDtype],
  ] as const)
    if (d.kind === "cpu" && t !== "f32")
      throw new ModelFolderError(`${what} must be f32 on the CPU, got ${t}`);

  const root = info.dir;
  const stores: WeightStore[] = [];
  const load = async (component: string, d: Device, t: DType) => {
    const s = await loadComponentWeights(root, component, {
      device: d,
      dtype: t,
      onProgress: (p) => opts.onProgress?.({ component, loaded: p.loaded, total: p.total }),
    });
    stores.push(s);
    return s;
  };
  try {
    const tokenizer = await TextTokenizer.fromFile(join(root, "tokenizer", "tokenizer.json"));
    // Weight offload: chosen against the cap from a resident run's estimate at the
    // model's default size; the transformer then loads into host memory and its
    // blocks move to page-locked memory, the rest to the device.
    const cap = opts.maxGpuMemory !== undefined ? parseByteSize(opts.maxGpuMemory) : null;
    if (cap !== null && device.kind === "cuda") device.setMemoryLimit(cap);
    const sizes = {
      width: info.defaults.width ?? 832,
      height: info.defaults.height ?? 480,
      frames: info.defaults.frames ?? 81,
    };
    const resident = estimateMemory({
      transformer: info.transformer,
      vae: info.vae,
      textParams: textDevice.name === device.name ? umt5ParameterCount(info.textEncoder) : 0,
      dtype,
      device: device.kind,
      ...(info.transformer2 ? { transformer2: info.transformer2 } : {}),
      ...sizes,
    });
    const offload = chooseOffload(opts.offload, cap, resident.total);
    const transformer = new WanTransformer(
      info.transformer,
      await load("transformer", offload ? Device.cpu : device, dtype),
    );
    if (offload) {
      const off = new BlockOffload(transformer.weights, info.transformer.num_layers, device);
      await off.adopt();
      transformer.offload = off;
    }
    const vae = new WanVAE(info.vae, await load("vae", device, vaeDtype));
    const textEncoder = new UMT5Encoder(info.textEncoder, await load("text_encoder", textDevice, textDtype));
    // A second expert loads last: onto the device, or (swapping) into host memory.
    let second: Partial<WanPipelineComponents> = {};
    if (info.transformer2) {
      const t2 = info.transformer2;
      const bytes = parameterCount(t2) * (dtype === "f32" ? 4 : 2);
      const work = estimateMemory({
        transformer: t2,
        vae: info.vae,
        textParams: 0,
        dtype,
        device: device.kind,
        ...(info.defaults.width ? { width: info.defaults.width } : { width: 832 }),
        ...(info.defaults.height ? { height: info.defaults.height } : { height: 480 }),
        ...(info.defaults.frames ? { frames: info.defaults.frames } : { frames: 81 }),
      });
      // With offload both experts' blocks are in host memory already: no swap.
      const swap =
        !offload &&
        needsSwap(opts.expertSwap ?? "auto", {
          device,
          expertBytes: bytes,
          workingBytes: Math.max(work.denoise, work.decode),
        });
      const w2 = await load("transformer_2", swap || offload ? Device.cpu : device, dtype);
      const transformer2 = new WanTransformer(t2, w2);
      if (offload) {
        const off = new BlockOffload(w2, t2.num_layers, device);
        await off.adopt();
        transformer2.offload = off;
      }
      second = {
        transformer2,
        boundaryRatio: info.boundaryRatio as number,
        expertSwap: swap,
      };
    }
    const imageEncoder = info.image
      ? await loadImageEncoder(await openDiffusersFolder(root), info.image, device, dtype, (p) =>
          opts.onProgress?.({ component: "image_encoder", loaded: p.loaded, total: p.total }),
        )
      : undefined;
    if (imageEncoder) stores.push(imageEncoder.encoder.weights);
    return {
      ...second,
      transformer,
      vae,
      textEncoder,
      tokenizer,
      modelId: `${root} ${device.name} ${dtype}/${textDtype}`,
      defaults: info.defaults,
      ...(info.textLength !== undefined ? { textLength: info.textLength } : {}),
      ...(info.captionStyle !== undefined ? { captionStyle: info.captionStyle } : {}),
      ...(info.previewProjection !== undefined ? { previewProjection: info.previewProjection } : {}),
      ...(info.expandTimesteps ? { expandTimesteps: true } : {}),
      ...(info.scheduler ? { numTrainTimesteps: info.scheduler.numTrainTimesteps } : {}),
      ...(opts.textCacheSize !== undefined ? { textCacheSize: opts.textCacheSize } : {}),
      ...(opts.loraDir !== undefined ? { loraDir: resolve(opts.loraDir) } : {}),
      ...(imageEncoder ? { imageEncoder } : {}),
    };
  } catch (e) {
    for (const s of stores) s.dispose();
    throw e;
  }
}

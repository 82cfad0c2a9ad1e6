// A LoRA file read against a model: which tensor each of its entries changes (the
// plan, checked before a byte of weights is read, so a LoRA for another model fails
// at once), then its tensors on the host and the deltas it gives at a strength.
//
// Scale of a low-rank pair: strength × alpha / rank, rank the rows of its down
// factor; alpha from the pair's .alpha tensor, else the adapter config (PEFT's
// lora_alpha / alpha_pattern, from the file's lora_adapter_metadata or an
// adapter_config.json beside adapter_model.safetensors; use_rslora divides by √rank
// instead); no alpha anywhere gives strength alone (alpha = rank, as diffusers and
// ComfyUI assume). A bias of the up factor (PEFT's lora_B.bias) takes the pair's scale.
// Full deltas (.diff, .diff_b, .diff_m) scale by the strength alone.
import { existsSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { Tensor } from "@tessera/native";
import { inspectWeights, loadWeights, readJsonFile } from "../load.js";
import { type WeightDelta, WeightError, type WeightStore } from "../store.js";
import {
  moduleNameOf,
  otherFamily,
  type ParsedKey,
  parseLoraKey,
  unsupportedKind,
  WanModuleIndex,
} from "./keys.js";

/** A LoRA that cannot be merged into a model: names the file and the first key at fault. */
export class LoraError extends WeightError {
  override name = "LoraError";
  constructor(
    readonly file: string,
    readonly key: string | null,
    message: string,
  ) {
    super(message);
  }
}

/** The model a LoRA is read against: its tensors' names and shapes. */
export interface LoraTargetModel {
  /** Names the model in messages. */
  label: string;
  shapes: ReadonlyMap<string, readonly number[]>;
  /** Transformer blocks (for names in the original naming). */
  numLayers: number;
}

/** How a file names its tensors (for reports). */
export type LoraNaming = "diffusers" | "comfyui" | "kohya" | "diff";

/** One change a LoRA makes to one model tensor, with the file's keys for it. */
export interface LoraEntry {
  target: string;
  kind: "lowrank" | "full";
  /** lowrank: the down and up factors, and the .alpha tensor if any. */
  down?: string;
  up?: string;
  alpha?: string;
  /** full: the delta; for a bias of the up factor, the pair whose scale it takes. */
  diff?: string;
  pairOf?: string;
}

export interface LoraPlan {
  file: string;
  naming: LoraNaming[];
  entries: LoraEntry[];
}

interface TensorShape {
  shape: readonly number[];
}

const show = (s: readonly number[]) => `[${s.join(", ")}]`;
const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

function namingOf(key: string, k: ParsedKey): LoraNaming {
  if (k.underscored) return "kohya";
  if (k.part === "diff" || k.part === "diffBias" || k.part === "diffModulation") return "diff";
  return /lora_(down|up)|\.lora\./.test(key) ? "comfyui" : "diffusers";
}

/** Why a key matches nothing, in words. */
function unmatched(key: string, k: ParsedKey, index: WanModuleIndex, model: LoraTargetModel): string {
  const family = otherFamily(key);
  if (family) return `is a LoRA key for ${family}, not for the Wan family`;
  const module = moduleNameOf(k);
  const block = /^blocks[._](\d+)[._]/.exec(module);
  if (block && Number(block[1]) >= model.numLayers)
    return `names block ${block[1]}, but ${model.label} has ${model.numLayers} blocks (a LoRA for a larger model?)`;
  if (/(k_img|v_img|norm_k_img|img_emb|add_k_proj|add_v_proj|image_embedder)/.test(module))
    return `changes the image cross-attention of an image-to-video model, which ${model.label} does not have`;
  const t = index.target(k);
  if (t) {
    const what = k.part === "diffBias" || k.part === "upBias" ? "bias" : "weight";
    return `names module '${module}', which has no ${what} in ${model.label}`;
  }
  return `matches no tensor of ${model.label}`;
}

/**
 * Which model tensor each entry of a LoRA changes, checked against the model's names
 * and shapes: every key must be understood and fit (nothing is dropped silently).
 * Throws a LoraError naming the file and the first key at fault.
 */
export function planLora(
  file: string,
  tensors: ReadonlyMap<string, TensorShape>,
  model: LoraTargetModel,
): LoraPlan {
  const fail = (key: string | null, why: string): never => {
    throw new LoraError(file, key, `${file}: ${key === null ? "" : `'${key}' `}${why}`);
  };
  if (tensors.size === 0) fail(null, "holds no tensors; it is not a LoRA");
  const index = new WanModuleIndex(model.shapes.keys(), model.numLayers);
  const naming = new Set<LoraNaming>();
  // target tensor -> its pair's keys, or its full delta
  const pairs = new Map<string, { down?: string; up?: string; alpha?: string }>();
  const fulls = new Map<string, { diff: string; pairOf?: string }>();
  const taken = new Map<string, string>();
  for (const key of tensors.keys()) {
    const kind = unsupportedKind(key);
    if (kind) fail(key, `is part of a ${kind} adapter; only plain LoRA pairs and full deltas can be merged`);
    const k = parseLoraKey(key);
    if (!k) {
      const family = otherFamily(key);
      fail(
        key,
        family
          ? `is a LoRA key for ${family}, not for the Wan family`
          : "is not a LoRA tensor (lora_down/lora_up, lora_A/lora_B, alpha, diff, diff_b or diff_m)",
      );
    }
    const p = k as ParsedKey;
    const target = index.tensorFor(p);
    if (target === undefined) fail(key, unmatched(key, p, index, model));
    const t = target as string;
    naming.add(namingOf(key, p));
    const slot = `${t}\u0000${p.part}`;
    const before = taken.get(slot);
    if (before !== undefined) fail(key, `changes ${t} as '${before}' already does`);
    taken.set(slot, key);
    if (p.part === "down" || p.part === "up" || p.part === "alpha") {
      const e = pairs.get(t) ?? {};
      e[p.part] = key;
      pairs.set(t, e);
    } else if (p.part === "upBias") {
      const weight = index.target(p)?.weight;
      fulls.set(t, { diff: key, ...(weight ? { pairOf: weight } : {}) });
    } else fulls.set(t, { diff: key });
  }

  const shapeOf = (key: string) => (tensors.get(key) as TensorShape).shape;
  const entries: LoraEntry[] = [];
  for (const [target, e] of pairs) {
    const w = model.shapes.get(target) as readonly number[];
    if (!e.down || !e.up)
      fail(
        (e.down ?? e.up ?? e.alpha) as string,
        e.alpha && !e.down && !e.up
          ? `is an alpha without the lora_down/lora_up pair it scales`
          : `has no matching ${e.down ? "lora_up (lora_B)" : "lora_down (lora_A)"} tensor`,
      );
    const down = shapeOf(e.down as string);
    const up = shapeOf(e.up as string);
    const [out, r, ...ones] = up;
    const [r2, ...inDims] = down;
    const rest = w.slice(1);
    if (
      out !== w[0] ||
      r === undefined ||
      r !== r2 ||
      ones.some((x) => x !== 1) ||
      inDims.length === 0 ||
      numel(inDims) !== numel(rest)
    )
      fail(
        e.down as string,
        `${show(down)} with '${e.up}' ${show(up)} does not fit ${target} ${show(w)} of ${model.label} (a LoRA for another size of model?)`,
      );
    if (e.alpha && numel(shapeOf(e.alpha)) !== 1)
      fail(e.alpha, `must hold one number, but has shape ${show(shapeOf(e.alpha))}`);
    entries.push({
      target,
      kind: "lowrank",
      down: e.down as string,
      up: e.up as string,
      ...(e.alpha ? { alpha: e.alpha } : {}),
    });
  }
  for (const [target, f] of fulls) {
    const w = model.shapes.get(target) as readonly number[];
    const s = shapeOf(f.diff);
    if (s.join() !== w.join())
      fail(
        f.diff,
        `${show(s)} does not fit ${target} ${show(w)} of ${model.label} (a LoRA for another size of model?)`,
      );
    entries.push({ target, kind: "full", diff: f.diff, ...(f.pairOf ? { pairOf: f.pairOf } : {}) });
  }
  return { file, naming: [...naming].sort(), entries };
}

/**
 * Reads a LoRA file's tensor names and shapes (not its data) and plans it against
 * `model`: what a command runs to check a LoRA before it loads any weight.
 */
export async function planLoraFile(
  file: string,
  model: LoraTargetModel,
): Promise<{ plan: LoraPlan; metadata: Readonly<Record<string, string>> }> {
  if (!file.endsWith(".safetensors"))
    throw new LoraError(file, null, `${file}: a LoRA must be a .safetensors file`);
  const inv = await inspectWeights(file).catch((e: unknown) => {
    throw new LoraError(file, null, (e as Error).message);
  });
  const plan = planLora(inv.label, new Map([...inv.tensors].map(([k, v]) => [k, v.info])), model);
  return { plan, metadata: inv.metadata.get(inv.files[0] as string) ?? {} };
}

/** PEFT's LoraConfig fields that set the scale. */
export interface AdapterConfig {
  r?: number;
  lora_alpha?: number;
  alpha_pattern?: Record<string, number>;
  use_rslora?: boolean;
}

/** The adapter config a PEFT / diffusers LoRA file carries (its metadata, or adapter_config.json beside it). */
async function adapterConfig(
  file: string,
  metadata: Readonly<Record<string, string>>,
): Promise<AdapterConfig | null> {
  let raw: unknown = null;
  const text = metadata.lora_adapter_metadata;
  if (text !== undefined) {
    try {
      raw = JSON.parse(text);
    } catch {
      throw new LoraError(file, null, `${file}: its lora_adapter_metadata is not valid JSON`);
    }
  } else {
    const beside = join(dirname(file), "adapter_config.json");
    if (basename(file) === "adapter_model.safetensors" && existsSync(beside))
      raw = await readJsonFile(beside, "PEFT adapter config");
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) return null;
  // diffusers prefixes the transformer's config with "transformer." in a pipeline's file.
  const o: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) o[k.replace(/^transformer\./, "")] = v;
  if (o.use_dora === true)
    throw new LoraError(file, null, `${file}: a DoRA adapter (use_dora); only plain LoRA can be merged`);
  const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : undefined);
  const pattern: Record<string, number> = {};
  if (o.alpha_pattern && typeof o.alpha_pattern === "object")
    for (const [k, v] of Object.entries(o.alpha_pattern as Record<string, unknown>)) {
      const n = num(v);
      if (n !== undefined) pattern[k] = n;
    }
  const r = num(o.r);
  const alpha = num(o.lora_alpha);
  return {
    ...(r !== undefined ? { r } : {}),
    ...(alpha !== undefined ? { lora_alpha: alpha } : {}),
    alpha_pattern: pattern,
    use_rslora: o.use_rslora === true,
  };
}

/** PEFT's pattern match: the pattern names the module or a dotted suffix of it. */
function patternAlpha(c: AdapterConfig, module: string): number | undefined {
  for (const [p, v] of Object.entries(c.alpha_pattern ?? {})) {
    let re: RegExp;
    try {
      re = new RegExp(`^(.*\\.)?(?:${p})$`);
    } catch {
      continue;
    }
    if (re.test(module)) return v;
  }
  return undefined;
}

/** A LoRA read for one model: its tensors on the host, ready to give deltas at any strength. */
export class LoraAdapter {
  /** alpha / rank (or alpha / √rank) of each pair's target; 1 where there is no alpha. */
  readonly #factor = new Map<string, number>();

  private constructor(
    readonly plan: LoraPlan,
    readonly tensors: WeightStore,
    alphas: ReadonlyMap<string, number>,
    config: AdapterConfig | null,
  ) {
    for (const e of plan.entries) {
      if (e.kind !== "lowrank") continue;
      const rank = (tensors.get(e.down as string).shape[0] as number) || 1;
      const module = (parseLoraKey(e.down as string) as ParsedKey).module;
      const alpha =
        (e.alpha !== undefined ? alphas.get(e.alpha) : undefined) ??
        (config ? (patternAlpha(config, module) ?? config.lora_alpha) : undefined);
      const factor = alpha === undefined ? 1 : alpha / (config?.use_rslora ? Math.sqrt(rank) : rank);
      this.#factor.set(e.target, factor);
    }
  }

  get file(): string {
    return this.plan.file;
  }

  /** Reads `file` against `model`: the plan first (no tensor data read), then the tensors onto the host. */
  static async load(file: string, model: LoraTargetModel): Promise<LoraAdapter> {
    const { plan, metadata } = await planLoraFile(file, model);
    const config = await adapterConfig(plan.file, metadata);
    const used = new Set<string>();
    for (const e of plan.entries) for (const k of [e.down, e.up, e.alpha, e.diff]) if (k) used.add(k);
    const tensors = await loadWeights(file, { device: "cpu", filter: (n) => used.has(n) });
    try {
      const alphas = new Map<string, number>();
      for (const e of plan.entries)
        if (e.alpha) {
          const v = (await tensors.get(e.alpha).toFloat32Array())[0] as number;
          if (!Number.isFinite(v))
            throw new LoraError(file, e.alpha, `${file}: '${e.alpha}' is not a finite number`);
          alphas.set(e.alpha, v);
        }
      return new LoraAdapter(plan, tensors, alphas, config);
    } catch (e) {
      tensors.dispose();
      throw e;
    }
  }

  /** The scale of the pair changing `target` per unit of strength (alpha / rank, or 1). */
  factor(target: string): number {
    return this.#factor.get(target) ?? 1;
  }

  /** Each changed tensor's deltas at `strength` (tensors on the host, owned by this adapter). */
  deltas(strength: number): Map<string, WeightDelta[]> {
    const out = new Map<string, WeightDelta[]>();
    const push = (t: string, d: WeightDelta) => out.set(t, [...(out.get(t) ?? []), d]);
    for (const e of this.plan.entries) {
      if (e.kind === "lowrank")
        push(e.target, {
          kind: "lowrank",
          up: this.tensors.get(e.up as string),
          down: this.tensors.get(e.down as string),
          scale: strength * this.factor(e.target),
        });
      else {
        const diff: Tensor = this.tensors.get(e.diff as string);
        const scale = strength * (e.pairOf ? this.factor(e.pairOf) : 1);
        push(e.target, { kind: "full", diff, scale });
      }
    }
    return out;
  }

  dispose(): void {
    this.tensors.dispose();
  }
}

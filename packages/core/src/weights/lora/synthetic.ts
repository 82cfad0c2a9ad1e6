// Random LoRA files for a model, in any of the namings a Wan LoRA comes in: for tests
// and for trying the LoRA surfaces (CLI, server) without a downloaded LoRA. The
// factors are returned too, so a test can build the merged weights by hand.

import { Tensor } from "@tessera/native";
import { type TensorToWrite, writeSafetensors } from "../safetensors.js";
import { wanTransformerKeyMap, wanTransformerOriginalNames } from "../single-file.js";
import { WeightStore } from "../store.js";
import type { LoraNaming, LoraTargetModel } from "./adapter.js";

export interface SyntheticLoraOptions {
  naming: LoraNaming;
  /** Model tensors (our names) to change: weights get a low-rank pair (a full delta in the "diff" naming), biases and 1-D / modulation tensors a full delta. */
  targets: readonly string[];
  rank?: number;
  /** Written as .alpha tensors ("comfyui", "kohya") or the adapter metadata ("diffusers"); none: scale = strength. */
  alpha?: number;
  seed?: number;
  /** Standard deviation of the factors' values (default 0.1). */
  std?: number;
}

/** One change the file makes, in f32 values as written. */
export type SyntheticEntry =
  | {
      target: string;
      kind: "lowrank";
      up: Float32Array;
      upShape: number[];
      down: Float32Array;
      downShape: number[];
      factor: number;
    }
  | { target: string; kind: "full"; diff: Float32Array; shape: number[] };

/** Our tensor name → its name in Wan-AI's original naming (the single-file table read backwards). */
function originalNames(model: LoraTargetModel): Map<string, string> {
  const out = new Map<string, string>();
  for (const o of wanTransformerOriginalNames(model.numLayers)) {
    const d = wanTransformerKeyMap(o);
    if (d !== null && model.shapes.has(d) && !out.has(d)) out.set(d, o);
  }
  return out;
}

function normals(n: number, seed: number, std: number): Float32Array {
  // mulberry32 + Box-Muller: small, deterministic, and the same on every platform.
  let s = seed >>> 0;
  const u = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++)
    out[i] = std * Math.sqrt(-2 * Math.log(u() + 1e-12)) * Math.cos(2 * Math.PI * u());
  return out;
}

const f32 = (shape: number[], data: Float32Array): TensorToWrite => ({ dtype: "F32", shape, data });

/** Writes a random LoRA for `model` to `file` and returns what it holds. */
export async function writeSyntheticLora(
  file: string,
  model: LoraTargetModel,
  o: SyntheticLoraOptions,
): Promise<SyntheticEntry[]> {
  const rank = o.rank ?? 4;
  const std = o.std ?? 0.1;
  const orig = originalNames(model);
  const tensors: Record<string, TensorToWrite> = {};
  const entries: SyntheticEntry[] = [];
  let seed = o.seed ?? 1;
  for (const target of o.targets) {
    const shape = model.shapes.get(target);
    if (!shape) throw new Error(`writeSyntheticLora: ${model.label} has no tensor '${target}'`);
    const m = /^(.*)\.(weight|bias)$/.exec(target);
    const isWeight = m?.[2] === "weight" && shape.length >= 2;
    const original = orig.get(target);
    const originalModule = original?.replace(/\.(weight|bias)$/, "");
    const ours = m ? (m[1] as string) : target;
    if (isWeight && o.naming !== "diff") {
      const inDims = shape.slice(1);
      const downShape = [rank, ...inDims];
      const upShape = [shape[0] as number, rank, ...inDims.slice(1).map(() => 1)];
      const down = normals(
        downShape.reduce((a, b) => a * b, 1),
        seed++,
        std,
      );
      const up = normals(
        upShape.reduce((a, b) => a * b, 1),
        seed++,
        std,
      );
      let base: string;
      let names: [string, string];
      if (o.naming === "diffusers") {
        base = `transformer.${ours}`;
        names = [`${base}.lora_A.weight`, `${base}.lora_B.weight`];
      } else {
        if (!originalModule)
          throw new Error(`writeSyntheticLora: '${target}' has no name in Wan-AI's naming`);
        base =
          o.naming === "kohya"
            ? `lora_unet_${originalModule.replaceAll(".", "_")}`
            : `diffusion_model.${originalModule}`;
        names = [`${base}.lora_down.weight`, `${base}.lora_up.weight`];
      }
      tensors[names[0]] = f32(downShape, down);
      tensors[names[1]] = f32(upShape, up);
      if (o.alpha !== undefined && o.naming !== "diffusers")
        tensors[`${base}.alpha`] = f32([], new Float32Array([o.alpha]));
      entries.push({
        target,
        kind: "lowrank",
        up,
        upShape,
        down,
        downShape,
        factor: o.alpha === undefined ? 1 : o.alpha / rank,
      });
      continue;
    }
    // A full delta: the weight itself (.diff), a bias (.diff_b), or a parameter (modulation).
    const diff = normals(
      shape.reduce((a, b) => a * b, 1),
      seed++,
      std,
    );
    const isBias = m?.[2] === "bias";
    let key: string;
    if (o.naming === "kohya" || o.naming === "diffusers") {
      const mod = originalModule ?? ours;
      key = `${o.naming === "kohya" ? `lora_unet_${mod.replaceAll(".", "_")}` : `diffusion_model.${mod}`}.${isBias ? "diff_b" : "diff"}`;
    } else key = `diffusion_model.${originalModule ?? ours}.${isBias ? "diff_b" : "diff"}`;
    tensors[key] = f32([...shape], diff);
    entries.push({ target, kind: "full", diff, shape: [...shape] });
  }
  const metadata: Record<string, string> = { format: "pt" };
  if (o.naming === "diffusers" && o.alpha !== undefined)
    metadata.lora_adapter_metadata = JSON.stringify({ r: rank, lora_alpha: o.alpha });
  await writeSafetensors(file, tensors, metadata);
  return entries;
}

/**
 * A copy of `store` (f32, on the CPU) with each LoRA's entries added at its strength
 * by hand: W + strength·factor·up@down in float64, rounded to f32 once. What a merge
 * should give, computed without the engine's ops.
 */
export async function mergedByHand(
  store: WeightStore,
  loras: readonly { entries: readonly SyntheticEntry[]; strength: number }[],
): Promise<WeightStore> {
  const out = new WeightStore("merged by hand");
  for (const name of store.names()) {
    const t = store.get(name);
    const w = Float64Array.from(await t.toFloat32Array());
    for (const { entries, strength } of loras)
      for (const e of entries) {
        if (e.target !== name) continue;
        if (e.kind === "full") {
          for (let i = 0; i < w.length; i++) w[i] = (w[i] as number) + strength * (e.diff[i] as number);
          continue;
        }
        const r = e.downShape[0] as number;
        const rows = e.upShape[0] as number;
        const cols = w.length / rows;
        const s = strength * e.factor;
        for (let o = 0; o < rows; o++)
          for (let i = 0; i < cols; i++) {
            let acc = 0;
            for (let k = 0; k < r; k++) acc += (e.up[o * r + k] as number) * (e.down[k * cols + i] as number);
            w[o * cols + i] = (w[o * cols + i] as number) + s * acc;
          }
      }
    out.set(name, Tensor.from(Float32Array.from(w), t.shape));
  }
  return out;
}

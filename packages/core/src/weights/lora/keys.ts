// The tensor names of Wan LoRA files, and which model tensor each one changes.
//
// The namings in use (all of a file share one, but nothing here assumes so):
//   diffusers / PEFT  transformer.blocks.0.attn1.to_q.lora_A.weight, .lora_B.weight
//                     (also unprefixed, or under PEFT's base_model.model.; .lora_B.bias
//                     is a bias delta, as diffusers stores a .diff_b); the alpha, when
//                     there is one, is a .alpha tensor or the adapter config (adapter.ts)
//   ComfyUI / lightx2v  diffusion_model.blocks.0.self_attn.q.lora_down.weight, .lora_up.weight,
//                     .alpha — Wan-AI's original module names
//   Kohya / musubi    lora_unet_blocks_0_self_attn_q.lora_down.weight (the same names with
//                     the dots made underscores)
//   full deltas       <module>.diff (the weight, or the parameter itself: modulation),
//                     <module>.diff_b (the bias), <block>.diff_m (its modulation, lightx2v)
// The original names are turned into ours by single-file.ts's table (the one the
// single-file checkpoint loader uses), read both ways.
import { wanTransformerKeyMap, wanTransformerOriginalNames } from "../single-file.js";

/** What a LoRA tensor is to its module. */
export type LoraPart = "down" | "up" | "alpha" | "diff" | "diffBias" | "diffModulation" | "upBias";

const PARTS: readonly [RegExp, LoraPart][] = [
  [/\.(?:lora_down|lora_A)(?:\.default)?\.weight$/, "down"],
  [/\.(?:lora_up|lora_B)(?:\.default)?\.weight$/, "up"],
  [/\.lora\.down\.weight$/, "down"],
  [/\.lora\.up\.weight$/, "up"],
  [/\.lora_B(?:\.default)?\.bias$/, "upBias"],
  [/\.alpha$/, "alpha"],
  [/\.diff$/, "diff"],
  [/\.diff_b$/, "diffBias"],
  [/\.diff_m$/, "diffModulation"],
];

// Adapter kinds that are not a plain low-rank pair or a delta (LyCORIS, DoRA, LoCon's mid).
const UNSUPPORTED =
  /\.(lora_mid|dora_scale|lora_magnitude_vector|hada_w[12]_[ab]|hada_t[12]|lokr_w[12](_[ab])?|lokr_t2|oft_blocks|oft_diag|w_norm|b_norm)(\.|$)/;

const PREFIXES = ["base_model.model.", "model.diffusion_model.", "diffusion_model.", "transformer."];

export interface ParsedKey {
  /** The module path, prefixes removed, in whichever naming the file uses. */
  module: string;
  part: LoraPart;
  /** Kohya's lora_unet_… spelling (the module still has its underscores). */
  underscored: boolean;
}

/** The module and part of a LoRA tensor name, or null when it is not one of the kinds above. */
export function parseLoraKey(key: string): ParsedKey | null {
  for (const [re, part] of PARTS) {
    const m = re.exec(key);
    if (!m) continue;
    let module = key.slice(0, m.index);
    if (module.startsWith("lora_unet_")) return { module: module.slice(10), part, underscored: true };
    for (const p of PREFIXES)
      if (module.startsWith(p)) {
        module = module.slice(p.length);
        break;
      }
    return { module, part, underscored: false };
  }
  return null;
}

/** A LoRA kind Tessera does not merge, named for the message, or null. */
export function unsupportedKind(key: string): string | null {
  const m = UNSUPPORTED.exec(key);
  if (!m) return null;
  const k = m[1] as string;
  if (k === "dora_scale" || k === "lora_magnitude_vector") return "DoRA";
  if (k === "lora_mid") return "LoCon with a mid weight (Tucker)";
  if (k.startsWith("hada")) return "LoHa";
  if (k.startsWith("lokr")) return "LoKr";
  if (k.startsWith("oft")) return "OFT";
  return "LyCORIS";
}

// Key prefixes of LoRAs for other model families, for a message that says so.
const OTHER_FAMILIES: readonly [RegExp, string][] = [
  [/^lora_te[12]?_/, "Stable Diffusion / SDXL (a text-encoder LoRA)"],
  [
    /^lora_unet_(down_blocks|up_blocks|mid_block|input_blocks|output_blocks|middle_block)_/,
    "Stable Diffusion / SDXL",
  ],
  [/^(unet|text_encoder|text_encoder_2)\./, "Stable Diffusion / SDXL"],
  [/(^|[._])(double_blocks|single_blocks)[._]/, "Flux"],
  [/(^|\.)(single_transformer_blocks|context_embedder|x_embedder)\./, "Flux / SD3"],
  [/(^|\.)transformer_blocks\./, "another DiT (Flux, SD3, CogVideoX, LTX-Video, HunyuanVideo)"],
  [/(^|\.)(layers|noise_refiner|context_refiner)\.\d+\./, "Lumina / Z-Image"],
];

/** The family a LoRA key belongs to when it is plainly not Wan's, or null. */
export function otherFamily(key: string): string | null {
  for (const [re, family] of OTHER_FAMILIES) if (re.test(key)) return family;
  return null;
}

/** The model tensors a module name can change. */
export interface ModuleTarget {
  weight?: string;
  bias?: string;
  /** A parameter that is a module of its own (modulation: scale_shift_table). */
  param?: string;
}

/**
 * Module names (ours and Wan-AI's, dotted and underscored) → the tensors of this model
 * they name. Built from the model's own tensor names, so a name resolves only to a
 * tensor the model has.
 */
export class WanModuleIndex {
  readonly #dotted = new Map<string, ModuleTarget>();
  readonly #underscored = new Map<string, string | null>();

  constructor(modelNames: Iterable<string>, numLayers: number) {
    const has = new Set(modelNames);
    const addName = (name: string, target: string) => {
      const m = /^(.*)\.(weight|bias)$/.exec(name);
      const module = m ? (m[1] as string) : name;
      const t = this.#dotted.get(module) ?? {};
      if (!m) t.param = target;
      else if (m[2] === "weight") t.weight = target;
      else t.bias = target;
      this.#dotted.set(module, t);
    };
    for (const n of has) addName(n, n);
    for (const o of wanTransformerOriginalNames(numLayers)) {
      const d = wanTransformerKeyMap(o);
      if (d !== null && has.has(d)) addName(o, d);
    }
    for (const module of this.#dotted.keys()) {
      const u = module.replaceAll(".", "_");
      // Two modules that underscore alike would be ambiguous; neither is matched then.
      this.#underscored.set(
        u,
        this.#underscored.has(u) && this.#underscored.get(u) !== module ? null : module,
      );
    }
  }

  /** The tensors a parsed key's module names, or undefined when the model has no such module. */
  target(k: Pick<ParsedKey, "module" | "underscored">): ModuleTarget | undefined {
    const module = k.underscored ? this.#underscored.get(k.module) : k.module;
    return module ? this.#dotted.get(module) : undefined;
  }

  /** The model tensor a part of the module changes (undefined when it has none). */
  tensorFor(k: ParsedKey): string | undefined {
    const t = k.part === "diffModulation" ? this.target({ ...k, module: modulationOf(k) }) : this.target(k);
    if (!t) return undefined;
    switch (k.part) {
      case "down":
      case "up":
      case "alpha":
        return t.weight;
      case "diff":
      case "diffModulation":
        return t.weight ?? t.param;
      case "diffBias":
      case "upBias":
        return t.bias;
    }
  }
}

function modulationOf(k: ParsedKey): string {
  return k.underscored ? `${k.module}_modulation` : `${k.module}.modulation`;
}

/** The module name a diff_m key refers to (for messages). */
export function moduleNameOf(k: ParsedKey): string {
  return k.part === "diffModulation" ? modulationOf(k) : k.module;
}

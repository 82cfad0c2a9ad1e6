// Which member of the Wan family a model folder is, from its configs alone (no
// weights read), so `tessera models` and `tessera info` can name it the way people
// know it ("Wan2.1 T2V-14B", "Wan2.2 I2V-A14B") — and name it even for a folder this
// build cannot load yet, which is usually why someone is looking.
//
// What tells the members apart (diffusers layouts of the Wan-AI releases):
//   Wan2.1 T2V      transformer in_channels 16, no image conditioning
//   Wan2.1 I2V      in_channels 36 (noise 16 + mask 4 + image latents 16), image_dim
//                   (CLIP tokens, image_encoder/ beside it), no pos_embed_seq_len
//   Wan2.1 FLF2V    as I2V, plus pos_embed_seq_len (CLIP tokens of two frames: 2 × 257)
//   Wan2.2 T2V-A14B two experts (transformer_2, boundary_ratio), in_channels 16
//   Wan2.2 I2V-A14B two experts, in_channels 36, no CLIP (image_dim null)
//   Wan2.2 TI2V-5B  the Wan2.2 VAE (z_dim 48, is_residual), in_channels 48
// The size follows from the transformer's width (heads × head dim): 1536 is the 1.3B,
// 5120 the 14B (and each A14B expert), 3072 the 5B.
//
// This module only detects and names; loading each member is the pipeline's business.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";

export type WanFamilyName =
  | "Wan2.1 T2V"
  | "Wan2.1 I2V"
  | "Wan2.1 FLF2V"
  | "Wan2.2 T2V-A14B"
  | "Wan2.2 I2V-A14B"
  | "Wan2.2 TI2V-5B";

export interface WanFamily {
  /** The family, as the releases name it ("Wan2.1 I2V", "Wan2.2 TI2V-5B"). */
  family: WanFamilyName;
  /** The family with its size: "Wan2.1 T2V-14B"; "Wan2.1 T2V (dim 48)" for a width no release has. */
  name: string;
  /** "1.3B", "14B", "5B" where the width is a release's; null otherwise. */
  size: string | null;
  version: "2.1" | "2.2";
  /** What it conditions on: text, an image through CLIP + latents, first and last frames, or a known first frame (TI2V). */
  task: "t2v" | "i2v" | "flf2v" | "ti2v";
  /** Transformers that share the denoising (2 for A14B). */
  experts: 1 | 2;
  /** The transformer's width (heads × head dim). */
  dim: number | null;
}

/** What the configs of a folder say (parsed JSON; absent parts undefined). */
export interface WanFolderFacts {
  modelIndex?: Record<string, unknown>;
  transformer?: Record<string, unknown>;
  vae?: Record<string, unknown>;
  /** A transformer_2/ folder (or its config) is present. */
  hasTransformer2?: boolean;
  /** An image_encoder/ folder is present. */
  hasImageEncoder?: boolean;
}

const SIZES: Record<number, string> = { 1536: "1.3B", 5120: "14B", 3072: "5B" };

const num = (x: unknown): number | null => (typeof x === "number" && Number.isFinite(x) ? x : null);
const present = (x: unknown) => x !== undefined && x !== null;

// A component entry of model_index.json that is set: ["diffusers", "WanTransformer3DModel"], not [null, null].
function indexHas(index: Record<string, unknown> | undefined, key: string): boolean {
  const v = index?.[key];
  return Array.isArray(v) ? v.some((x) => x !== null) : present(v);
}

/** The Wan family member the configs describe, or null when they do not look like one. */
export function wanFamily(f: WanFolderFacts): WanFamily | null {
  const t = f.transformer;
  if (!t) return null;
  const inCh = num(t.in_channels);
  const heads = num(t.num_attention_heads);
  const headDim = num(t.attention_head_dim);
  const dim = heads !== null && headDim !== null ? heads * headDim : null;
  const index = f.modelIndex;
  const experts: 1 | 2 =
    f.hasTransformer2 || indexHas(index, "transformer_2") || num(index?.boundary_ratio) !== null ? 2 : 1;
  const wan22Vae = num(f.vae?.z_dim) === 48 || f.vae?.is_residual === true;
  const clip = present(t.image_dim) || present(t.added_kv_proj_dim) || f.hasImageEncoder === true;
  const imageClass = index?._class_name === "WanImageToVideoPipeline";

  let family: WanFamilyName;
  if (inCh === 48 || (wan22Vae && experts === 1)) family = "Wan2.2 TI2V-5B";
  else if (experts === 2) family = inCh === 36 || imageClass ? "Wan2.2 I2V-A14B" : "Wan2.2 T2V-A14B";
  else if (inCh === 36 || clip || imageClass)
    family = present(t.pos_embed_seq_len) ? "Wan2.1 FLF2V" : "Wan2.1 I2V";
  else if (inCh === 16) family = "Wan2.1 T2V";
  else if (inCh !== null && num(f.vae?.z_dim) === inCh)
    family = "Wan2.1 T2V"; // a small member whose VAE has fewer latent channels (the random "tiny" model)
  else return null;

  const version = family.startsWith("Wan2.2") ? "2.2" : "2.1";
  const task = family.includes("TI2V")
    ? "ti2v"
    : family.includes("FLF2V")
      ? "flf2v"
      : family.includes("I2V")
        ? "i2v"
        : "t2v";
  // A14B and 5B carry their size in the family's name; the others get it appended.
  const builtIn = family.endsWith("A14B") ? "14B" : family.endsWith("5B") ? "5B" : null;
  const size = dim !== null ? (SIZES[dim] ?? null) : null;
  let name: string;
  if (builtIn) name = size === builtIn ? family : `${family} geometry${dim !== null ? ` (dim ${dim})` : ""}`;
  else name = size ? `${family}-${size}` : `${family}${dim !== null ? ` (dim ${dim})` : ""}`;
  return { family, name, size, version, task, experts, dim };
}

async function readJson(path: string): Promise<Record<string, unknown> | undefined> {
  try {
    const v: unknown = JSON.parse(await readFile(path, "utf8"));
    return typeof v === "object" && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** The facts wanFamily() reads, from a diffusers-layout folder (missing or unreadable files are left out). */
export async function readWanFolderFacts(dir: string): Promise<WanFolderFacts> {
  const [modelIndex, transformer, vae] = await Promise.all([
    readJson(join(dir, "model_index.json")),
    readJson(join(dir, "transformer", "config.json")),
    readJson(join(dir, "vae", "config.json")),
  ]);
  return {
    ...(modelIndex ? { modelIndex } : {}),
    ...(transformer ? { transformer } : {}),
    ...(vae ? { vae } : {}),
    hasTransformer2: existsSync(join(dir, "transformer_2", "config.json")),
    hasImageEncoder: existsSync(join(dir, "image_encoder")),
  };
}

/** The Wan family member a model folder holds, from its configs, or null. */
export async function detectWanFamily(dir: string): Promise<WanFamily | null> {
  return wanFamily(await readWanFolderFacts(dir));
}

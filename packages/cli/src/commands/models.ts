// `tessera models [PATH...]`: the model folders under $TESSERA_MODELS (or
// ./models) and any given paths, with what each is. A folder that fails to read
// is listed with its error rather than hidden, since that is usually why someone
// is looking.
import { readdir, stat } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import {
  componentWeightFiles,
  DEMO_MODEL_DIR,
  detectWanFamily,
  hasDemoModel,
  looksLikeModelFolder,
  parameterCount,
  readModelFolder,
} from "@tessera/core";
import { type Flags, readFlags } from "../flags.js";
import type { CommandHelp } from "../help.js";
import { DEMO_MODEL_NAME, formatBytes, formatCount, modelRoots } from "./model-args.js";

export interface ModelListing {
  name: string;
  path: string;
  ok: boolean;
  error?: string;
  /** The Wan family member, from the configs ("Wan2.1 T2V-14B"), also for a folder that does not load. */
  family?: string;
  description?: string;
  transformer?: { layers: number; dim: number; parameters: number };
  bytes?: number;
}

async function isDir(p: string): Promise<boolean> {
  return stat(p).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

async function describe(path: string): Promise<ModelListing> {
  const listing = await describeFolder(path);
  const family = await detectWanFamily(path).catch(() => null);
  return family ? { ...listing, family: family.name } : listing;
}

async function describeFolder(path: string): Promise<ModelListing> {
  const name = basename(path);
  try {
    const info = await readModelFolder(path);
    let bytes = 0;
    for (const c of ["transformer", "vae", "text_encoder"])
      for (const f of await componentWeightFiles(path, c)) bytes += (await stat(f)).size;
    return {
      name,
      path,
      ok: true,
      ...(info.description ? { description: info.description } : {}),
      transformer: {
        layers: info.transformer.num_layers,
        dim: info.transformer.num_attention_heads * info.transformer.attention_head_dim,
        parameters: parameterCount(info.transformer),
      },
      bytes,
    };
  } catch (e) {
    return { name, path, ok: false, error: (e as Error).message };
  }
}

/** Model folders at `root` itself or one level below it. */
export async function findModels(root: string): Promise<string[]> {
  const dir = resolve(root);
  if (!(await isDir(dir))) return [];
  if (looksLikeModelFolder(dir)) return [dir];
  const found: string[] = [];
  for (const e of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name)))
    if (e.isDirectory() && looksLikeModelFolder(join(dir, e.name))) found.push(join(dir, e.name));
  return found;
}

const FLAGS = {
  json: { kind: "boolean", description: "print the model folders as JSON" },
} as const satisfies Flags;

export const MODELS_HELP: CommandHelp = {
  usage: ["models [PATH...] [--json]"],
  summary:
    "List the model folders under $TESSERA_MODELS (a path list; default ./models), the PATHs given, and the bundled demo model.",
  flags: FLAGS,
};

export async function modelsCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = readFlags(argv, FLAGS);
  const roots = [...modelRoots(), ...positionals];
  const seen = new Set<string>();
  const list: ModelListing[] = [];
  for (const root of roots)
    for (const p of await findModels(root)) {
      if (seen.has(p)) continue;
      seen.add(p);
      list.push(await describe(p));
    }
  // The bundled demo model is always there (and is what --model defaults to).
  if (hasDemoModel() && !seen.has(DEMO_MODEL_DIR)) {
    const demo = await describe(DEMO_MODEL_DIR);
    list.push({ ...demo, name: `${DEMO_MODEL_NAME} (bundled)` });
  }
  if (values.json) {
    out(JSON.stringify({ roots: roots.map((r) => resolve(r)), models: list }, null, 2));
    return 0;
  }
  if (list.length === 0) {
    out(
      `no model folders under ${roots.map((r) => resolve(r)).join(", ")}; ` +
        "`tessera create-model DIR` writes a small random one, or give a Wan2.1-T2V-*-Diffusers folder",
    );
    return 0;
  }
  for (const m of list) {
    if (!m.ok) {
      out(
        `${m.name.padEnd(24)} ${m.path}\n${m.family ? `${"".padEnd(24)} ${m.family}\n` : ""}${"".padEnd(24)} unreadable: ${m.error}`,
      );
      continue;
    }
    const t = m.transformer as NonNullable<ModelListing["transformer"]>;
    out(
      `${m.name.padEnd(24)} ${m.path}\n${"".padEnd(24)} ${m.family ?? "Wan"}: transformer ${formatCount(t.parameters)} params ` +
        `(${t.layers} layers, dim ${t.dim}), ${formatBytes(m.bytes ?? 0)} of weights` +
        (m.description ? `\n${"".padEnd(24)} ${m.description}` : ""),
    );
  }
  return 0;
}

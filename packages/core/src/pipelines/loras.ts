// The LoRAs of one transformer (one expert): which are merged, at what strengths, and
// the parsed files kept for the next run. Asking for the set already merged does
// nothing; a different set is merged through the weight store (weights/store.ts),
// which recomputes the changed tensors from their originals, so no reload is needed
// and a LoRA dropped from the set leaves no trace.
import { readdirSync, statSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import type { WanTransformerConfig } from "../models/wan/config.js";
import { wanTransformerParams } from "../models/wan/params.js";
import { LoraAdapter, type LoraTargetModel } from "../weights/lora/adapter.js";
import type { WeightDelta, WeightStore } from "../weights/store.js";
import { GenerateOptionError, type LoraSpec } from "./options.js";

/** A LoRA file and its strength, as merged. */
export interface ActiveLora {
  /** Absolute path of the .safetensors file. */
  path: string;
  strength: number;
}

/** The tensors a Wan transformer of `config` has, for reading LoRAs against it. */
export function wanLoraTarget(config: WanTransformerConfig, label = "this Wan transformer"): LoraTargetModel {
  const shapes = new Map<string, readonly number[]>();
  for (const [name, spec] of wanTransformerParams(config)) shapes.set(name, spec.shape);
  return { label, shapes, numLayers: config.num_layers };
}

const SUFFIX = ".safetensors";

/** The LoRAs in a folder by name: its .safetensors files without the extension, sorted. */
export function listLoras(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    throw new Error(`the LoRA folder ${dir} cannot be read: ${(e as Error).message}`, { cause: e });
  }
  return names
    .filter(
      (n) =>
        n.endsWith(SUFFIX) &&
        !n.startsWith(".") &&
        statSync(join(dir, n), { throwIfNoEntry: false })?.isFile(),
    )
    .map((n) => n.slice(0, -SUFFIX.length))
    .sort();
}

/**
 * The files `specs` name, with their strengths (default 1): a path as given (made
 * absolute), a name as `<dir>/<name>.safetensors`. Throws a GenerateOptionError on
 * `key` for a name that is not in the folder, a missing file, or a LoRA given twice.
 */
export function resolveLoras(
  specs: readonly LoraSpec[],
  dir: string | undefined,
  key = "loras",
): ActiveLora[] {
  const out: ActiveLora[] = [];
  for (const [i, s] of specs.entries()) {
    let path: string;
    if (s.name !== undefined) {
      if (dir === undefined)
        throw new GenerateOptionError(
          key,
          `${key}[${i}] names the LoRA '${s.name}', but this pipeline has no LoRA folder (give loraDir to WanPipeline.load, or a path)`,
        );
      const file = s.name.endsWith(SUFFIX) ? s.name : `${s.name}${SUFFIX}`;
      path = join(dir, file);
      if (!statSync(path, { throwIfNoEntry: false })?.isFile()) {
        const known = listLoras(dir);
        throw new GenerateOptionError(
          key,
          `${key}[${i}]: no LoRA named '${s.name}' (${known.length ? `the LoRAs here are ${known.map((n) => `'${n}'`).join(", ")}` : "there are no LoRAs here"})`,
        );
      }
    } else {
      path = isAbsolute(s.path as string) ? (s.path as string) : resolve(s.path as string);
      const st = statSync(path, { throwIfNoEntry: false });
      if (!st?.isFile()) throw new GenerateOptionError(key, `${key}[${i}]: no such LoRA file ${path}`);
    }
    if (out.some((a) => a.path === path))
      throw new GenerateOptionError(key, `${key}[${i}]: ${path} is given twice; give each LoRA once`);
    out.push({ path, strength: s.strength ?? 1 });
  }
  return out;
}

interface Cached {
  adapter: LoraAdapter;
  /** The file's size and modification time when read: a file replaced since is read again. */
  stamp: string;
}

function stampOf(path: string): string {
  const st = statSync(path, { throwIfNoEntry: false });
  return st ? `${st.size}:${st.mtimeMs}` : "gone";
}

export class TransformerLoras {
  #active: ActiveLora[] = [];
  #activeKey = "[]";
  readonly #cache = new Map<string, Cached>();
  #runs = 0;
  #busy: Promise<void> = Promise.resolve();

  constructor(
    readonly weights: WeightStore,
    readonly model: LoraTargetModel,
    /** Parsed LoRA files kept beyond the merged ones (default 4). */
    readonly cacheSize = 4,
  ) {}

  /** The LoRAs merged now, in merge order (by path). */
  get active(): readonly ActiveLora[] {
    return this.#active;
  }

  /**
   * Merges exactly `list` (and removes what is merged but not in it). Nothing happens
   * when the same files, unchanged on disk, are merged at the same strengths already.
   * A file that cannot be read or does not fit throws before any weight changes.
   * Refused while a generation holds the current set (see hold()).
   */
  apply(list: readonly ActiveLora[]): Promise<void> {
    const run = this.#busy.then(() => this.#apply(list));
    this.#busy = run.catch(() => {});
    return run;
  }

  /** apply(), then keeps the set from changing until the returned release is called (one generation). */
  async hold(list: readonly ActiveLora[]): Promise<() => void> {
    await this.apply(list);
    this.#runs++;
    let released = false;
    return () => {
      if (!released) this.#runs--;
      released = true;
    };
  }

  async #apply(list: readonly ActiveLora[]): Promise<void> {
    const sorted = [...list].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    const key = JSON.stringify(sorted.map((l) => [l.path, l.strength, stampOf(l.path)]));
    if (key === this.#activeKey) return;
    if (this.#runs > 0)
      throw new Error(
        "the LoRAs cannot change while another generation runs with other LoRAs; run generations with different LoRAs one after another",
      );
    const adapters: LoraAdapter[] = [];
    for (const l of sorted) adapters.push(await this.#adapter(l.path));
    const deltas = new Map<string, WeightDelta[]>();
    for (const [i, a] of adapters.entries())
      for (const [t, ds] of a.deltas((sorted[i] as ActiveLora).strength))
        deltas.set(t, [...(deltas.get(t) ?? []), ...ds]);
    await this.weights.setDeltas(deltas);
    this.#active = sorted;
    this.#activeKey = key;
    this.#evict();
  }

  async #adapter(path: string): Promise<LoraAdapter> {
    const stamp = stampOf(path);
    const hit = this.#cache.get(path);
    if (hit && hit.stamp === stamp) {
      // Most recently used last.
      this.#cache.delete(path);
      this.#cache.set(path, hit);
      return hit.adapter;
    }
    const adapter = await LoraAdapter.load(path, this.model);
    // A file replaced since it was read is read again. The store keeps no reference to
    // a LoRA's tensors once merged, so the old copy can go at once.
    if (hit) {
      this.#cache.delete(path);
      hit.adapter.dispose();
    }
    this.#cache.set(path, { adapter, stamp });
    return adapter;
  }

  #evict(): void {
    const active = new Set(this.#active.map((a) => a.path));
    let spare = [...this.#cache.keys()].filter((p) => !active.has(p)).length;
    for (const [path, c] of this.#cache) {
      if (spare <= this.cacheSize) break;
      if (active.has(path)) continue;
      c.adapter.dispose();
      this.#cache.delete(path);
      spare--;
    }
  }

  /** Frees the parsed LoRA files (the merged weights stay as they are). */
  dispose(): void {
    for (const c of this.#cache.values()) c.adapter.dispose();
    this.#cache.clear();
  }
}

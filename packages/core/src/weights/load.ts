// Loading a checkpoint into a WeightStore from a .safetensors file, a list of
// shards, a sharded index (*.safetensors.index.json, {"weight_map": {name: file}})
// or a folder holding one of those, streaming tensor by tensor to the device.
//
// fp8 checkpoints are dequantised on load. The per-tensor scale conventions found
// in published checkpoints are recognised by name, for a weight W = "<module>.weight":
//   <module>.scale_weight  ComfyUI "fp8 scaled" files (e.g. Comfy-Org's and Kijai's
//                          Wan2.1 *_fp8_scaled.safetensors); they also carry a
//                          "scaled_fp8" marker tensor and sometimes <module>.scale_input.
//   <module>.weight_scale  = "<W>_scale": ComfyUI's newer quantised layout (with
//                          <module>.input_scale and a <module>.comfy_quant JSON tensor,
//                          which ComfyUI converts the old names into) and
//                          compressed-tensors / llm-compressor FP8 exports (per-tensor
//                          or per-output-channel [out] / [out, 1]).
//   <W>.scale_weight       seen in some hand-converted files.
// The scale multiplies the fp8 values (in f32) before the cast to the run dtype;
// scales, markers and activation scales (input_scale / scale_input, which only an
// fp8 matmul would use) never appear in the store.
import { readdir, readFile, stat } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, normalize, resolve } from "node:path";
import { type DeviceLike, type DType, isFloat } from "@tessera/native";
import {
  decodeTensor,
  decodeToF32Host,
  MAX_HEADER_BYTES,
  type SafetensorsDType,
  SafetensorsFile,
  type TensorInfo,
} from "./safetensors.js";
import { WeightError, WeightStore } from "./store.js";
import { isJsonObject, JsonSyntaxError, type JsonValue, parseStrictJson } from "./strict-json.js";

export type WeightSource = string | readonly string[];

export interface LoadWeightsOptions {
  /** Where the tensors go (default "cpu"). */
  device?: DeviceLike;
  /** Run dtype for floating-point tensors: f32, bf16 or f16 (default: each tensor's own; fp8/f64 -> f32). */
  dtype?: DType;
  /** Maps a checkpoint name to the store's name; null drops the tensor (it is then never read). */
  rename?: (name: string) => string | null;
  /** Keeps only the tensors it accepts; sees the checkpoint's name, before rename. */
  filter?: (name: string, info: TensorInfo) => boolean;
  /** Called after each tensor reaches the device. */
  onProgress?: (p: { name: string; loaded: number; total: number; bytes: number }) => void;
}

/** One tensor of a (possibly sharded) checkpoint, with the file that holds it. */
export interface WeightEntry {
  readonly name: string;
  readonly file: string;
  readonly info: TensorInfo;
  /** The fp8 dequantisation scale tensor that goes with it, if any. */
  readonly scale?: string;
}

/** What a checkpoint holds, without loading it. */
export interface WeightsInventory {
  /** Names the checkpoint in messages (the file, the index, or the first shard). */
  readonly label: string;
  readonly files: readonly string[];
  /** Each file's __metadata__. */
  readonly metadata: ReadonlyMap<string, Readonly<Record<string, string>>>;
  /** Model tensors by name (scales and quantisation markers excluded). */
  readonly tensors: ReadonlyMap<string, WeightEntry>;
  /** Names of the scales, markers and activation scales that go with fp8 tensors. */
  readonly companions: ReadonlySet<string>;
}

const q = (s: string) => JSON.stringify(s.length > 200 ? `${s.slice(0, 200)}...` : s);
const SHARD = /^(.*)-(\d{5})-of-(\d{5})\.safetensors$/;

function isNotFound(e: unknown): boolean {
  return (e as NodeJS.ErrnoException)?.code === "ENOENT" || (e as NodeJS.ErrnoException)?.code === "ENOTDIR";
}

/** Reads and parses a JSON file of bounded size, as a WeightError naming it for any problem. */
export async function readJsonFile(path: string, what = "JSON file"): Promise<JsonValue> {
  let text: string;
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new WeightError(`${path}: ${what} is not a regular file`);
    if (st.size > MAX_HEADER_BYTES)
      throw new WeightError(`${path}: ${what} is ${st.size} bytes, over the ${MAX_HEADER_BYTES}-byte limit`);
    const bytes = await readFile(path);
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (e) {
    if (e instanceof WeightError) throw e;
    if (isNotFound(e)) throw new WeightError(`${path}: ${what} not found`, { cause: e });
    if (e instanceof TypeError) throw new WeightError(`${path}: ${what} is not valid UTF-8`, { cause: e });
    throw new WeightError(`${path}: cannot read ${what}: ${(e as Error).message}`, { cause: e });
  }
  try {
    return parseStrictJson(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (e) {
    const why = e instanceof JsonSyntaxError ? e.message : String(e);
    throw new WeightError(`${path}: ${what} is not valid JSON (${why})`, { cause: e });
  }
}

interface ResolvedSource {
  label: string;
  files: string[];
  /** For an index: tensor name -> shard path the index names. */
  weightMap?: Map<string, string>;
  indexPath?: string;
}

async function resolveIndex(indexPath: string): Promise<ResolvedSource> {
  const json = await readJsonFile(indexPath, "sharded-checkpoint index");
  const wm = isJsonObject(json) ? json.weight_map : undefined;
  if (!isJsonObject(wm))
    throw new WeightError(
      `${indexPath}: a sharded-checkpoint index needs a "weight_map" object of name -> file`,
    );
  const dir = dirname(indexPath);
  const weightMap = new Map<string, string>();
  const files: string[] = [];
  for (const [name, file] of Object.entries(wm)) {
    if (typeof file !== "string" || file === "")
      throw new WeightError(`${indexPath}: weight_map entry ${q(name)} must name a file`);
    // Shards live beside their index; a name that climbs out of that folder is refused.
    const norm = normalize(file);
    if (isAbsolute(file) || norm.split(/[\\/]/).includes(".."))
      throw new WeightError(
        `${indexPath}: weight_map entry ${q(name)} names ${q(file)}, which is outside the index's folder`,
      );
    const path = join(dir, norm);
    if (!files.includes(path)) files.push(path);
    weightMap.set(name, path);
  }
  if (files.length === 0) throw new WeightError(`${indexPath}: the index's weight_map is empty`);
  return { label: indexPath, files, weightMap, indexPath };
}

async function resolveFolder(dir: string): Promise<ResolvedSource> {
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch (e) {
    throw new WeightError(`${dir}: cannot list the folder: ${(e as Error).message}`, { cause: e });
  }
  const indexes = names.filter((n) => n.endsWith(".safetensors.index.json"));
  if (indexes.length === 1) return resolveIndex(join(dir, indexes[0] as string));
  if (indexes.length > 1)
    throw new WeightError(
      `${dir}: the folder holds ${indexes.length} sharded-checkpoint indexes (${indexes.join(", ")}); pass the one to load`,
    );
  const files = names.filter((n) => n.endsWith(".safetensors"));
  if (files.length === 1)
    return { label: join(dir, files[0] as string), files: [join(dir, files[0] as string)] };
  if (files.length === 0) {
    const pickles = names.filter((n) => /\.(bin|pt|pth|ckpt|gguf)$/.test(n));
    throw new WeightError(
      `${dir}: no .safetensors checkpoint in the folder${pickles.length ? ` (found ${pickles.slice(0, 3).join(", ")}: only safetensors can be loaded)` : ""}`,
    );
  }
  // Shards without an index: accept a complete name-00001-of-0000N set only.
  const m = files.map((f) => SHARD.exec(f));
  const first = m[0];
  if (
    first &&
    m.every((x) => x && x[1] === first[1] && x[3] === first[3]) &&
    Number(first[3]) === files.length &&
    m.every((x, i) => Number(x?.[2]) === i + 1)
  )
    return { label: join(dir, files[0] as string), files: files.map((f) => join(dir, f)) };
  throw new WeightError(
    `${dir}: the folder holds ${files.length} .safetensors files that are not one sharded checkpoint (${files.slice(0, 4).join(", ")}${files.length > 4 ? ", ..." : ""}); pass the file or index to load`,
  );
}

async function resolveSource(source: WeightSource): Promise<ResolvedSource> {
  if (typeof source !== "string") {
    if (!Array.isArray(source) || source.length === 0 || !source.every((s) => typeof s === "string"))
      throw new WeightError("loadWeights: the source must be a path or a non-empty list of shard paths");
    const files = [...new Set(source as string[])];
    const label =
      files.length === 1 ? (files[0] as string) : `${files[0]} (+${files.length - 1} more shards)`;
    return { label, files };
  }
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(source);
  } catch (e) {
    throw new WeightError(`${source}: ${isNotFound(e) ? "no such file or folder" : (e as Error).message}`, {
      cause: e,
    });
  }
  if (st.isDirectory()) return resolveFolder(source);
  if (source.endsWith(".json")) return resolveIndex(source);
  return { label: source, files: [source] };
}

interface OpenCheckpoint {
  label: string;
  files: SafetensorsFile[];
  /** name -> the open file holding it */
  where: Map<string, SafetensorsFile>;
}

async function openCheckpoint(source: WeightSource): Promise<OpenCheckpoint> {
  const r = await resolveSource(source);
  const files: SafetensorsFile[] = [];
  try {
    for (const path of r.files) {
      if (r.indexPath) {
        const exists = await stat(path).then(
          () => true,
          (e) => !isNotFound(e),
        );
        if (!exists)
          throw new WeightError(
            `${r.indexPath}: the index names shard ${q(basename(path))}, which does not exist`,
          );
      }
      files.push(await SafetensorsFile.open(path));
    }
    const where = new Map<string, SafetensorsFile>();
    for (const f of files) {
      for (const name of f.tensors.keys()) {
        const other = where.get(name);
        if (other)
          throw new WeightError(`${r.label}: tensor ${q(name)} is in both ${other.path} and ${f.path}`);
        if (r.weightMap) {
          const expected = r.weightMap.get(name);
          if (expected === undefined)
            throw new WeightError(
              `${r.indexPath}: shard ${f.path} holds tensor ${q(name)}, which the index does not list`,
            );
          if (resolve(expected) !== resolve(f.path))
            throw new WeightError(
              `${r.indexPath}: the index puts tensor ${q(name)} in ${basename(expected)}, but ${f.path} holds it`,
            );
        }
        where.set(name, f);
      }
    }
    if (r.weightMap)
      for (const [name, path] of r.weightMap)
        if (!where.has(name))
          throw new WeightError(
            `${r.indexPath}: the index puts tensor ${q(name)} in ${basename(path)}, which does not hold it`,
          );
    return { label: r.label, files, where };
  } catch (e) {
    await Promise.all(files.map((f) => f.close().catch(() => {})));
    throw e;
  }
}

const FP8: readonly SafetensorsDType[] = ["F8_E4M3", "F8_E5M2"];
const FLOAT_SCALE: readonly SafetensorsDType[] = ["F32", "F64", "BF16", "F16"];

function checkQuantFormat(format: unknown, where: string): void {
  if (typeof format !== "string" || !/^float8_e(4m3fn|5m2)(_rowwise)?$/.test(format))
    throw new WeightError(
      `${where}: quantisation format ${q(String(format))} is not supported (only fp8 e4m3fn/e5m2 with per-tensor or per-row scales)`,
    );
}

/** Pairs fp8 weights with their scales and marks the companion tensors (see the file comment). */
function planQuantisation(ck: OpenCheckpoint): { scales: Map<string, string>; companions: Set<string> } {
  const { where, label } = ck;
  const scales = new Map<string, string>();
  const companions = new Set<string>();
  for (const f of ck.files) {
    const qm = f.metadata._quantization_metadata;
    if (qm === undefined) continue;
    let layers: unknown;
    try {
      layers = (JSON.parse(qm) as { layers?: unknown }).layers;
    } catch {
      throw new WeightError(`${f.path}: metadata '_quantization_metadata' is not valid JSON`);
    }
    if (isJsonObject(layers))
      for (const [layer, conf] of Object.entries(layers))
        checkQuantFormat(isJsonObject(conf) ? conf.format : undefined, `${f.path}: layer ${q(layer)}`);
  }
  for (const [name, file] of where) {
    const info = file.info(name);
    if ((name === "scaled_fp8" || name.endsWith(".scaled_fp8")) && info.byteLength <= 16) {
      companions.add(name);
      continue;
    }
    if (!FP8.includes(info.dtype)) continue;
    const module = name.endsWith(".weight") ? name.slice(0, -".weight".length) : null;
    const candidates = [`${name}.scale_weight`, `${name}_scale`];
    if (module !== null) candidates.push(`${module}.scale_weight`);
    const found = candidates.filter((c) => where.has(c));
    if (found.length > 1)
      throw new WeightError(`${label}: fp8 tensor ${q(name)} has more than one scale (${found.join(", ")})`);
    const scale = found[0];
    if (scale !== undefined) {
      const s = (where.get(scale) as SafetensorsFile).info(scale);
      const rows = info.shape[0] ?? 1;
      const n = s.shape.reduce((a, b) => a * b, 1);
      if (!FLOAT_SCALE.includes(s.dtype))
        throw new WeightError(
          `${label}: scale ${q(scale)} of ${q(name)} must be a float tensor, not ${s.dtype}`,
        );
      const perRow =
        n === rows &&
        info.shape.length > 0 &&
        (s.shape.length === 1 || (s.shape.length === 2 && s.shape[1] === 1));
      if (n !== 1 && !perRow)
        throw new WeightError(
          `${label}: scale ${q(scale)} of ${q(name)} has shape [${s.shape.join(", ")}]; only per-tensor and per-row scales are supported`,
        );
      scales.set(name, scale);
      companions.add(scale);
    }
    if (module !== null)
      for (const c of [`${module}.scale_input`, `${module}.input_scale`, `${module}.comfy_quant`])
        if (where.has(c)) companions.add(c);
  }
  return { scales, companions };
}

async function checkComfyQuant(ck: OpenCheckpoint, companions: Set<string>): Promise<void> {
  for (const name of companions) {
    if (!name.endsWith(".comfy_quant")) continue;
    const f = ck.where.get(name) as SafetensorsFile;
    const raw = await f.readBytes(name);
    let conf: unknown;
    try {
      conf = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(raw));
    } catch {
      throw new WeightError(`${f.path}: tensor ${q(name)} is not a JSON quantisation config`);
    }
    checkQuantFormat(isJsonObject(conf) ? conf.format : undefined, `${f.path}: tensor ${q(name)}`);
  }
}

function closeAll(ck: OpenCheckpoint): Promise<unknown> {
  return Promise.all(ck.files.map((f) => f.close().catch(() => {})));
}

/** Lists a checkpoint's tensors (names, dtypes, shapes, files) without reading their data. */
export async function inspectWeights(source: WeightSource): Promise<WeightsInventory> {
  const ck = await openCheckpoint(source);
  try {
    const { scales, companions } = planQuantisation(ck);
    const tensors = new Map<string, WeightEntry>();
    for (const [name, f] of ck.where) {
      if (companions.has(name)) continue;
      const scale = scales.get(name);
      tensors.set(name, { name, file: f.path, info: f.info(name), ...(scale ? { scale } : {}) });
    }
    return {
      label: ck.label,
      files: ck.files.map((f) => f.path),
      metadata: new Map(ck.files.map((f) => [f.path, f.metadata])),
      tensors,
      companions,
    };
  } finally {
    await closeAll(ck);
  }
}

/**
 * Loads a checkpoint into a WeightStore, one tensor at a time in file order: each
 * is read with positioned reads, converted and put on the device while the next
 * one is being read. Every failure is a WeightError naming the file (and the tensor);
 * on failure nothing stays allocated.
 */
export async function loadWeights(source: WeightSource, opts: LoadWeightsOptions = {}): Promise<WeightStore> {
  if (opts.dtype !== undefined && !isFloat(opts.dtype))
    throw new WeightError(`loadWeights: dtype must be f32, bf16 or f16, got ${q(String(opts.dtype))}`);
  const ck = await openCheckpoint(source);
  const store = new WeightStore(ck.label);
  try {
    const { scales, companions } = planQuantisation(ck);
    await checkComfyQuant(ck, companions);

    // Decide names before reading anything, so a bad rename fails fast and dropped tensors are never read.
    const plan: { name: string; target: string; file: SafetensorsFile; info: TensorInfo }[] = [];
    const taken = new Map<string, string>();
    for (const file of ck.files) {
      const infos = [...file.tensors.values()].sort((a, b) => a.fileOffset - b.fileOffset);
      for (const info of infos) {
        const name = info.name;
        if (companions.has(name)) continue;
        const where = `${file.path}: tensor ${q(name)}`;
        let target: string | null = name;
        try {
          if (opts.filter && !opts.filter(name, info)) continue;
          if (opts.rename) target = opts.rename(name);
        } catch (e) {
          if (e instanceof WeightError) throw e;
          throw new WeightError(`${where}: rename/filter failed: ${(e as Error)?.message ?? String(e)}`, {
            cause: e,
          });
        }
        if (target === null) continue;
        if (typeof target !== "string" || target === "")
          throw new WeightError(
            `${where}: rename must return a non-empty name or null, got ${q(String(target))}`,
          );
        const prior = taken.get(target);
        if (prior !== undefined)
          throw new WeightError(`${where}: renamed to ${q(target)}, which tensor ${q(prior)} already has`);
        taken.set(target, name);
        plan.push({ name, target, file, info });
      }
    }

    // Reads run one tensor ahead of the uploads, so the disk and the device work
    // at the same time; at most two tensors' bytes are held on the host.
    const fetch = (i: number) => {
      const { name, file } = plan[i] as (typeof plan)[number];
      const scaleName = scales.get(name);
      const p = Promise.all([
        file.readBytes(name),
        scaleName === undefined
          ? undefined
          : (async () => {
              const sf = ck.where.get(scaleName) as SafetensorsFile;
              return decodeToF32Host(await sf.readBytes(scaleName), sf.info(scaleName), sf.path);
            })(),
      ]);
      // Marked handled: if an earlier tensor fails, this read's outcome no longer matters.
      p.catch(() => {});
      return p;
    };
    let next = plan.length ? fetch(0) : null;
    for (let i = 0; i < plan.length; i++) {
      const { target, file, info } = plan[i] as (typeof plan)[number];
      const [raw, scale] = await (next as ReturnType<typeof fetch>);
      next = i + 1 < plan.length ? fetch(i + 1) : null;
      const t = decodeTensor(raw, info, {
        label: file.path,
        ...(opts.device !== undefined ? { device: opts.device } : {}),
        ...(opts.dtype !== undefined ? { dtype: opts.dtype } : {}),
        ...(scale ? { scale } : {}),
      });
      store.set(target, t);
      opts.onProgress?.({ name: target, loaded: i + 1, total: plan.length, bytes: info.byteLength });
    }
    return store;
  } catch (e) {
    store.dispose();
    if (e instanceof WeightError) throw e;
    throw new WeightError(`${ck.label}: loading failed: ${(e as Error)?.message ?? String(e)}`, { cause: e });
  } finally {
    await closeAll(ck);
  }
}

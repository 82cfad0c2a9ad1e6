// What every golden check builds on: the fixtures' folder, opening a fixture (weights on
// the run device, data on the CPU), inputs, and the comparison with the reference and its
// bounds (see checks.ts for the bounds' reasoning). A module of its own so that the family
// checks (i2v-checks.ts, ti2v-checks.ts) and the pipeline / LoRA / expert checks import it
// without importing checks.ts, which imports the family checks in turn.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { cast, type DType, liveTensorCount, type Tensor } from "@tessera/native";
import { inspectWeights, loadWeights } from "../weights/load.js";
import type { WeightStore } from "../weights/store.js";

/** One check's outcome. `error` is NaN where nothing could be measured (then `detail` says why). */
export interface GoldenResult {
  name: string;
  /** The measured error (relative L2 error, or a count / magnitude for the exact checks). */
  error: number;
  /** The largest error that passes. */
  bound: number;
  pass: boolean;
  detail: string;
}

export const F32_BOUND = 1e-4;
/** The fixtures' folder: TESSERA_GOLDEN_DIR, else test-fixtures/golden of this package. */
export function goldenDir(): string {
  return (
    process.env.TESSERA_GOLDEN_DIR ??
    join(dirname(fileURLToPath(import.meta.url)), "../../test-fixtures/golden")
  );
}

export const hasGoldenFixture = (name: string, dir = goldenDir()) =>
  existsSync(join(dir, `${name}.safetensors`));

/** The CPU backend computes in f32 only; bf16 is a GPU check. */
export const goldenRunnable = (device: string, dtype: DType) => !(device === "cpu" && dtype !== "f32");

/** Formats an error or a bound for messages. */
export const fmtErr = (x: number) => (Number.isFinite(x) && x !== 0 ? x.toExponential(2) : String(x));

export interface Ctx {
  dir: string;
  device: string;
  dtype: DType;
}

const DATA_PREFIXES = ["input.", "output.", "output_bf16.", "inter."];
/** Whether a fixture tensor is data (inputs, references) rather than model weights. */
export const isData = (name: string) => DATA_PREFIXES.some((p) => name.startsWith(p));

export interface Golden<C> {
  config: C;
  meta: Readonly<Record<string, string>>;
  /** Model weights on the run device in the run dtype. */
  weights: WeightStore;
  /** input.*, output.*, … as stored (f32 or i32), on the CPU. */
  data: WeightStore;
  dispose(): void;
}

/** A fixture file's metadata, after checking that it is a tessera-golden/1 fixture. */
export async function goldenMeta(path: string): Promise<Record<string, string>> {
  const inv = await inspectWeights(path);
  const meta = inv.metadata.get(inv.files[0] as string) ?? {};
  if (meta.format !== "tessera-golden/1")
    throw new Error(`${path}: format '${meta.format}', expected 'tessera-golden/1'`);
  return meta;
}

export async function openGolden<C>(ctx: Ctx, name: string): Promise<Golden<C>> {
  const path = join(ctx.dir, `${name}.safetensors`);
  if (!existsSync(path)) throw new Error(`missing fixture ${path}`);
  const meta = await goldenMeta(path);
  const weights = await loadWeights(path, {
    filter: (n) => !isData(n),
    device: ctx.device,
    dtype: ctx.dtype,
  });
  let data: WeightStore;
  try {
    data = await loadWeights(path, { filter: isData });
  } catch (e) {
    weights.dispose();
    throw e;
  }
  return {
    config: JSON.parse(meta.config as string) as C,
    meta,
    weights,
    data,
    dispose() {
      weights.dispose();
      data.dispose();
    },
  };
}

/** An input for the model on the run device: floats in the run dtype unless `keepF32`, ids as they are. */
export async function input(
  ctx: Ctx,
  g: Golden<unknown>,
  name: string,
  track: Tensor[],
  keepF32 = false,
): Promise<Tensor> {
  const t = g.data.get(`input.${name}`);
  let moved = ctx.device === "cpu" ? t : await t.to(ctx.device);
  if (moved !== t) track.push(moved);
  if (!keepF32 && moved.dtype !== "i32" && moved.dtype !== ctx.dtype) {
    moved = cast(moved, ctx.dtype);
    track.push(moved);
  }
  return moved;
}

/**
 * Opens fixture `name`, runs `body` with it and a list of tensors to free, then frees
 * them and the fixture whatever happens: the frame every single-fixture check repeats.
 */
export async function withGolden<C, R = void>(
  ctx: Ctx,
  name: string,
  body: (g: Golden<C>, track: Tensor[]) => Promise<R>,
): Promise<R> {
  const g = await openGolden<C>(ctx, name);
  const track: Tensor[] = [];
  try {
    return await body(g, track);
  } finally {
    for (const t of track) t.dispose();
    g.dispose();
  }
}

/** ‖out − ref‖ / ‖ref‖, as every golden comparison measures it. */
export function relErr(out: Float32Array, ref: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = (out[i] as number) - (ref[i] as number);
    num += d * d;
    den += (ref[i] as number) ** 2;
  }
  return Math.sqrt(num / den);
}

/**
 * Compares `out` with output.<ref> (only the elements `rows` accepts, if given); in f32
 * the bound is `f32Bound` (1e-4 for single forwards, 1e-3 for multi-step pipelines).
 */
export async function compare(
  ctx: Ctx,
  g: Golden<unknown>,
  check: string,
  ref: string,
  out: Tensor,
  rows?: (i: number) => boolean,
  f32Bound = F32_BOUND,
): Promise<GoldenResult> {
  const refT = g.data.get(`output.${ref}`);
  let bound = f32Bound;
  const where = `${ctx.device} ${ctx.dtype}, output.${ref}`;
  if (out.shape.length !== refT.shape.length || out.shape.some((d, i) => d !== refT.shape[i]))
    return {
      name: check,
      error: Number.NaN,
      bound,
      pass: false,
      detail: `${where}: shape [${out.shape.join(", ")}], reference [${refT.shape.join(", ")}]`,
    };
  let a = await out.toFloat32Array();
  let r = await refT.toFloat32Array();
  const nonFinite = a.reduce((n, v) => (Number.isFinite(v) ? n : n + 1), 0);
  if (rows) {
    a = a.filter((_, i) => rows(i));
    r = r.filter((_, i) => rows(i));
  }
  const error = relErr(a, r);
  let detail = `${where}: ‖out − ref‖/‖ref‖ over ${a.length} values`;
  if (ctx.dtype !== "f32") {
    const b16 = g.data.has(`output_bf16.${ref}`)
      ? await g.data.get(`output_bf16.${ref}`).toFloat32Array()
      : null;
    const torchErr = b16 ? relErr(rows ? b16.filter((_, i) => rows(i)) : b16, r) : 1e-2;
    bound = Math.max(2 * torchErr, 5e-3);
    detail += b16
      ? `; PyTorch bf16 autocast error ${fmtErr(torchErr)}, bound max(2×, 5e-3)`
      : "; no output_bf16 reference, bound from 1e-2";
  }
  if (nonFinite) detail += `; ${nonFinite} non-finite values`;
  return { name: check, error, bound, pass: nonFinite === 0 && error <= bound, detail };
}

/** The result saying whether every tensor made since `before` (a liveTensorCount()) is freed. */
export function releasedResult(name: string, before: number, since = "before"): GoldenResult {
  const leaked = liveTensorCount() - before;
  return {
    name,
    error: leaked,
    bound: 0,
    pass: leaked === 0,
    detail: `live tensors ${before} ${since}, ${before + leaked} after`,
  };
}

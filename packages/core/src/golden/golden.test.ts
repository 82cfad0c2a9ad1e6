// The TypeScript models against golden tensors from an independent PyTorch
// implementation (training/tessera_ref, written from the published Wan2.1 / diffusers /
// transformers code; regenerate with training/make_golden.py, see training/README.md).
//
// Each fixture holds the weights under their checkpoint names, input.* tensors, the
// float64 reference output.* (stored as f32) and output_bf16.* (the reference model
// under bf16 autocast on a GPU). By default the models run on the CPU in f32 and must
// agree with output.* to ‖out − ref‖ / ‖ref‖ ≤ 1e-4.
//
// TESSERA_GOLDEN_DEVICE=cuda TESSERA_GOLDEN_DTYPE=bf16 runs the same checks on the GPU;
// in bf16 the bound becomes 2 × the error PyTorch's own bf16 run makes against the
// float64 reference (floored at 5e-3): the engine may round differently from
// PyTorch's autocast, not by more than another bf16 implementation does.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { cast, type DType, liveTensorCount, type Tensor } from "@tessera/native";
import { describe, expect, it } from "vitest";
import { relativePositionBuckets } from "../models/t5/bucket.js";
import type { UMT5Config } from "../models/t5/config.js";
import { UMT5Encoder } from "../models/t5/encoder.js";
import type { WanTransformerConfig } from "../models/wan/config.js";
import { WanTransformer } from "../models/wan/transformer.js";
import type { WanVaeConfig } from "../models/wan-vae/config.js";
import { WanVAE } from "../models/wan-vae/vae.js";
import { inspectWeights, loadWeights } from "../weights/load.js";
import type { WeightStore } from "../weights/store.js";

const DIR = join(dirname(fileURLToPath(import.meta.url)), "../../test-fixtures/golden");
const DEVICE = process.env.TESSERA_GOLDEN_DEVICE ?? "cpu";
const DTYPE = (process.env.TESSERA_GOLDEN_DTYPE ?? "f32") as DType;
const F32_BOUND = 1e-4;

const DATA_PREFIXES = ["input.", "output.", "output_bf16.", "inter."];
const isData = (name: string) => DATA_PREFIXES.some((p) => name.startsWith(p));

interface Golden<C> {
  config: C;
  meta: Readonly<Record<string, string>>;
  /** Model weights on DEVICE in DTYPE. */
  weights: WeightStore;
  /** input.*, output.*, … as stored (f32 or i32), on the CPU. */
  data: WeightStore;
  dispose(): void;
}

async function openGolden<C>(name: string): Promise<Golden<C>> {
  const path = join(DIR, `${name}.safetensors`);
  const inv = await inspectWeights(path);
  const meta = inv.metadata.get(inv.files[0] as string) ?? {};
  expect(meta.format).toBe("tessera-golden/1");
  const weights = await loadWeights(path, { filter: (n) => !isData(n), device: DEVICE, dtype: DTYPE });
  const data = await loadWeights(path, { filter: isData });
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

/** An input for the model on DEVICE: floats in DTYPE unless `keepF32`, ids as they are. */
async function input(g: Golden<unknown>, name: string, track: Tensor[], keepF32 = false): Promise<Tensor> {
  const t = g.data.get(`input.${name}`);
  let moved = DEVICE === "cpu" ? t : await t.to(DEVICE);
  if (moved !== t) track.push(moved);
  if (!keepF32 && moved.dtype !== "i32" && moved.dtype !== DTYPE) {
    moved = cast(moved, DTYPE);
    track.push(moved);
  }
  return moved;
}

function relErr(out: Float32Array, ref: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = (out[i] as number) - (ref[i] as number);
    num += d * d;
    den += (ref[i] as number) ** 2;
  }
  return Math.sqrt(num / den);
}

/** Compares `out` with output.<name>; returns the error after logging it. */
async function compare(g: Golden<unknown>, name: string, out: Tensor, rows?: (i: number) => boolean) {
  const ref = g.data.get(`output.${name}`);
  expect(out.shape).toEqual(ref.shape);
  let a = await out.toFloat32Array();
  let r = await ref.toFloat32Array();
  expect(a.every(Number.isFinite), `${name}: non-finite values`).toBe(true);
  if (rows) {
    a = a.filter((_, i) => rows(i));
    r = r.filter((_, i) => rows(i));
  }
  const err = relErr(a, r);
  let bound = F32_BOUND;
  if (DTYPE !== "f32") {
    const b16 = g.data.has(`output_bf16.${name}`)
      ? await g.data.get(`output_bf16.${name}`).toFloat32Array()
      : null;
    const torchErr = b16 ? relErr(rows ? b16.filter((_, i) => rows(i)) : b16, r) : 1e-2;
    bound = Math.max(2 * torchErr, 5e-3);
  }
  console.log(
    `golden ${name} (${DEVICE} ${DTYPE}): rel err ${err.toExponential(2)} (bound ${bound.toExponential(0)})`,
  );
  expect(err, `${name}: ‖out − ref‖/‖ref‖`).toBeLessThanOrEqual(bound);
  return err;
}

const has = (name: string) => existsSync(join(DIR, `${name}.safetensors`));

// The CPU backend computes in f32 only; bf16 is a GPU check.
const runnable = !(DEVICE === "cpu" && DTYPE !== "f32");

if (!runnable)
  it.skip(`golden: not run in ${DTYPE} on the CPU (the CPU backend computes in f32; set TESSERA_GOLDEN_DEVICE=cuda)`, () => {});

describe.runIf(runnable)("golden tensors vs the PyTorch reference", () => {
  it.runIf(has("wan_transformer"))("Wan transformer: forward", async () => {
    const before = liveTensorCount();
    const g = await openGolden<WanTransformerConfig>("wan_transformer");
    const track: Tensor[] = [];
    const model = new WanTransformer(g.config, g.weights);
    const y = model.forward({
      latents: await input(g, "latents", track),
      // timestep_embedding takes f32 timesteps whatever the run dtype.
      timesteps: await input(g, "timesteps", track, true),
      context: await input(g, "context", track),
    });
    await compare(g, "velocity", y);
    y.dispose();
    for (const t of track) t.dispose();
    g.dispose();
    expect(liveTensorCount()).toBe(before);
  });

  it.runIf(has("wan_vae"))("Wan VAE: chunked encode (5 frames) to normalised latents", async () => {
    const g = await openGolden<WanVaeConfig>("wan_vae");
    const track: Tensor[] = [];
    const vae = new WanVAE(g.config, g.weights);
    const z = vae.encode(await input(g, "video", track));
    await compare(g, "encode_latents", z);
    z.dispose();
    for (const t of track) t.dispose();
    g.dispose();
  });

  it.runIf(has("wan_vae"))("Wan VAE: decode of 3 latent frames (first, zero-started, cached)", async () => {
    const g = await openGolden<WanVaeConfig>("wan_vae");
    const track: Tensor[] = [];
    const vae = new WanVAE(g.config, g.weights);
    // WanVAE.decode takes normalised latents (it applies latents_std/mean itself).
    const y = vae.decode(await input(g, "decode_latents_normalized", track));
    await compare(g, "decode", y);
    y.dispose();
    for (const t of track) t.dispose();
    g.dispose();
  });

  it.runIf(has("umt5"))("umT5 encoder: two prompts of different lengths", async () => {
    const g = await openGolden<UMT5Config>("umt5");
    const track: Tensor[] = [];
    const enc = new UMT5Encoder(g.config, g.weights);
    const ids = await input(g, "input_ids", track);
    const lengths = Array.from(await g.data.get("input.lengths").toFloat32Array());
    const y = enc.encode(ids, lengths);
    const [, l, d] = y.shape as [number, number, number];
    const valid = (i: number) => Math.floor(i / d) % l < (lengths[Math.floor(i / (l * d))] as number);
    // The reference holds HF's values for padding rows; Wan (and the engine) zero them.
    await compare(g, "last_hidden_state", y, valid);
    const out = await y.toFloat32Array();
    expect(out.every((v, i) => valid(i) || v === 0)).toBe(true);
    y.dispose();
    for (const t of track) t.dispose();
    g.dispose();
  });

  it.runIf(has("umt5"))(
    "umT5 relative-position buckets match torch's float32 answer (32 buckets, 128)",
    async () => {
      const g = await openGolden<UMT5Config>("umt5");
      const ref = Array.from(await g.data.get("output.rel_buckets_xxl").toFloat32Array());
      // Row 0 of a [1, 401] table is rel = j − 0 for j < 401; the key/query roles put
      // rel = −200..200 in one row when the query sits at position 200.
      const table = relativePositionBuckets(201, 401, {
        bidirectional: true,
        numBuckets: 32,
        maxDistance: 128,
      });
      const row = Array.from(table.subarray(200 * 401, 201 * 401));
      expect(row).toEqual(ref);
      g.dispose();
    },
  );

  it("has every fixture", () => {
    for (const n of ["wan_transformer", "wan_vae", "umt5"]) expect(has(n), `${n}.safetensors`).toBe(true);
  });
});

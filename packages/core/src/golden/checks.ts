// The TypeScript models against golden tensors from an independent PyTorch
// implementation (training/tessera_ref, written from the published Wan2.1 / diffusers /
// transformers code; regenerate with training/make_golden.py, see training/README.md).
// A plain module (no test framework): golden.test.ts runs it under vitest on the CPU,
// run.ts runs it anywhere Node runs (the GPU host: node dist/golden/run.js --device cuda).
//
// Each fixture holds the weights under their checkpoint names, input.* tensors, the
// float64 reference output.* (stored as f32) and output_bf16.* (the reference model
// under bf16 autocast on a GPU). In f32 the models must agree with output.* to
// ‖out − ref‖ / ‖ref‖ ≤ 1e-4. In bf16 the bound becomes 2 × the error PyTorch's own
// bf16 run makes against the float64 reference (floored at 5e-3): the engine may round
// differently from PyTorch's autocast, not by more than another bf16 implementation does.
//
// The fixtures are looked up relative to this module (src/golden/ or dist/golden/ →
// ../../test-fixtures/golden); TESSERA_GOLDEN_DIR (or options.dir) overrides that.
import { affine, assign, captureGraph, Device, type DType, liveTensorCount, scope } from "@tessera/native";
import { relativePositionBuckets } from "../models/t5/bucket.js";
import type { UMT5Config } from "../models/t5/config.js";
import { UMT5Encoder } from "../models/t5/encoder.js";
import type { WanTransformerConfig } from "../models/wan/config.js";
import { WanTransformer } from "../models/wan/transformer.js";
import type { WanVaeConfig } from "../models/wan-vae/config.js";
import { WanVAE } from "../models/wan-vae/vae.js";
import {
  type Ctx,
  compare,
  type GoldenResult,
  goldenDir,
  goldenRunnable,
  input,
  openGolden,
  releasedResult,
  withGolden,
} from "./fixture.js";
import { forwardCheck } from "./forward.js";
import { I2V_CHECKS, I2V_FIXTURES } from "./i2v-checks.js";
import { TI2V_CHECKS } from "./ti2v-checks.js";

export interface GoldenOptions {
  /** "cpu", "cuda" or "cuda:N" (default "cpu"). */
  device?: string;
  /** Run dtype of the models (default "f32"); the CPU backend runs f32 only. */
  dtype?: DType;
  /** The fixtures' folder (default: TESSERA_GOLDEN_DIR, else ../../test-fixtures/golden from here). */
  dir?: string;
  /** Called with each result as soon as it is known. */
  onResult?: (r: GoldenResult) => void;
}

export const GOLDEN_FIXTURES = [
  "wan_transformer",
  "wan_vae",
  "umt5",
  "wan22_vae",
  "wan_ti2v",
  ...I2V_FIXTURES,
] as const;

export interface Check {
  fixture: (typeof GOLDEN_FIXTURES)[number];
  /** The names of the results it gives, in order. */
  names: readonly string[];
  /** Runs only on CUDA devices (CUDA graphs). */
  cudaOnly?: boolean;
  /** Gives its results through `emit`; any it did not give when it throws count as failed. */
  run(ctx: Ctx, emit: (r: GoldenResult) => void): Promise<void>;
}

const CHECKS: readonly Check[] = [
  {
    fixture: "wan_transformer",
    names: ["Wan transformer: forward", "Wan transformer: releases every tensor"],
    async run(ctx, emit) {
      const before = liveTensorCount();
      emit(await forwardCheck(ctx, "wan_transformer", "Wan transformer: forward"));
      emit(releasedResult("Wan transformer: releases every tensor", before));
    },
  },
  {
    fixture: "wan_transformer",
    names: ["Wan transformer: forward replayed as a CUDA graph on refilled inputs"],
    cudaOnly: true,
    async run(ctx, emit) {
      await withGolden<WanTransformerConfig>(ctx, "wan_transformer", async (g, track) => {
        const model = new WanTransformer(g.config, g.weights);
        const latents = await input(ctx, g, "latents", track);
        const timesteps = await input(ctx, g, "timesteps", track, true);
        const context = await input(ctx, g, "context", track);
        // Captured on other values (the warm-up runs eagerly first), then refilled with the
        // golden inputs: the replay must read what assign() wrote.
        const other = [affine(latents, 0.5, 0.1), affine(timesteps, 0.5, 3), affine(context, -1, 0)] as const;
        track.push(...other);
        const fwd = () => model.forward({ latents: other[0], timesteps: other[1], context: other[2] });
        scope(fwd).dispose();
        const { graph, result } = await captureGraph(ctx.device, () => scope(fwd));
        track.push(result);
        try {
          assign(other[0], latents);
          assign(other[1], timesteps);
          assign(other[2], context);
          graph.replay();
          emit(
            await compare(
              ctx,
              g,
              "Wan transformer: forward replayed as a CUDA graph on refilled inputs",
              "velocity",
              result,
            ),
          );
        } finally {
          graph.dispose();
        }
      });
    },
  },
  {
    fixture: "wan_vae",
    names: ["Wan VAE: chunked encode (5 frames) to normalised latents"],
    async run(ctx, emit) {
      await withGolden<WanVaeConfig>(ctx, "wan_vae", async (g, track) => {
        const vae = new WanVAE(g.config, g.weights);
        const z = vae.encode(await input(ctx, g, "video", track));
        track.push(z);
        emit(
          await compare(
            ctx,
            g,
            "Wan VAE: chunked encode (5 frames) to normalised latents",
            "encode_latents",
            z,
          ),
        );
      });
    },
  },
  {
    fixture: "wan_vae",
    names: ["Wan VAE: decode of 3 latent frames (first, zero-started, cached)"],
    async run(ctx, emit) {
      await withGolden<WanVaeConfig>(ctx, "wan_vae", async (g, track) => {
        const vae = new WanVAE(g.config, g.weights);
        // WanVAE.decode takes normalised latents (it applies latents_std/mean itself).
        const y = vae.decode(await input(ctx, g, "decode_latents_normalized", track));
        track.push(y);
        emit(
          await compare(
            ctx,
            g,
            "Wan VAE: decode of 3 latent frames (first, zero-started, cached)",
            "decode",
            y,
          ),
        );
      });
    },
  },
  {
    fixture: "umt5",
    names: ["umT5 encoder: two prompts of different lengths", "umT5 encoder: padding rows are zero"],
    async run(ctx, emit) {
      await withGolden<UMT5Config>(ctx, "umt5", async (g, track) => {
        const enc = new UMT5Encoder(g.config, g.weights);
        const ids = await input(ctx, g, "input_ids", track);
        const lengths = Array.from(await g.data.get("input.lengths").toFloat32Array());
        const y = enc.encode(ids, lengths);
        track.push(y);
        const [, l, d] = y.shape as [number, number, number];
        const valid = (i: number) => Math.floor(i / d) % l < (lengths[Math.floor(i / (l * d))] as number);
        // The reference holds HF's values for padding rows; Wan (and the engine) zero them.
        emit(
          await compare(
            ctx,
            g,
            "umT5 encoder: two prompts of different lengths",
            "last_hidden_state",
            y,
            valid,
          ),
        );
        const out = await y.toFloat32Array();
        let padding = 0;
        let nonZero = 0;
        let maxAbs = 0;
        out.forEach((v, i) => {
          if (valid(i)) return;
          padding++;
          if (v !== 0) nonZero++;
          maxAbs = Math.max(maxAbs, Math.abs(v)); // NaN stays NaN
        });
        emit({
          name: "umT5 encoder: padding rows are zero",
          error: maxAbs,
          bound: 0,
          pass: nonZero === 0,
          detail: `${nonZero} of ${padding} padding values non-zero (error: their largest magnitude)`,
        });
      });
    },
  },
  {
    fixture: "umt5",
    names: ["umT5 relative-position buckets match torch's float32 answer (32 buckets, 128)"],
    async run(ctx, emit) {
      const g = await openGolden<UMT5Config>(ctx, "umt5");
      try {
        const ref = Array.from(await g.data.get("output.rel_buckets_xxl").toFloat32Array());
        // Row 0 of a [1, 401] table is rel = j − 0 for j < 401; the key/query roles put
        // rel = −200..200 in one row when the query sits at position 200.
        const table = relativePositionBuckets(201, 401, {
          bidirectional: true,
          numBuckets: 32,
          maxDistance: 128,
        });
        const row = Array.from(table.subarray(200 * 401, 201 * 401));
        const n = Math.max(row.length, ref.length);
        let wrong = 0;
        for (let i = 0; i < n; i++) if (row[i] !== ref[i]) wrong++;
        emit({
          name: "umT5 relative-position buckets match torch's float32 answer (32 buckets, 128)",
          error: wrong,
          bound: 0,
          pass: wrong === 0,
          detail: `${wrong} of ${n} buckets differ (${row.length} computed, ${ref.length} in the reference)`,
        });
      } finally {
        g.dispose();
      }
    },
  },
  // Wan2.1 image-to-video: the CLIP image encoder, the I2V / FLF2V transformers, whole runs.
  ...I2V_CHECKS,
];

const ALL_RELEASED = "all checks: release every tensor";

const runsOn = (c: Check, device: string) => !c.cudaOnly || Device.parse(device).kind === "cuda";

// The family checks live in modules of their own; read when the checks run (they import this module).
const allChecks = (): readonly Check[] => [...CHECKS, ...TI2V_CHECKS];

/** Every result name runGoldenChecks gives on `device`, in order. */
export function goldenCheckNames(device: string): string[] {
  return [
    ...allChecks()
      .filter((c) => runsOn(c, device))
      .flatMap((c) => c.names),
    ALL_RELEASED,
  ];
}

/**
 * Runs every golden check on `device` in `dtype`. A check that throws (a missing fixture,
 * a model error) fails with the message in `detail`; nothing is skipped.
 */
export async function runGoldenChecks(opts: GoldenOptions = {}): Promise<GoldenResult[]> {
  const ctx: Ctx = {
    dir: opts.dir ?? goldenDir(),
    device: opts.device ?? "cpu",
    dtype: opts.dtype ?? "f32",
  };
  if (!goldenRunnable(ctx.device, ctx.dtype))
    throw new Error(`the CPU backend computes in f32 only, not ${ctx.dtype}; use a GPU device`);
  const results: GoldenResult[] = [];
  const before = liveTensorCount();
  const give = (r: GoldenResult) => {
    results.push(r);
    opts.onResult?.(r);
  };
  for (const check of allChecks().filter((c) => runsOn(c, ctx.device))) {
    const got: GoldenResult[] = [];
    const emit = (r: GoldenResult) => {
      got.push(r);
      give(r);
    };
    try {
      await check.run(ctx, emit);
    } catch (e) {
      const why = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
      for (const name of check.names)
        if (!got.some((r) => r.name === name))
          emit({ name, error: Number.NaN, bound: Number.NaN, pass: false, detail: `threw ${why}` });
    }
  }
  give(releasedResult(ALL_RELEASED, before, "before the checks"));
  return results;
}

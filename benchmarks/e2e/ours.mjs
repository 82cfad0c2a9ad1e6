// Our side of the end-to-end baseline (benchmarks/e2e/README.md): one part per process, so
// that the VAE's peak memory is that of a fresh process (Device has no peak reset).
//
//   node ours.mjs --part dit|t5|vae --out FILE.json [--device cuda|cpu] [--tiny] [--reps 5] [--vae-dtype f32|bf16]
//     [--wan14b] (the DiT of Wan2.1-T2V-14B instead of 1.3B's)
//
// dit: WanTransformer.forward on a batch of 2 (both guidance branches), bf16, latent
//      [2, 21, 60, 104, 16] (channels-last), text [2, 512, 4096]; warm-up, then the median of
//      --reps calls, each timed with `await device.synchronize()` on the host clock; on CUDA also
//      the same call captured as a CUDA graph and replayed (and checked equal to eager).
// t5:  UMT5Encoder.encode of one 512-token prompt, bf16: all 512 positions (trimPadding off,
//      the work Hugging Face does), and the pipeline's default (padding trimmed, 16 real tokens).
// vae: WanVAE.decode of a normalised latent [1, 21, 60, 104, 16], f32 (as the pipeline runs it by
//      default) or bf16 (--vae-dtype bf16: the implicit-GEMM conv kernel's dtype), chunked one
//      latent frame at a time; peak = the allocator's high-water mark of bytes in use.
import { writeFileSync } from "node:fs";
import {
  randomUMT5Weights,
  randomWanTransformerWeights,
  randomWanVaeWeights,
  UMT5_TINY,
  UMT5_XXL,
  UMT5Encoder,
  WAN_TINY,
  WAN_VAE_TINY,
  WAN21_T2V_1_3B,
  WAN21_T2V_14B,
  WAN21_VAE,
  WanTransformer,
  WanVAE,
} from "@tessera/core";
import { captureGraph, Device, scope, Tensor } from "@tessera/native";
import { randnAs as randnOn, timeRuns } from "../lib/device-timing.mjs";

const args = process.argv.slice(2);
const arg = (name, def) => (args.includes(name) ? args[args.indexOf(name) + 1] : def);
const part = arg("--part");
const outPath = arg("--out");
const dev = Device.parse(arg("--device", "cuda"));
const tiny = args.includes("--tiny");
const reps = Number(arg("--reps", 5));
const warm = Number(arg("--warmup", 1));
const dtype = tiny && dev.name === "cpu" ? "f32" : "bf16";
const vaeDtype = arg("--vae-dtype", "f32");
if (vaeDtype !== "f32" && vaeDtype !== "bf16")
  throw new Error(`--vae-dtype must be f32 or bf16, got ${vaeDtype}`);

// Full shapes: 832x480, 81 frames -> latent 21x60x104 (z 16); text 512 tokens.
const S = tiny
  ? { f: 3, h: 8, w: 8, text: 16, promptLen: 5, dit: WAN_TINY, t5: UMT5_TINY, vae: WAN_VAE_TINY }
  : { f: 21, h: 60, w: 104, text: 512, promptLen: 16, dit: WAN21_T2V_1_3B, t5: UMT5_XXL, vae: WAN21_VAE };
if (tiny) S.dit = { ...S.dit, text_dim: S.t5.d_model };
else if (args.includes("--wan14b")) S.dit = WAN21_T2V_14B;

const rec = { part, wan14b: args.includes("--wan14b"), device: dev.info(), dtype, tiny, reps, warmup: warm };
const save = () => writeFileSync(outPath, `${JSON.stringify(rec, null, 1)}\n`);

const time = (fn, n, w) => timeRuns(dev, fn, n, w);

async function finite(t) {
  const v = await t.toFloat32Array();
  let sumsq = 0;
  for (const x of v) {
    if (!Number.isFinite(x)) return { finite: false };
    sumsq += x * x;
  }
  return { finite: true, rms: Math.sqrt(sumsq / v.length) };
}

const randnAs = (shape, seed, dt) => randnOn(dev, shape, seed, dt);

const t0 = performance.now();
if (part === "dit") {
  const w = randomWanTransformerWeights(S.dit, { seed: 2, device: dev, dtype });
  const model = new WanTransformer(S.dit, w);
  const latents = randnAs([2, S.f, S.h, S.w, S.dit.in_channels], 3, dtype);
  const timesteps = Tensor.from([500, 500], [2], { device: dev });
  const context = randnAs([2, S.text, S.dit.text_dim], 4, dtype);
  await dev.synchronize();
  rec.setupMs = performance.now() - t0;
  rec.shape = { latents: latents.shape, context: context.shape };
  const fwd = () => model.forward({ latents, timesteps, context });
  const y = fwd();
  rec.check = await finite(y);
  y.dispose();
  save();
  rec.ms = await time(fwd, reps, warm);
  rec.memory = dev.memoryStats();
  console.log(
    `ours dit: median ${rec.ms.median.toFixed(1)} ms (${rec.ms.all.map((x) => x.toFixed(0)).join(", ")})`,
  );
  // The same step captured once as a CUDA graph (what the pipeline replays from its second
  // step on), timed the same way: one replay per call. Its output must equal the eager one.
  if (dev.kind === "cuda") {
    const tc = performance.now();
    const { graph, result } = await captureGraph(dev, () => scope(fwd));
    rec.graphCaptureMs = performance.now() - tc;
    graph.replay();
    const eager = fwd();
    const [a, b] = [await result.toFloat32Array(), await eager.toFloat32Array()];
    eager.dispose();
    rec.graphEqualsEager = a.every((x, i) => x === b[i] || (Number.isNaN(x) && Number.isNaN(b[i])));
    rec.graph = await time(
      () => {
        graph.replay();
        return { dispose() {} };
      },
      reps,
      warm,
    );
    graph.dispose();
    result.dispose();
    console.log(
      `ours dit as a CUDA graph: median ${rec.graph.median.toFixed(1)} ms (capture ${rec.graphCaptureMs.toFixed(0)} ms; equal to eager: ${rec.graphEqualsEager})`,
    );
  }
  latents.dispose();
  context.dispose();
  timesteps.dispose();
  w.dispose();
} else if (part === "t5") {
  const w = randomUMT5Weights(S.t5, { seed: 4, device: dev, dtype });
  const enc = new UMT5Encoder(S.t5, w);
  const idsArr = Array.from({ length: S.text }, (_, i) => 2 + ((i * 7919) % (S.t5.vocab_size - 2)));
  const ids = Tensor.from(idsArr, [1, S.text], { dtype: "i32", device: dev });
  await dev.synchronize();
  rec.setupMs = performance.now() - t0;
  const full = () => enc.encode(ids, [S.text], { trimPadding: false });
  const y = full();
  rec.check = await finite(y);
  y.dispose();
  rec.full = await time(full, reps, warm);
  rec.trimmed = await time(() => enc.encode(ids, [S.promptLen]), reps, warm);
  rec.promptLen = S.promptLen;
  rec.memory = dev.memoryStats();
  console.log(
    `ours t5: 512 positions ${rec.full.median.toFixed(2)} ms; trimmed to ${S.promptLen}: ${rec.trimmed.median.toFixed(2)} ms`,
  );
  ids.dispose();
  w.dispose();
} else if (part === "vae") {
  rec.vaeDtype = vaeDtype;
  const w = randomWanVaeWeights(S.vae, { seed: 5, device: dev, dtype: vaeDtype });
  const vae = new WanVAE(S.vae, w);
  const latent = randnAs([1, S.f, S.h, S.w, S.vae.z_dim], 6, vaeDtype);
  const small = randnAs([1, 2, S.h, S.w, S.vae.z_dim], 7, vaeDtype);
  await dev.synchronize();
  rec.setupMs = performance.now() - t0;
  // Warm-up on two latent frames (every layer, both cache states); its peak is below the full decode's.
  const tw = performance.now();
  vae.decode(small).dispose();
  await dev.synchronize();
  rec.warmupMs = performance.now() - tw;
  small.dispose();
  rec.memoryBefore = dev.memoryStats();
  const t = performance.now();
  const y = vae.decode(latent);
  await dev.synchronize();
  rec.ms = { median: performance.now() - t, all: [performance.now() - t] };
  rec.memoryAfter = dev.memoryStats();
  rec.outShape = y.shape;
  rec.peakBytes = rec.memoryAfter.peak;
  rec.peakDeltaBytes = rec.memoryAfter.peak - rec.memoryBefore.inUse;
  rec.check = await finite(y);
  y.dispose();
  console.log(
    `ours vae (${vaeDtype}): ${rec.ms.median.toFixed(0)} ms, peak ${(rec.peakBytes / 2 ** 30).toFixed(2)} GiB (in use before ${(rec.memoryBefore.inUse / 2 ** 30).toFixed(2)} GiB)`,
  );
  latent.dispose();
  w.dispose();
} else {
  throw new Error(`--part must be dit, t5 or vae, got ${part}`);
}
save();

// Wan2.2 TI2V-5B with random weights: the DiT step at 1280x704, 121 frames (latent 31x44x80,
// 27,280 tokens, both guidance branches), the Wan2.2 VAE decode of that latent, and a short
// whole image-to-video generation. One part per process (Device has no peak reset, so each
// part's peak memory is a fresh process's). Run by scripts/gpu/ti2v-bench.sh on the GPU host;
// here with --tiny --device cpu as a smoke test.
//
//   node ti2v.mjs --part dit|vae|generation --out FILE.json [--device cuda|cpu] [--tiny]
//                 [--reps 3] [--vae-dtype bf16|f32] [--steps 3]
//
// dit:        WanTransformer.forward, batch 2, bf16, latents [2, 31, 44, 80, 48], text
//             [2, 512, 4096]: with one timestep per sample (text-to-video) and with one per
//             token frame (image-to-video: the first frame's tokens at 0), eager (median of
//             --reps after a warm-up) and, on CUDA, the per-frame step captured as a CUDA graph.
// vae:        WanVAE.decode (Wan2.2: z48, patchify 2) of a normalised latent [1, 31, 44, 80, 48]
//             to 121 frames of 1280x704, chunked one latent frame at a time, in --vae-dtype
//             (default bf16); peak = the allocator's high-water mark; also the encode of one
//             1280x704 image (what image-to-video conditions on).
// generation: WanPipeline.generate image-to-video with umT5-XXL, --steps UniPC steps,
//             guidance 5, VAE in --vae-dtype: timings by stage and the process's peak memory.
import { writeFileSync } from "node:fs";
import {
  randomWanComponents,
  randomWanTransformerWeights,
  randomWanVaeWeights,
  WAN_TINY,
  WAN22_TI2V_5B,
  WAN22_VAE,
  WAN22_VAE_TINY,
  WanPipeline,
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
const reps = Number(arg("--reps", 3));
const steps = Number(arg("--steps", 3));
const dtype = dev.kind === "cpu" ? "f32" : "bf16";
const vaeDtype = arg("--vae-dtype", dev.kind === "cpu" ? "f32" : "bf16");
if (!outPath) throw new Error("--out FILE.json is required");

// 1280x704, 121 frames -> latent 31x44x80 (z 48); text 512 tokens of 4096.
const S = tiny
  ? {
      w: 64,
      h: 64,
      frames: 9,
      text: 16,
      dit: { ...WAN_TINY, in_channels: 8, out_channels: 8 },
      vae: WAN22_VAE_TINY,
    }
  : { w: 1280, h: 704, frames: 121, text: 512, dit: WAN22_TI2V_5B, vae: WAN22_VAE };
const lat = [1 + (S.frames - 1) / 4, S.h / 16, S.w / 16];

const rec = {
  part,
  date: new Date().toISOString(),
  commit: process.env.COMMIT ?? "unknown",
  device: dev.info(),
  config: tiny ? "tiny-ti2v" : "wan2.2-ti2v-5b (random weights)",
  dtype,
  tiny,
  size: { width: S.w, height: S.h, frames: S.frames, latent: lat },
};
const save = () => writeFileSync(outPath, `${JSON.stringify(rec, null, 1)}\n`);
const GiB = 2 ** 30;

const time = (fn, n, w = 1) => timeRuns(dev, fn, n, w);

async function finite(t) {
  const v = await t.toFloat32Array();
  for (const x of v) if (!Number.isFinite(x)) return false;
  return true;
}

const randnAs = (shape, seed, dt) => randnOn(dev, shape, seed, dt);

const t0 = performance.now();
if (part === "dit") {
  const w = randomWanTransformerWeights(S.dit, { seed: 2, device: dev, dtype });
  const model = new WanTransformer(S.dit, w);
  const latents = randnAs([2, ...lat, S.dit.in_channels], 3, dtype);
  const context = randnAs([2, S.text, S.dit.text_dim], 4, dtype);
  const perSample = Tensor.from([500, 500], [2], { device: dev });
  const frames = lat[0];
  const perFrame = Tensor.from(
    [0, 1].flatMap(() => Array.from({ length: frames }, (_, i) => (i === 0 ? 0 : 500))),
    [2, frames],
    { device: dev },
  );
  await dev.synchronize();
  rec.setupMs = performance.now() - t0;
  rec.tokens = frames * (lat[1] / 2) * (lat[2] / 2);
  const fwd = (timesteps) => () => model.forward({ latents, timesteps, context });
  const y = fwd(perFrame)();
  rec.finite = await finite(y);
  y.dispose();
  save();
  rec.stepPerSample = await time(fwd(perSample), reps);
  console.log(`dit, one timestep per sample: median ${rec.stepPerSample.median.toFixed(1)} ms`);
  save();
  rec.stepPerFrame = await time(fwd(perFrame), reps);
  console.log(`dit, one timestep per token frame: median ${rec.stepPerFrame.median.toFixed(1)} ms`);
  save();
  if (dev.kind === "cuda") {
    const tc = performance.now();
    const { graph, result } = await captureGraph(dev, () => scope(fwd(perFrame)));
    rec.graphCaptureMs = performance.now() - tc;
    rec.stepPerFrameGraph = await time(() => {
      graph.replay();
      return { dispose() {} };
    }, reps);
    console.log(
      `dit, per token frame, as a CUDA graph: median ${rec.stepPerFrameGraph.median.toFixed(1)} ms`,
    );
    graph.dispose();
    result.dispose();
  }
  rec.memory = dev.memoryStats();
  rec.peakGiB = rec.memory.peak / GiB;
  for (const t of [latents, context, perSample, perFrame]) t.dispose();
  w.dispose();
} else if (part === "vae") {
  rec.vaeDtype = vaeDtype;
  const w = randomWanVaeWeights(S.vae, { seed: 5, device: dev, dtype: vaeDtype });
  const vae = new WanVAE(S.vae, w);
  const latent = randnAs([1, ...lat, S.vae.z_dim], 6, vaeDtype);
  const small = randnAs([1, 2, lat[1], lat[2], S.vae.z_dim], 7, vaeDtype);
  const image = randnAs([1, 1, S.h, S.w, 3], 8, vaeDtype);
  await dev.synchronize();
  rec.setupMs = performance.now() - t0;
  // Warm-up on two latent frames (every layer, both cache states); its peak is below the full decode's.
  const tw = performance.now();
  vae.decode(small).dispose();
  await dev.synchronize();
  rec.warmupMs = performance.now() - tw;
  small.dispose();
  rec.encodeImage = await time(() => vae.encode(image), 1);
  console.log(`vae encode of one ${S.w}x${S.h} image: ${rec.encodeImage.median.toFixed(0)} ms`);
  rec.memoryBefore = dev.memoryStats();
  save();
  const t = performance.now();
  const y = vae.decode(latent, {
    onChunk: (i, n) => i % 10 === 0 && console.log(`decoded latent frame ${i + 1}/${n}`),
  });
  await dev.synchronize();
  rec.decodeMs = performance.now() - t;
  rec.memoryAfter = dev.memoryStats();
  rec.outShape = y.shape;
  rec.peakGiB = rec.memoryAfter.peak / GiB;
  rec.peakAboveBeforeGiB = (rec.memoryAfter.peak - rec.memoryBefore.inUse) / GiB;
  rec.finite = await finite(y);
  y.dispose();
  console.log(
    `vae decode (${vaeDtype}) -> [${rec.outShape.join(", ")}]: ${rec.decodeMs.toFixed(0)} ms, peak ${rec.peakGiB.toFixed(2)} GiB (${rec.peakAboveBeforeGiB.toFixed(2)} GiB above the weights and latent)`,
  );
  for (const x of [latent, image]) x.dispose();
  w.dispose();
} else if (part === "generation") {
  rec.vaeDtype = vaeDtype;
  rec.steps = steps;
  const c = randomWanComponents({
    config: tiny ? "tiny-ti2v" : "wan2.2-ti2v-5b",
    seed: 2,
    device: dev,
    dtype,
    vaeDtype,
  });
  const pipe = new WanPipeline(c);
  const image = randnAs([1, 1, S.h, S.w, 3], 9, "f32");
  await dev.synchronize();
  rec.setupMs = performance.now() - t0;
  rec.memoryAfterWeights = dev.memoryStats();
  save();
  const stepMs = [];
  let last = 0;
  const r = await pipe.generate({
    prompt: "a red ball bounces on a wooden floor",
    negativePrompt: "blurry",
    image,
    seed: 3,
    width: S.w,
    height: S.h,
    frames: S.frames,
    steps,
    guidance: 5,
    onProgress: (p) => {
      stepMs.push(p.elapsed - last);
      last = p.elapsed;
      console.log(`step ${p.step}/${p.total} ${(p.elapsed / 1000).toFixed(1)} s`);
    },
  });
  rec.timings = r.timings;
  rec.stepMs = stepMs;
  rec.stepGraph = r.stepGraph;
  rec.videoShape = r.video.shape;
  rec.finite = await finite(r.latents);
  rec.memory = dev.memoryStats();
  rec.peakGiB = rec.memory.peak / GiB;
  console.log(JSON.stringify({ timings: r.timings, peakGiB: rec.peakGiB }, null, 1));
  r.video.dispose();
  r.latents.dispose();
  image.dispose();
  pipe.dispose();
} else {
  throw new Error(`--part must be dit, vae or generation, got ${part}`);
}
rec.totalMs = performance.now() - t0;
save();

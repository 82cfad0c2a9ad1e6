// Multi-GPU correctness check and step-time benchmark, one process per GPU (started by
// scripts/gpu/multigpu.sh with torchrun's variables; without WORLD_SIZE it is one rank).
//
//   node multigpu.mjs check --out FILE.json
//     NCCL collectives against values computed on the host; the sequence-parallel DiT
//     (Ulysses, ring: WanTransformer.forwardSplit) against the one-GPU forward on the same
//     GPU, tiny in f32 and the Wan2.1-1.3B geometry (2 layers) in bf16 at 832x480x81; the
//     split VAE decode against WanVAE.decode; WanPipeline.generate under a parallel plan
//     (ring, cfg) against the same call on one device (tiny random model).
//     Exit code 1 when a check fails. --tiny: the tiny shapes only (a CPU smoke run with --device cpu).
//   node multigpu.mjs bench --config 1.3b|14b --size 832x480 [--frames 81] [--layers L]
//                           [--strategy auto|cfg|ulysses|ring] [--reps 3] [--warmup 1] --out FILE.json
//     One denoising step (both guidance branches, guidance 5) of random bf16 weights:
//     parallelVelocity (what `tessera generate --gpus N` runs), timed between barriers.
//     --layers L < num_layers measures L blocks; `extrapolated_ms` scales the blocks to all
//     layers (the embedding and head are a fixed, small part).
// Rank 0 writes FILE.json; every rank prints its errors.
import { writeFileSync } from "node:fs";
import {
  decodeSpatialParallel,
  distributedEnv,
  InProcessGroup,
  NcclCommunicator,
  parallelPlan,
  parallelVelocity,
  pickStrategy,
  randomWanComponents,
  randomWanTransformerWeights,
  randomWanVaeWeights,
  sequenceSplit,
  WAN_TINY,
  WAN_VAE_TINY,
  WAN21_T2V_1_3B,
  WAN21_T2V_14B,
  WAN21_VAE,
  WanPipeline,
  WanTransformer,
  WanVAE,
} from "@tessera/core";
import { cudaStatus, Device, full, ncclStatus, randn, Tensor } from "@tessera/native";

const args = process.argv.slice(2);
const mode = args[0];
const arg = (name, def) => (args.includes(name) ? args[args.indexOf(name) + 1] : def);
const outPath = arg("--out");
const env = distributedEnv();
const world = env?.worldSize ?? 1;

let comm;
let device;
if (world > 1) {
  ({ comm, device } = await NcclCommunicator.fromEnv());
} else {
  comm = new InProcessGroup(1).comm(0);
  device = Device.parse(arg("--device", "cuda")); // --device cpu: a smoke run here
}
const rank = comm.rank;
const log = (s) => console.error(`[rank ${rank}] ${s}`);
const rec = {
  mode,
  worldSize: world,
  device: device.info(),
  nccl: ncclStatus(),
  cudaCount: cudaStatus().count,
  commit: process.env.COMMIT ?? "unknown",
  date: new Date().toISOString(),
};
const save = () => {
  if (rank === 0 && outPath) writeFileSync(outPath, `${JSON.stringify(rec, null, 1)}\n`);
};

async function relErr(a, b) {
  const x = await a.toFloat32Array();
  const y = await b.toFloat32Array();
  if (x.length !== y.length) return Number.POSITIVE_INFINITY;
  let num = 0;
  let den = 0;
  for (let i = 0; i < y.length; i++) {
    const d = Math.abs(x[i] - y[i]);
    num = Number.isNaN(d) ? Number.POSITIVE_INFINITY : Math.max(num, d);
    den = Math.max(den, Math.abs(y[i]));
  }
  return den === 0 ? num : num / den;
}

/** Every rank's numbers, on rank 0 (an all-gather of one f32 row per rank). */
async function gatherNumbers(values) {
  const t = Tensor.from(values, [1, values.length], { device });
  const all = await comm.allGather(t, 0);
  const v = Array.from(await all.toFloat32Array());
  t.dispose();
  all.dispose();
  return Array.from({ length: world }, (_, r) => v.slice(r * values.length, (r + 1) * values.length));
}

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

async function check() {
  rec.checks = [];
  const add = async (name, err, tol) => {
    const all = await gatherNumbers([err]);
    const worst = Math.max(...all.map((r) => r[0]));
    const pass = Number.isFinite(worst) && worst <= tol;
    rec.checks.push({ name, worldSize: world, maxRelErr: worst, perRank: all.map((r) => r[0]), tol, pass });
    log(`${pass ? "ok  " : "FAIL"} ${name}: ${worst.toExponential(2)} (tol ${tol})`);
    save();
  };

  // 1. Collectives, against host values: rank r's tensor holds 1000·r + index.
  const rt = (shape, r) => {
    const n = shape.reduce((a, b) => a * b, 1);
    return Tensor.from(
      Array.from({ length: n }, (_, i) => 1000 * r + i),
      shape,
      { device },
    );
  };
  {
    const x = rt([2, 3 * world, 4], rank);
    const a2a = await comm.allToAll(x, { splitDim: 1, concatDim: 0 }); // [2N, 3, 4]
    const want = [];
    for (let j = 0; j < world; j++)
      for (let i = 0; i < 2; i++)
        for (let c = 0; c < 3; c++)
          for (let k = 0; k < 4; k++) want.push(1000 * j + i * 3 * world * 4 + (rank * 3 + c) * 4 + k);
    const got = Array.from(await a2a.toFloat32Array());
    await add("allToAll", got.length === want.length && got.every((v, i) => v === want[i]) ? 0 : 1, 0);
    // Unequal shards along dim 1 (rank r holds r + 1 rows).
    const y = rt([2, rank + 1, 3], rank);
    const ag = await comm.allGather(y, 1);
    const wantAg = [];
    for (let i = 0; i < 2; i++)
      for (let j = 0; j < world; j++)
        for (let r = 0; r < j + 1; r++)
          for (let c = 0; c < 3; c++) wantAg.push(1000 * j + (i * (j + 1) + r) * 3 + c);
    const gotAg = Array.from(await ag.toFloat32Array());
    await add(
      "allGather (unequal shards)",
      gotAg.every((v, i) => v === wantAg[i]) && gotAg.length === wantAg.length ? 0 : 1,
      0,
    );
    const ring = await comm.ringShift(x, 1);
    const from = (rank - 1 + world) % world;
    const gotRing = Array.from(await ring.toFloat32Array());
    await add("ringShift", gotRing.every((v, i) => v === 1000 * from + i) ? 0 : 1, 0);
    const sum = await comm.allReduce(x, "sum");
    const gotSum = Array.from(await sum.toFloat32Array());
    const base = (world * (world - 1)) / 2;
    await add("allReduce sum", gotSum.every((v, i) => v === 1000 * base + world * i) ? 0 : 1, 0);
    await comm.barrier();
    for (const t of [x, a2a, y, ag, ring, sum]) t.dispose();
  }

  // 2. The DiT: N ranks vs this GPU alone.
  const dit = async (label, cfg, dtype, shape, tol) => {
    const weights = randomWanTransformerWeights(cfg, { seed: 5, device, dtype });
    const model = new WanTransformer(cfg, weights);
    const latents = randn(shape, { seed: 1, device, dtype });
    const context = randn([1, 16, cfg.text_dim], { seed: 2, device, dtype });
    const timesteps = full([1], 700, { device });
    const ref = model.forward({ latents, timesteps, context });
    const modes = ["ring"];
    if (cfg.num_attention_heads % world === 0) modes.unshift("ulysses");
    for (const m of modes) {
      // The tokens split: what generate --gpus runs.
      const all = await model.forwardSplit({ latents, timesteps, context }, sequenceSplit(comm, cfg, m));
      await add(`${label} ${m}, tokens split`, await relErr(all, ref), tol);
      all.dispose();
    }
    for (const t of [ref, latents, context, timesteps]) t.dispose();
    weights.dispose();
  };
  await dit(
    "DiT tiny f32 (4 heads), 5 frames",
    { ...WAN_TINY, num_attention_heads: 4, attention_head_dim: 12 },
    "f32",
    [1, 5, 8, 12, 16],
    1e-4,
  );
  const tinyOnly = args.includes("--tiny"); // a CPU smoke run: no full-size shapes
  if (!tinyOnly)
    await dit(
      "DiT Wan2.1-1.3B geometry (2 layers) bf16, 832x480x81",
      { ...WAN21_T2V_1_3B, num_layers: 2 },
      "bf16",
      [1, 21, 60, 104, 16],
      3e-2,
    );

  // 3. The VAE decode split in rows vs WanVAE.decode (f32, as the pipeline runs it).
  const vaes = [["VAE tiny", WAN_VAE_TINY, [1, 3, 16, 12, 4]]];
  if (!tinyOnly) vaes.push(["VAE Wan2.1, 3 latent frames at 256x256", WAN21_VAE, [1, 3, 32, 32, 16]]);
  for (const [label, cfg, shape] of vaes) {
    const weights = randomWanVaeWeights(cfg, { seed: 1, device });
    const vae = new WanVAE(cfg, weights);
    const z = randn(shape, { seed: 3, device });
    const ref = vae.decode(z);
    const out = await decodeSpatialParallel(vae, z, comm);
    await add(`${label} split in ${world} bands`, await relErr(out, ref), 1e-4);
    for (const t of [z, ref, out]) t.dispose();
    weights.dispose();
  }

  // 4. The whole text-to-video pipeline (tiny random model, f32).
  {
    const pipe = new WanPipeline(randomWanComponents({ seed: 3, device: device.name }));
    const opts = {
      prompt: "a red ball bounces",
      width: 64,
      height: 64,
      frames: 9,
      steps: 4,
      guidance: 5,
      seed: 7,
    };
    const ref = await pipe.generate(opts);
    const strategies = ["ring", ...(world === 2 ? ["cfg"] : [])];
    for (const strategy of strategies) {
      const got = await pipe.generate(opts, parallelPlan(comm, { strategy }));
      await add(`generate tiny ${strategy}`, await relErr(got.video, ref.video), 1e-3);
      got.video.dispose();
      got.latents.dispose();
    }
    ref.video.dispose();
    ref.latents.dispose();
    pipe.dispose();
  }
  rec.pass = rec.checks.every((c) => c.pass);
  save();
  return rec.pass ? 0 : 1;
}

async function bench() {
  const name = arg("--config", "1.3b");
  const base = name === "14b" ? WAN21_T2V_14B : name === "tiny" ? WAN_TINY : WAN21_T2V_1_3B;
  const layers = Number(arg("--layers", base.num_layers));
  const cfg = { ...base, num_layers: layers };
  const [w, h] = arg("--size", "832x480").split("x").map(Number);
  const frames = Number(arg("--frames", 81));
  const reps = Number(arg("--reps", 3));
  const warm = Number(arg("--warmup", 1));
  const guidance = 5;
  const lf = 1 + (frames - 1) / 4;
  const shape = [1, lf, h / 8, w / 8, 16];
  const strategyArg = arg("--strategy", "auto");
  const strategy =
    strategyArg === "auto"
      ? world === 1
        ? "ring"
        : pickStrategy(world, guidance, cfg.num_attention_heads)
      : strategyArg;
  Object.assign(rec, {
    config: name,
    layers,
    numLayers: base.num_layers,
    size: `${w}x${h}`,
    frames,
    latent: shape,
    tokens: lf * (h / 16) * (w / 16),
    strategy: world === 1 ? "single" : strategy,
    guidance,
    dtype: "bf16",
    reps,
    warmup: warm,
  });
  save();
  const t0 = performance.now();
  const dtype = device.kind === "cpu" ? "f32" : "bf16";
  rec.dtype = dtype;
  const weights = randomWanTransformerWeights(cfg, { seed: 1, device, dtype });
  const model = new WanTransformer(cfg, weights);
  const cond = randn([1, 512, cfg.text_dim], { seed: 2, device, dtype });
  const uncond = randn([1, 512, cfg.text_dim], { seed: 3, device, dtype });
  const latents = randn(shape, { seed: 4, device });
  await device.synchronize();
  rec.setupMs = performance.now() - t0;
  const velocity = parallelVelocity(model, comm, { strategy, cond, uncond, guidance });
  const ms = [];
  for (let i = 0; i < warm + reps; i++) {
    await comm.barrier();
    const t = performance.now();
    const v = await velocity(latents, 500);
    await device.synchronize();
    await comm.barrier();
    const dt = performance.now() - t;
    v.dispose();
    if (i >= warm) ms.push(dt);
    log(`${i < warm ? "warm-up" : "step"} ${dt.toFixed(0)} ms`);
  }
  const all = await gatherNumbers([median(ms), device.memoryStats().peak]);
  rec.stepMs = { median: median(ms), all: ms };
  rec.perRank = all.map(([m, peak]) => ({ medianMs: m, peakBytes: peak }));
  rec.extrapolatedMs = layers < base.num_layers ? (median(ms) * base.num_layers) / layers : median(ms);
  velocity.dispose();
  for (const t of [cond, uncond, latents]) t.dispose();
  weights.dispose();
  save();
  return 0;
}

let code = 1;
try {
  if (mode === "check") code = await check();
  else if (mode === "bench") code = await bench();
  else {
    console.error("usage: node multigpu.mjs check|bench [options] --out FILE.json");
    code = 2;
  }
} catch (e) {
  rec.error = String(e?.stack ?? e);
  log(`error: ${rec.error}`);
  save();
  code = 1;
} finally {
  if (world > 1 && code === 0) await comm.destroy();
}
process.exit(code);

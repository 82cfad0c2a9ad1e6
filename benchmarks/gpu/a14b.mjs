// Wan2.2 A14B on one GPU with random weights (benchmark, not a test): two experts of
// Wan2.1-T2V-14B's geometry in bf16, at 832x480, 81 frames, both guidance branches in one
// batch. Only the running expert is on the GPU (the way a 80 GB card runs A14B with
// umT5-XXL beside it): the second expert is drawn first and parked in page-locked host
// memory, then the first is drawn. Measured, in one process:
//   - each expert's step (eager, then as a CUDA graph), median of STEPS timed steps;
//   - the expert swap: the first park (a device-to-host copy), the first hand-over (the
//     running expert copied out, the idle one in) and the steady hand-over (the host copy
//     is current, so only the idle expert is copied in), and the bus rate of each;
//   - peak device memory (the allocator's high-water mark) and what the estimate says.
// PART=generate instead runs a whole WanPipeline.generate() (umT5-XXL and the VAE too, random
// weights) over STEPS steps that cross the boundary (default 4: sigmas 1, 0.7, 0.3, 0.15,
// shift 12, two steps per expert), with the swap, and records its timings.
// Run on the GPU host by scripts/gpu/a14b-bench.sh; writes a14b.json to $OUT (default .).
// Env: DEVICE (cuda), STEPS, W, H, F, GRAPH=0 (no graph timing), RESIDENT=1 (both experts on
// the device: no swap; needs the memory).
import { writeFileSync } from "node:fs";
import {
  ExpertResidency,
  estimateMemory,
  guidedVelocity,
  randomModelConfigs,
  randomWanComponents,
  randomWanTransformerWeights,
  StepGraph,
  umt5ParameterCount,
  WanPipeline,
  WanTransformer,
} from "@tessera/core";
import { Device } from "@tessera/native";
import { guidedStepInputs, median } from "../lib/device-timing.mjs";

const out = process.env.OUT ?? ".";
const part = process.env.PART ?? "steps";
const dev = Device.parse(process.env.DEVICE ?? "cuda");
const size = {
  width: Number(process.env.W ?? 832),
  height: Number(process.env.H ?? 480),
  frames: Number(process.env.F ?? 81),
};
const graphToo = process.env.GRAPH !== "0";
const resident = process.env.RESIDENT === "1";
// CONFIG=tiny-a14b DEVICE=cpu W=32 H=32 F=5: a smoke run of this script on the CPU (f32).
const cfgName = process.env.CONFIG ?? "wan2.2-t2v-a14b";
const cfg = randomModelConfigs(cfgName);
const dtype = dev.kind === "cpu" ? "f32" : "bf16";
const guidance = [4, 3]; // Wan2.2 T2V-A14B: 4 on the high-noise expert, 3 on the low-noise one
const GiB = 2 ** 30;
const record = {
  date: new Date().toISOString(),
  commit: process.env.COMMIT ?? "unknown",
  device: dev.info(),
  config: `${cfgName} (two experts, random weights)`,
  part,
  dtype,
  ...size,
  guidance,
  boundaryRatio: cfg.boundaryRatio,
  expertSwap: !resident,
};
const save = () => writeFileSync(`${out}/a14b.json`, `${JSON.stringify(record, null, 1)}\n`);
const mem = () => {
  const m = dev.memoryStats();
  return { inUseGiB: m.inUse / GiB, peakGiB: m.peak / GiB, cachedGiB: m.cached / GiB };
};
const expertBytes = (store) => store.names().reduce((n, k) => n + store.get(k).nbytes, 0);

record.estimate = estimateMemory({
  transformer: cfg.transformer,
  transformer2: cfg.transformer2,
  expertSwap: !resident,
  vae: cfg.vae,
  textParams: umt5ParameterCount(cfg.textEncoder),
  dtype,
  device: dev.kind,
  ...size,
  guidance: 4,
});
save();

if (part === "generate") await generate();
else await steps();

async function steps() {
  const timed = Number(process.env.STEPS ?? 2);
  const t0 = performance.now();
  // The second expert first, parked in host memory unless both stay resident.
  const w2 = randomWanTransformerWeights(cfg.transformer2, { seed: 5, device: dev, dtype });
  // Parks it; `park` holds the host copy (the later residency takes it over at the first swap).
  const park = new ExpertResidency([w2], dev, !resident, [true]);
  await dev.synchronize();
  record.drawSecondMs = performance.now() - t0;
  record.expertGiB = expertBytes(w2) / GiB;
  if (!resident) {
    record.swap = { firstParkMs: await park.offload(0) };
    record.swap.firstParkGBps = expertBytes(w2) / 1e6 / record.swap.firstParkMs;
  }
  const t1 = performance.now();
  const w1 = randomWanTransformerWeights(cfg.transformer, { seed: 2, device: dev, dtype });
  await dev.synchronize();
  record.drawFirstMs = performance.now() - t1;
  record.memoryAfterWeights = mem();
  save();

  const experts = [new WanTransformer(cfg.transformer, w1), new WanTransformer(cfg.transformer2, w2)];
  // Both stores under one residency: the first on the device, the second on the host.
  const r = new ExpertResidency([w1, w2], dev, !resident, [true, resident]);
  const { latents, context } = guidedStepInputs(dev, cfg.transformer, size, dtype);
  record.steps = [];
  for (const e of [0, 1]) {
    if (e === 1) {
      const ms = await r.ensure(1);
      if (!resident) {
        record.swap.firstHandOverMs = ms;
        record.swap.firstHandOverGBps = (2 * expertBytes(w1)) / 1e6 / ms;
      }
    }
    const t = e === 0 ? 950 : 500;
    const eager = [];
    for (let i = 0; i < timed + 1; i++) {
      const s = performance.now();
      const v = guidedVelocity(experts[e], latents, t, context, guidance[e], dtype);
      await dev.synchronize();
      eager.push(performance.now() - s);
      v.dispose();
      console.log(`expert ${e} eager step ${i}: ${(eager.at(-1) / 1000).toFixed(2)} s`);
    }
    const step = { expert: e, eagerMs: median(eager.slice(1)), eagerAll: eager };
    if (graphToo && dev.kind === "cuda") {
      const g = new StepGraph(experts[e]);
      const replays = [];
      for (let i = 0; i < timed + 1; i++) {
        const s = performance.now();
        const got = await g.velocity(latents, t, context, guidance[e], dtype);
        await dev.synchronize();
        if (got.replayed) replays.push(performance.now() - s);
        got.v.dispose();
      }
      step.graphMs = replays.length ? median(replays) : null;
      step.graphAll = replays;
      step.graphFailure = g.failure();
      g.dispose();
    }
    step.memory = mem();
    record.steps.push(step);
    save();
  }
  if (!resident) {
    // Back to the first expert: the second's host copy is current, so only the first is copied in.
    const ms = await r.ensure(0);
    record.swap.steadyHandOverMs = ms;
    record.swap.steadyHandOverGBps = expertBytes(w1) / 1e6 / ms;
    record.swap.swaps = r.swaps;
  }
  record.memory = mem();
  save();
  console.log(
    JSON.stringify(
      { steps: record.steps.map((s) => [s.eagerMs, s.graphMs]), swap: record.swap, memory: record.memory },
      null,
      1,
    ),
  );
  for (const t of [latents, context]) t.dispose();
  w1.dispose();
  w2.dispose();
  r.dispose();
  park.dispose();
}

async function generate() {
  const t0 = performance.now();
  // The second expert parked on the host before the first (with umT5-XXL and the VAE) is
  // drawn, so the two never share the device.
  const w2 = randomWanTransformerWeights(cfg.transformer2, { seed: 5, device: dev, dtype });
  const park = new ExpertResidency([w2], dev, true, [true]);
  record.parkMs = await park.offload(0);
  const c = randomWanComponents({
    config: { ...cfg, transformer2: undefined, boundaryRatio: undefined },
    seed: 2,
    device: dev,
    dtype,
    vaeDtype: dtype,
  });
  const pipe = new WanPipeline({
    ...c,
    transformer2: new WanTransformer(cfg.transformer2, w2),
    boundaryRatio: cfg.boundaryRatio,
    expertSwap: true,
  });
  await dev.synchronize();
  record.weightsMs = performance.now() - t0;
  record.memoryAfterWeights = mem();
  save();
  const n = Number(process.env.STEPS ?? 4);
  const sigmas = n === 4 ? [1, 0.7, 0.3, 0.15] : Array.from({ length: n }, (_, i) => 1 - i / n);
  const r = await pipe.generate({
    prompt: "a red ball bounces on a wooden floor",
    negativePrompt: "blurry",
    seed: 3,
    ...size,
    sigmas,
    shift: 12,
    guidance: guidance[0],
    guidance2: guidance[1],
    onProgress: (p) =>
      console.log(`step ${p.step}/${p.total} t=${p.timestep.toFixed(1)} ${(p.elapsed / 1000).toFixed(1)} s`),
  });
  record.timings = r.timings;
  record.experts = r.experts;
  record.stepGraph = r.stepGraph;
  const v = await r.video.toFloat32Array();
  record.finite = v.every(Number.isFinite);
  record.memory = mem();
  save();
  console.log(JSON.stringify({ timings: r.timings, experts: r.experts, memory: record.memory }, null, 1));
  r.video.dispose();
  r.latents.dispose();
  pipe.dispose();
  park.dispose();
}

// Weight offload on one GPU (benchmark, not a test): Wan2.1-T2V-14B's transformer with
// random bf16 weights at 832x480, 81 frames, both guidance branches in one batch, its
// step with the weights resident against the same step with the blocks' weights in
// page-locked host memory, each block copied in on the copy stream one block ahead
// (packages/core/src/models/wan/block-offload.ts) under a 24 GiB device memory cap.
// Measured, in one process:
//   - the resident step, eager and as a CUDA graph (median of STEPS timed steps after a warm-up);
//   - the offloaded step, eager (graphs are off under offload), after device.setMemoryLimit(CAP);
//   - the offloaded step's peak device memory (measurePeak, before the cap is set) and the
//     weights left on the device; the bus rate the step's copies would need at that time;
//   - the ratio offloaded / resident (the target: <= 1.25 against the resident step).
// Run on the GPU host by scripts/gpu/offload-bench.sh; writes offload.json to $OUT (default .).
// Env: DEVICE (cuda), STEPS (3), W, H, F, CAP (24GiB), GRAPH=0 (no resident graph timing),
// CONFIG (wan2.1-t2v-14b; CONFIG=tiny DEVICE=cpu W=32 H=32 F=5 is a smoke run on the CPU).
import { writeFileSync } from "node:fs";
import {
  BlockOffload,
  estimateMemory,
  guidedVelocity,
  parseByteSize,
  randomModelConfigs,
  randomWanTransformerWeights,
  StepGraph,
  WanTransformer,
} from "@tessera/core";
import { Device } from "@tessera/native";
import { measurePeak } from "@tessera/native/testing";
import { guidedStepInputs } from "../lib/device-timing.mjs";

const out = process.env.OUT ?? ".";
const dev = Device.parse(process.env.DEVICE ?? "cuda");
const size = {
  width: Number(process.env.W ?? 832),
  height: Number(process.env.H ?? 480),
  frames: Number(process.env.F ?? 81),
};
const timed = Number(process.env.STEPS ?? 3);
const graphToo = process.env.GRAPH !== "0";
const cap = parseByteSize(process.env.CAP ?? "24GiB", "CAP");
const cfgName = process.env.CONFIG ?? "wan2.1-t2v-14b";
const cfg = randomModelConfigs(cfgName);
const dtype = dev.kind === "cpu" ? "f32" : "bf16";
const guidance = 5;
const GiB = 2 ** 30;
const record = {
  date: new Date().toISOString(),
  commit: process.env.COMMIT ?? "unknown",
  device: dev.info(),
  config: `${cfgName} transformer (random weights)`,
  dtype,
  ...size,
  guidance,
  capGiB: cap / GiB,
};
const save = () => writeFileSync(`${out}/offload.json`, `${JSON.stringify(record, null, 1)}\n`);
const mem = () => {
  const m = dev.memoryStats();
  return { inUseGiB: m.inUse / GiB, peakGiB: m.peak / GiB, cachedGiB: m.cached / GiB };
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const estimate = (offload) =>
  estimateMemory({
    transformer: cfg.transformer,
    vae: cfg.vae,
    textParams: 0, // umT5 elsewhere (the step alone is measured)
    dtype,
    device: dev.kind,
    ...size,
    guidance,
    offload,
  });
record.estimate = { resident: estimate(false), offload: estimate(true) };
save();

const t0 = performance.now();
const w = randomWanTransformerWeights(cfg.transformer, { seed: 2, device: dev, dtype });
await dev.synchronize();
record.drawMs = performance.now() - t0;
record.weightsGiB = w.names().reduce((n, k) => n + w.get(k).nbytes, 0) / GiB;
const model = new WanTransformer(cfg.transformer, w);
const { latents, context } = guidedStepInputs(dev, cfg.transformer, size, dtype);

async function eagerSteps(what) {
  const ms = [];
  for (let i = 0; i < timed + 1; i++) {
    const s = performance.now();
    const v = guidedVelocity(model, latents, 900, context, guidance, dtype);
    await dev.synchronize();
    ms.push(performance.now() - s);
    v.dispose();
    console.log(`${what} eager step ${i}: ${(ms.at(-1) / 1000).toFixed(3)} s`);
  }
  return { ms: median(ms.slice(1)), all: ms };
}

// 1. Resident.
const resident = await eagerSteps("resident");
record.resident = { eagerMs: resident.ms, eagerAll: resident.all, memory: mem() };
if (graphToo && dev.kind === "cuda") {
  const g = new StepGraph(model);
  const replays = [];
  for (let i = 0; i < timed + 1; i++) {
    const s = performance.now();
    const got = await g.velocity(latents, 900, context, guidance, dtype);
    await dev.synchronize();
    if (got.replayed) replays.push(performance.now() - s);
    got.v.dispose();
  }
  record.resident.graphMs = replays.length ? median(replays) : null;
  record.resident.graphAll = replays;
  record.resident.graphFailure = g.failure();
  g.dispose();
}
// A reference output of the resident step, to check the offloaded step against.
const ref = guidedVelocity(model, latents, 900, context, guidance, dtype);
const refValues = await ref.toFloat32Array();
ref.dispose();
save();

// 2. Offloaded: the blocks go to page-locked host memory, the rest stays.
const t1 = performance.now();
const off = new BlockOffload(w, cfg.transformer.num_layers, dev);
await off.adopt();
model.offload = off;
record.adoptMs = performance.now() - t1;
record.blockMiB = off.blockBytes / 2 ** 20;
record.hostGiB = off.hostBytes / GiB;
dev.emptyCache();
await dev.synchronize();
record.offloadWeightsOnDeviceGiB = dev.memoryStats().inUse / GiB;
// The step's peak, measured before the cap (measurePeak's ballast lifts use to the old peak).
if (dev.kind === "cuda") {
  const p = await measurePeak(dev, async () => {
    const v = guidedVelocity(model, latents, 900, context, guidance, dtype);
    await dev.synchronize();
    v.dispose();
  });
  record.offloadStepPeakGiB = (p.baseBytes + p.peakBytes) / GiB;
  dev.emptyCache();
}
// The cap: the offloaded steps must run under it (an allocation past it throws OutOfMemoryError).
dev.setMemoryLimit(cap);
save();
const check = guidedVelocity(model, latents, 900, context, guidance, dtype);
const got = await check.toFloat32Array();
check.dispose();
let maxDiff = 0;
for (let i = 0; i < got.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i] - refValues[i]));
record.offloadMaxAbsDiffFromResident = maxDiff; // 0: the same kernels on the same weights
const offloaded = await eagerSteps("offloaded");
record.offload = { eagerMs: offloaded.ms, eagerAll: offloaded.all, memory: mem(), copies: off.copies };
record.offload.ratioToResidentEager = offloaded.ms / resident.ms;
if (record.resident.graphMs) record.offload.ratioToResidentGraph = offloaded.ms / record.resident.graphMs;
// What the copies need: every block's bytes once per step, over the step's time.
record.offload.neededGBps = (off.blockBytes * cfg.transformer.num_layers) / 1e6 / offloaded.ms;
save();
console.log(
  JSON.stringify(
    {
      residentMs: [record.resident.eagerMs, record.resident.graphMs],
      offloadMs: record.offload.eagerMs,
      ratio: record.offload.ratioToResidentEager,
      peakGiB: record.offloadStepPeakGiB,
      maxDiff,
    },
    null,
    1,
  ),
);
for (const t of [latents, context]) t.dispose();
off.dispose();
w.dispose();

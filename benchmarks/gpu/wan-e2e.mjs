// A whole Wan2.1-T2V-1.3B generation with random weights on a GPU: 832x480, 81 frames,
// 50 UniPC steps, guidance 5 (both branches in one batch), bf16. Run on the GPU host by
// scripts/gpu/e2e-bench.sh (generation, baseline); writes wan-e2e.json (timings by stage, peak
// memory) to $OUT.
import { writeFileSync } from "node:fs";
import { randomWanComponents, WanPipeline } from "@tessera/core";
import { Device } from "@tessera/native";

const out = process.env.OUT ?? ".";
const steps = Number(process.env.STEPS ?? 50);
const size = {
  width: Number(process.env.W ?? 832),
  height: Number(process.env.H ?? 480),
  frames: Number(process.env.F ?? 81),
};
const dev = Device.parse(process.env.DEVICE ?? "cuda");
// VAE_DTYPE=bf16: decode on the implicit-GEMM conv kernel (default f32, as Wan runs it).
const vaeDtype = process.env.VAE_DTYPE ?? "f32";
// CUDA_GRAPH=0: every step op by op (default: steps after the first replay a CUDA graph).
const cudaGraph = process.env.CUDA_GRAPH !== "0";
const record = {
  date: new Date().toISOString(),
  commit: process.env.COMMIT ?? "unknown",
  device: dev.info(),
  config: "wan2.1-1.3b (random weights, umT5-XXL text encoder)",
  dtype: "bf16",
  vaeDtype,
  cudaGraph,
  ...size,
  steps,
  guidance: 5,
  scheduler: "unipc",
};
const save = () => writeFileSync(`${out}/wan-e2e.json`, `${JSON.stringify(record, null, 1)}\n`);

const t0 = performance.now();
const pipe = new WanPipeline(
  randomWanComponents({ config: "wan2.1-1.3b", seed: 2, device: dev, dtype: "bf16", vaeDtype }),
);
await dev.synchronize();
record.weightsMs = performance.now() - t0;
record.memoryAfterWeights = dev.memoryStats();
save();
const stepMs = [];
let last = 0;
const r = await pipe.generate({
  prompt: "a red ball bounces on a wooden floor",
  negativePrompt: "blurry",
  seed: 3,
  ...size,
  steps,
  guidance: 5,
  scheduler: "unipc",
  cudaGraph,
  onProgress: (p) => {
    stepMs.push(p.elapsed - last);
    last = p.elapsed;
    if (p.step % 5 === 0 || p.step === p.total)
      console.log(`step ${p.step}/${p.total} ${(p.elapsed / 1000).toFixed(1)} s`);
    record.progress = { step: p.step, elapsed: p.elapsed };
    save();
  },
});
const video = await r.video.toFloat32Array();
let finite = true;
for (const v of video)
  if (!Number.isFinite(v)) {
    finite = false;
    break;
  }
record.timings = r.timings;
record.stepGraph = r.stepGraph;
record.stepMs = { median: [...stepMs].sort((a, b) => a - b)[Math.floor(stepMs.length / 2)], all: stepMs };
record.videoShape = r.video.shape;
record.finite = finite;
record.peakMemoryBytes = dev.memoryStats().peak;
record.memory = dev.memoryStats();
save();
console.log(
  JSON.stringify({ timings: r.timings, peakGiB: record.peakMemoryBytes / 2 ** 30, finite }, null, 1),
);
r.video.dispose();
r.latents.dispose();
pipe.dispose();

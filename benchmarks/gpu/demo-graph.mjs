// Where the step graph matters: the bundled demo model on the GPU, whose step is a few
// hundred small kernels (launch-bound), generated with and without the CUDA graph,
// alternating, same seed; the latents must match bit for bit. Writes demo-graph.json to $OUT.
//   node demo-graph.mjs MODEL_DIR [--reps 3]
import { writeFileSync } from "node:fs";
import { WanPipeline } from "@tessera/core";
import { Device } from "@tessera/native";

const args = process.argv.slice(2);
const dir = args[0];
const reps = args.includes("--reps") ? Number(args[args.indexOf("--reps") + 1]) : 3;
const dev = Device.parse(process.env.DEVICE ?? "cuda");
const pipe = await WanPipeline.load(dir, { device: dev, dtype: dev.kind === "cuda" ? "bf16" : "f32" });
const opts = { prompt: "a red circle moves to the right on a black background", seed: 5, steps: 20 };
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const run = async (cudaGraph) => {
  const r = await pipe.generate({ ...opts, cudaGraph });
  const lat = await r.latents.toFloat32Array();
  r.video.dispose();
  r.latents.dispose();
  return {
    step: r.timings.step,
    denoise: r.timings.denoise,
    total: r.timings.total,
    graph: r.stepGraph,
    lat,
  };
};
await run(true); // warm-up: one-time kernel set-up, cuBLASLt plans
const on = [];
const off = [];
for (let i = 0; i < reps; i++) {
  on.push(await run(true));
  off.push(await run(false));
}
const same = on[0].lat.every((x, i) => x === off[0].lat[i]);
const rec = {
  date: new Date().toISOString(),
  commit: process.env.COMMIT ?? "unknown",
  device: dev.info(),
  model: "tessera-world (bundled demo), DiT bf16, 17 frames 128x128, 20 steps, guidance 3",
  stepMs: { graph: median(on.map((r) => r.step)), eager: median(off.map((r) => r.step)) },
  denoiseMs: { graph: median(on.map((r) => r.denoise)), eager: median(off.map((r) => r.denoise)) },
  totalMs: { graph: median(on.map((r) => r.total)), eager: median(off.map((r) => r.total)) },
  stepGraph: on[0].graph,
  latentsEqual: same,
  reps,
};
rec.stepSpeedup = rec.stepMs.eager / rec.stepMs.graph;
writeFileSync(`${process.env.OUT ?? "."}/demo-graph.json`, `${JSON.stringify(rec, null, 1)}\n`);
console.log(JSON.stringify(rec));
pipe.dispose();

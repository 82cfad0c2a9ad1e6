// The pipeline's CUDA-graph step on the GPU host (no vitest there): tiny random Wan
// models in bf16 and f32, one generation with the step graph and one without, same
// seed; the latents must be equal bit for bit, and every step after the first a
// replay. Writes step-graph-check.json to $OUT; exits 1 on any failure.
import { writeFileSync } from "node:fs";
import { randomWanComponents, WanPipeline } from "@tessera/core";
import { Device } from "@tessera/native";

const dev = Device.parse(process.env.DEVICE ?? "cuda");
const checks = [];
const opts = { prompt: "a red ball", seed: 4, guidance: 4, width: 64, height: 48, frames: 9, steps: 6 };
for (const dtype of ["bf16", "f32"]) {
  const pipe = new WanPipeline(randomWanComponents({ seed: 6, device: dev, dtype }));
  const on = await pipe.generate(opts);
  const off = await pipe.generate({ ...opts, cudaGraph: false });
  const [a, b] = [await on.latents.toFloat32Array(), await off.latents.toFloat32Array()];
  let differ = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) differ++;
  const replays = on.stepGraph.replays;
  const pass = differ === 0 && on.stepGraph.state === "replayed" && replays === opts.steps - 1;
  checks.push({
    name: `pipeline step graph equals eager (${dtype})`,
    pass,
    detail: `${differ} of ${a.length} latent values differ; graph ${JSON.stringify(on.stepGraph)}`,
  });
  console.log(`${pass ? "PASS" : "FAIL"} ${checks.at(-1).name}: ${checks.at(-1).detail}`);
  for (const r of [on, off]) {
    r.video.dispose();
    r.latents.dispose();
  }
  pipe.dispose();
}
const failed = checks.filter((c) => !c.pass).length;
writeFileSync(
  `${process.env.OUT ?? "."}/step-graph-check.json`,
  `${JSON.stringify({ date: new Date().toISOString(), commit: process.env.COMMIT ?? "unknown", device: dev.info(), checks }, null, 1)}\n`,
);
console.log(`${checks.length - failed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;

// The demo model's VAE alone against the prompt-adherence scorer: renders world clips
// (the same sampler as the training data, half from held-out combinations), encodes and
// decodes each with the bundled VAE, and scores the reconstruction against the clip's
// own attributes. It roughly bounds what the DiT can score through this VAE (the DiT
// learns its encoder's latents), and says which attribute the VAE loses (a shape
// confusion table). Writes
// benchmarks/results/vae-roundtrip-cpu.{json,md} (the date and device are inside).
//   node vae-roundtrip.mjs [--count N] [--model DIR] [--out DIR]
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { DEMO_MODEL_DIR, framesFromTensor, pixelsToTensor, WanPipeline } from "@tessera/core";
import {
  analyzeClip,
  makeRng,
  renderClip,
  sampleWorldScene,
  sceneAttributes,
  scoreClip,
  scorePrompts,
} from "@tessera/core/world";
import { cpuDevice, gitCommit } from "./lib/run-info.mjs";

const { values } = parseArgs({
  options: {
    count: { type: "string", default: "100" },
    model: { type: "string", default: DEMO_MODEL_DIR },
    out: { type: "string", default: new URL("./results", import.meta.url).pathname },
  },
});
const count = Number(values.count);
if (!Number.isInteger(count) || count < 1)
  throw new Error(`--count must be a positive integer, got ${values.count}`);

const pipe = await WanPipeline.load(values.model, { device: "cpu" });
const results = [];
const confusion = {};
for (let i = 0; i < count; i++) {
  const heldOut = i % 2 === 0;
  const scene = sampleWorldScene(makeRng(1000 + i), heldOut ? "heldout" : "train");
  const clip = renderClip(scene);
  const expected = sceneAttributes(scene);
  const px = pixelsToTensor(clip.frames, clip.width, clip.height, clip.width, clip.height, {
    device: "cpu",
    dtype: "f32",
  });
  const z = pipe.vae.encode(px);
  const rec = pipe.vae.decode(z);
  const video = await framesFromTensor(rec, { fps: 8 });
  for (const t of [px, z, rec]) t.dispose();
  results.push({ score: scoreClip(video, expected), heldOut });
  const found = analyzeClip(video).objects;
  for (const o of expected.objects) {
    const d = found.find((x) => x.colour === o.colour);
    const key = `${o.shape} -> ${d?.shape ?? "not found"}`;
    confusion[key] = (confusion[key] ?? 0) + 1;
  }
}
pipe.dispose();

const summary = scorePrompts(results);
const commit = gitCommit();
const date = new Date().toISOString().slice(0, 10);
const device = cpuDevice();
const report = {
  benchmark: "VAE round trip of the demo model, scored",
  date,
  commit,
  device,
  model: values.model,
  clips: count,
  ...summary,
  confusion,
};
const pct = (x) => `${(100 * x).toFixed(1)}%`;
const a = summary.all;
const md = [
  `# VAE round trip of the bundled demo model, scored (${date}, ${report.device}, commit ${commit})`,
  "",
  `${count} world clips (half from held-out combinations), encoded and decoded by the model's VAE on the CPU (f32), scored against their own attributes. The DiT learns this encoder's latents, so this roughly bounds what the prompt-adherence benchmark can score through this VAE.`,
  "",
  "| clips | background | colour | shape | motion | camera | overall | clips all right |",
  "| --- | --- | --- | --- | --- | --- | --- | --- |",
  `| ${a.n} | ${pct(a.background)} | ${pct(a.colour)} | ${pct(a.shape)} | ${pct(a.motion)} | ${pct(a.camera)} | **${pct(a.overall)}** | ${pct(a.clips)} |`,
  "",
  "Shapes (true -> found in the reconstruction):",
  "",
  ...Object.entries(confusion)
    .sort()
    .map(([k, n]) => `- ${k}: ${n}`),
  "",
].join("\n");
mkdirSync(values.out, { recursive: true });
const base = join(values.out, "vae-roundtrip-cpu");
writeFileSync(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
writeFileSync(`${base}.md`, md);
console.log(md);
console.log(`wrote ${base}.json and .md`);

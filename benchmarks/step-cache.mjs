// Step caching (`stepCache`, First-Block Cache) on the bundled demo model, side by
// side in one run: the quality benchmark's fixed prompt set generated with the cache
// off and at each threshold, interleaved prompt by prompt (so load on the machine
// falls on every setting alike), scored with the model-free world scorer. Reports
// seconds per video (whole generation, and the denoising loop alone), the speed-up
// against off, full steps per video, the final latents' distance from off, and the
// overall / held-out prompt adherence, to
// benchmarks/results/step-cache-<device>.{json,md} (the date is inside).
//   node step-cache.mjs [--count N] [--thresholds 0.05,0.1,0.2] [--device cpu|cuda] [--out DIR]
// The text-state cache is cleared before every generation, so each pays for its text
// encoding alike.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { DEMO_MODEL_DIR, framesFromTensor, WanPipeline } from "@tessera/core";
import { qualityPromptSet, scoreClip, scorePrompts } from "@tessera/core/world";
import { cpuDevice, gitCommit } from "./lib/run-info.mjs";

const { values } = parseArgs({
  options: {
    count: { type: "string", default: "220" },
    thresholds: { type: "string", default: "0.05,0.1,0.2" },
    model: { type: "string", default: DEMO_MODEL_DIR },
    device: { type: "string", default: "cpu" },
    out: { type: "string", default: new URL("./results", import.meta.url).pathname },
  },
});
const count = Number(values.count);
if (!Number.isInteger(count) || count < 1)
  throw new Error(`--count must be a positive integer, got ${values.count}`);
const thresholds = values.thresholds.split(",").map(Number);
if (thresholds.some((t) => !Number.isFinite(t) || t < 0))
  throw new Error(`--thresholds must be numbers >= 0, got ${values.thresholds}`);
const settings = [false, ...thresholds];
const label = (s) => (s === false ? "off" : String(s));

// Taken before the run: the code that runs is what was built when it started.
const commit = gitCommit();

const pipe = await WanPipeline.load(values.model, { device: values.device });
const prompts = qualityPromptSet(count);
const per = settings.map(() => ({ results: [], seconds: [], denoise: [], fullSteps: [], latentDist: [] }));
const rows = [];
const t0 = performance.now();
for (const [i, p] of prompts.entries()) {
  const row = { prompt: p.prompt, heldOut: p.heldOut, seed: p.seed };
  let offLatents = null;
  // Rotate the order per prompt, so no setting always runs first.
  for (let k = 0; k < settings.length; k++) {
    const j = (i + k) % settings.length;
    const s = settings[j];
    pipe.clearTextCache();
    const t = performance.now();
    const r = await pipe.generate({ prompt: p.prompt, seed: p.seed, stepCache: s });
    const video = await framesFromTensor(r.video, { fps: r.fps });
    const seconds = (performance.now() - t) / 1000;
    const lat = await r.latents.toFloat32Array();
    r.video.dispose();
    r.latents.dispose();
    const score = scoreClip(video, p.expected);
    const m = per[j];
    m.results.push({ score, heldOut: p.heldOut });
    m.seconds.push(seconds);
    m.denoise.push(r.timings.denoise / 1000);
    m.fullSteps.push(r.fullSteps);
    m.lat = lat;
    row[label(s)] = { fullSteps: r.fullSteps, seconds: Number(seconds.toFixed(3)), correct: score.correct };
    if (s === false) offLatents = lat;
  }
  // Relative L1 distance of each setting's final latents from off's.
  for (const m of per) {
    let num = 0;
    let den = 0;
    for (let q = 0; q < offLatents.length; q++) {
      num += Math.abs(m.lat[q] - offLatents[q]);
      den += Math.abs(offLatents[q]);
    }
    m.latentDist.push(num / den);
    m.lat = null;
  }
  rows.push(row);
  if ((i + 1) % 10 === 0 || i + 1 === prompts.length)
    console.error(`${i + 1}/${prompts.length}  ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}
pipe.dispose();

const mean = (a) => a.reduce((x, y) => x + y, 0) / a.length;
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const offIdx = 0;
const offMean = mean(per[offIdx].seconds);
const offDenoise = mean(per[offIdx].denoise);
const offCorrect = per[offIdx].results.map((r) => r.score.correct);
const figures = settings.map((s, j) => {
  const m = per[j];
  const sum = scorePrompts(m.results);
  return {
    stepCache: s,
    secondsPerVideo: { mean: mean(m.seconds), median: median(m.seconds) },
    denoiseSecondsPerVideo: mean(m.denoise),
    speedup: offMean / mean(m.seconds),
    denoiseSpeedup: offDenoise / mean(m.denoise),
    fullStepsPerVideo: {
      mean: mean(m.fullSteps),
      min: Math.min(...m.fullSteps),
      max: Math.max(...m.fullSteps),
    },
    latentRelL1FromOff: mean(m.latentDist),
    clipsJudgedDifferentlyFromOff: m.results.filter((r, q) => r.score.correct !== offCorrect[q]).length,
    overall: sum.all.overall,
    heldOutOverall: sum.heldOut.overall,
    seenOverall: sum.seen.overall,
    clipsAllRight: sum.all.clips,
    all: sum.all,
    heldOut: sum.heldOut,
    seen: sum.seen,
  };
});

const date = new Date().toISOString().slice(0, 10);
const device = values.device === "cpu" ? cpuDevice() : values.device;
const report = {
  benchmark: "step caching (First-Block Cache) on the bundled demo model: speed and prompt adherence",
  date,
  commit,
  device,
  model: values.model,
  settings: { ...pipe.defaults },
  prompts: prompts.length,
  method:
    "every prompt generated with each setting in turn (order rotated per prompt), text-state cache cleared before each; seconds are the whole generation (text, denoise, VAE decode, frame conversion)",
  figures,
  rows,
};
const pct = (x) => `${(100 * x).toFixed(1)}%`;
const steps = pipe.defaults.steps;
const md = [
  `# Step caching on the bundled demo model (${date}, ${device}, commit ${commit})`,
  "",
  `${prompts.length} prompts of the quality set, ${pipe.defaults.frames} frames at ${pipe.defaults.width}x${pipe.defaults.height}, ${steps} ${pipe.defaults.scheduler} steps, guidance ${pipe.defaults.guidance}; every setting on every prompt in one run, interleaved.`,
  "",
  "| step cache | s / video | speed-up | denoise s / video | denoise speed-up | full steps / video | latents vs off (rel. L1) | overall | held-out | clips all right | clips judged differently from off |",
  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ...figures.map(
    (f) =>
      `| ${label(f.stepCache)} | ${f.secondsPerVideo.mean.toFixed(2)} | ${f.speedup.toFixed(2)}x | ${f.denoiseSecondsPerVideo.toFixed(2)} | ${f.denoiseSpeedup.toFixed(2)}x | ${f.fullStepsPerVideo.mean.toFixed(1)} of ${steps} (${f.fullStepsPerVideo.min}-${f.fullStepsPerVideo.max}) | ${f.latentRelL1FromOff.toFixed(3)} | **${pct(f.overall)}** | ${pct(f.heldOutOverall)} | ${pct(f.clipsAllRight)} | ${f.clipsJudgedDifferentlyFromOff} |`,
  ),
  "",
].join("\n");
mkdirSync(values.out, { recursive: true });
const base = join(values.out, `step-cache-${values.device.replace(/[:]/g, "")}`);
writeFileSync(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
writeFileSync(`${base}.md`, md);
console.log(md);
console.log(`wrote ${base}.json and .md`);

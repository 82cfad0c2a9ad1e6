// Prompt-adherence benchmark of the bundled demo model (`pnpm bench:quality`):
// generates the fixed prompt set (qualityPromptSet: half held-out combinations,
// one- and two-object scenes, a share paraphrased) on the CPU with the model's
// default settings, scores every clip with the model-free world scorer, and writes
// per-attribute accuracy (all / seen / held-out), temporal consistency and the
// seconds per video to benchmarks/results/quality-<device>.{json,md} (the date is inside).
//   node quality.mjs [--count N] [--model DIR] [--device cpu|cuda] [--out DIR] [--guidance X] [--steps N]
//                    [--step-cache X]
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { DEMO_MODEL_DIR, framesFromTensor, WanPipeline } from "@tessera/core";
import { qualityPromptSet, scoreClip, scorePrompts } from "@tessera/core/world";
import { cpuDevice, gitCommit } from "./lib/run-info.mjs";

const { values } = parseArgs({
  options: {
    count: { type: "string", default: "220" },
    model: { type: "string", default: DEMO_MODEL_DIR },
    device: { type: "string", default: "cpu" },
    out: { type: "string", default: new URL("./results", import.meta.url).pathname },
    guidance: { type: "string" },
    steps: { type: "string" },
    "step-cache": { type: "string" },
  },
});
const count = Number(values.count);
if (!Number.isInteger(count) || count < 1)
  throw new Error(`--count must be a positive integer, got ${values.count}`);

const pipe = await WanPipeline.load(values.model, { device: values.device });
// Overrides of the model's defaults, for tuning; the committed result uses none.
const over = {
  ...(values.guidance !== undefined ? { guidance: Number(values.guidance) } : {}),
  ...(values.steps !== undefined ? { steps: Number(values.steps) } : {}),
  ...(values["step-cache"] !== undefined ? { stepCache: Number(values["step-cache"]) } : {}),
};
const prompts = qualityPromptSet(count);
const results = [];
const rows = [];
const seconds = [];
const fullSteps = [];
const t0 = performance.now();
for (const [i, p] of prompts.entries()) {
  const t = performance.now();
  const r = await pipe.generate({ prompt: p.prompt, seed: p.seed, ...over });
  const video = await framesFromTensor(r.video, { fps: r.fps });
  r.video.dispose();
  r.latents.dispose();
  seconds.push((performance.now() - t) / 1000);
  fullSteps.push(r.fullSteps);
  const score = scoreClip(video, p.expected);
  results.push({ score, heldOut: p.heldOut });
  rows.push({
    prompt: p.prompt,
    promptUsed: r.prompt,
    heldOut: p.heldOut,
    paraphrased: p.paraphrased,
    objects: p.objects,
    seed: p.seed,
    perAttribute: score.perAttribute,
    correct: score.correct,
    extraObjects: score.details.extraObjects,
    consistency: Number(score.details.consistency.toFixed(3)),
  });
  if ((i + 1) % 20 === 0 || i + 1 === prompts.length)
    console.error(`${i + 1}/${prompts.length}  ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}
pipe.dispose();

const summary = scorePrompts(results);
const sub = (f) => scorePrompts(results.filter((_, i) => f(prompts[i]))).all;
const sorted = [...seconds].sort((a, b) => a - b);
const commit = gitCommit();
const date = new Date().toISOString().slice(0, 10);
const report = {
  benchmark: "prompt adherence of the bundled demo model",
  date,
  commit,
  device: values.device === "cpu" ? cpuDevice() : values.device,
  model: values.model,
  settings: { ...pipe.defaults, ...over },
  prompts: prompts.length,
  targets: { overall: 0.9, heldOutOverall: 0.8 },
  all: summary.all,
  seen: summary.seen,
  heldOut: summary.heldOut,
  oneObject: sub((p) => p.objects === 1),
  twoObjects: sub((p) => p.objects === 2),
  paraphrased: sub((p) => p.paraphrased),
  secondsPerVideo: {
    mean: seconds.reduce((a, b) => a + b, 0) / seconds.length,
    median: sorted[Math.floor(sorted.length / 2)],
    max: sorted[sorted.length - 1],
  },
  fullStepsPerVideo: fullSteps.reduce((a, b) => a + b, 0) / fullSteps.length,
  rows,
};
const pct = (x) => `${(100 * x).toFixed(1)}%`;
const line = (name, a) =>
  `| ${name} | ${a.n} | ${pct(a.background)} | ${pct(a.colour)} | ${pct(a.shape)} | ${pct(a.motion)} | ${pct(a.camera)} | **${pct(a.overall)}** | ${pct(a.clips)} | ${a.consistency.toFixed(3)} |`;
const md = [
  `# Prompt adherence, bundled demo model (${date}, ${report.device}, commit ${commit})`,
  "",
  `${prompts.length} prompts, default settings (${pipe.defaults.frames} frames at ${pipe.defaults.width}x${pipe.defaults.height}, ${pipe.defaults.steps} ${pipe.defaults.scheduler} steps, guidance ${pipe.defaults.guidance}${over.stepCache !== undefined ? `, step cache ${over.stepCache}: ${report.fullStepsPerVideo.toFixed(1)} full steps per video` : ""}). Targets: overall >= 90%, held-out >= 80%.`,
  "",
  "| prompts | n | background | colour | shape | motion | camera | overall | clips all right | consistency |",
  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  line("all", summary.all),
  line("seen combinations", summary.seen),
  line("held-out combinations", summary.heldOut),
  line("one object", report.oneObject),
  line("two objects", report.twoObjects),
  line("paraphrased", report.paraphrased),
  "",
  `Seconds per video (generation, ${report.device}): mean ${report.secondsPerVideo.mean.toFixed(2)}, median ${report.secondsPerVideo.median.toFixed(2)}, max ${report.secondsPerVideo.max.toFixed(2)}.`,
  "",
].join("\n");
mkdirSync(values.out, { recursive: true });
// A step-cache run gets its own name, beside the default settings' result.
const tag = over.stepCache !== undefined ? `-step-cache-${over.stepCache}` : "";
const base = join(values.out, `quality-${values.device.replace(/[:]/g, "")}${tag}`);
writeFileSync(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
writeFileSync(`${base}.md`, md);
console.log(md);
console.log(`wrote ${base}.json and .md`);

// A few-step distilled generation's step with a LoRA merged against the same step without
// one (issue 17: within 1%), on a GPU host (no vitest there). A random Wan2.1-1.3B model in
// memory; a random rank-32 LoRA in lightx2v's ComfyUI naming on every attention and FFN
// linear of every block, written to a temporary file; 4 steps at 1000/750/500/250, shift 5,
// guidance 1 (one branch). The LoRA is merged into the weights once, so the step runs the
// same kernels: what is measured is that nothing else (a leftover delta, an unmerged path)
// costs time. Each configuration runs `--runs` generations after one warm-up; mean step ms.
// Usage: node lora-step.mjs [--device cuda] [--tiny] [--runs 3] [--out FILE]
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomWanComponents, WanPipeline, writeSafetensors } from "@tessera/core";
import { Device } from "@tessera/native";

const args = process.argv.slice(2);
const arg = (k, d) => (args.includes(k) ? args[args.indexOf(k) + 1] : d);
const dev = Device.parse(arg("--device", "cuda"));
const tiny = args.includes("--tiny");
const runs = Number(arg("--runs", 3));
const outPath = arg("--out", null);
const dtype = dev.kind === "cuda" ? "bf16" : "f32";
const config = tiny ? "tiny" : "wan2.1-1.3b";
const size = tiny ? { width: 64, height: 48, frames: 9 } : { width: 832, height: 480, frames: 81 };

const pipe = new WanPipeline(randomWanComponents({ config, seed: 1, device: dev, dtype, vaeDtype: dtype }));
const tc = pipe.transformer.config;
const dim = tc.num_attention_heads * tc.attention_head_dim;
const rank = Math.min(32, dim);

// lightx2v / ComfyUI names: diffusion_model.blocks.N.{self_attn,cross_attn}.{q,k,v,o}, ffn.{0,2}.
let state = 12345;
const rnd = () => {
  state = (state * 1103515245 + 12345) % 2 ** 31;
  return (state / 2 ** 31 - 0.5) * 0.02;
};
const mat = (rows, cols) => {
  const a = new Float32Array(rows * cols);
  for (let i = 0; i < a.length; i++) a[i] = rnd();
  return a;
};
const tensors = {};
const pair = (base, outF, inF) => {
  tensors[`${base}.lora_down.weight`] = { dtype: "F32", shape: [rank, inF], data: mat(rank, inF) };
  tensors[`${base}.lora_up.weight`] = { dtype: "F32", shape: [outF, rank], data: mat(outF, rank) };
  tensors[`${base}.alpha`] = { dtype: "F32", shape: [], data: new Float32Array([rank]) };
};
for (let b = 0; b < tc.num_layers; b++) {
  for (const a of ["self_attn", "cross_attn"])
    for (const p of ["q", "k", "v", "o"]) pair(`diffusion_model.blocks.${b}.${a}.${p}`, dim, dim);
  pair(`diffusion_model.blocks.${b}.ffn.0`, tc.ffn_dim, dim);
  pair(`diffusion_model.blocks.${b}.ffn.2`, dim, tc.ffn_dim);
}
const dir = mkdtempSync(join(tmpdir(), "tessera-lora-"));
const loraPath = join(dir, "distill.safetensors");
await writeSafetensors(loraPath, tensors);

const opts = {
  prompt: "a red ball",
  seed: 7,
  guidance: 1,
  timesteps: [1000, 750, 500, 250],
  shift: 5,
  ...size,
};
const rec = {
  what: "4-step guidance-1 generation: mean denoising step with a rank-32 LoRA merged vs none",
  date: new Date().toISOString(),
  commit: process.env.COMMIT ?? "unknown",
  device: dev.info(),
  dtype,
  config,
  size,
  runs,
  loraTensors: Object.keys(tensors).length,
  results: {},
};
async function measure(name, loras) {
  const steps = [];
  for (let i = 0; i <= runs; i++) {
    const r = await pipe.generate({ ...opts, loras });
    if (i > 0) steps.push(r.timings.step);
    rec.results[name] = { stepMs: steps, stepGraph: r.stepGraph, fullSteps: r.fullSteps };
    r.video.dispose();
    r.latents.dispose();
  }
  const mean = steps.reduce((a, b) => a + b, 0) / steps.length;
  rec.results[name].meanStepMs = mean;
  console.log(`${name}: mean step ${mean.toFixed(1)} ms (${steps.map((x) => x.toFixed(1)).join(", ")})`);
}
try {
  // Alternating order would cost a merge and an unmerge per run; each set runs as a block instead.
  await measure("none", []);
  await measure("lora", [{ path: loraPath, strength: 1 }]);
  await measure("none-again", []);
  const none = (rec.results.none.meanStepMs + rec.results["none-again"].meanStepMs) / 2;
  rec.ratio = rec.results.lora.meanStepMs / none;
  console.log(`lora / none: ${rec.ratio.toFixed(4)}`);
} finally {
  if (outPath) writeFileSync(outPath, `${JSON.stringify(rec, null, 1)}\n`);
  pipe.dispose();
  rmSync(dir, { recursive: true, force: true });
}

// Peak memory and time of one Wan DiT step (issue #18, point 4): WanTransformer.forward on a
// batch of 2 (both guidance branches), text of 512 tokens, random weights, then the whole guided
// step (guidedVelocityAt: the branches' concat, the forward and the f32 combine). Each shape runs
// in a fresh child process, because the allocator's peak cannot be reset:
//
//   node dit-memory.mjs [--device cuda|cpu] [--shapes 480p81,480p161,720p81] [--reps 3] [--out FILE]
//                       [--layers N] [--heads H (dim = 128 H)] [--ffn F] [--text N] [--dtype bf16|f32]
//                       [--queued]
//
// Shapes (latent = frames (F-1)/4+1, H/8, W/8, 16 channels): 480p81 832x480x81, 480p161
// 832x480x161, 720p81 1280x720x81; for the CPU, cpu-mid (the 1.3B width, 3 layers, 1280 tokens)
// and cpu-deep (30 layers, dim 256, 1280 tokens). Defaults: the Wan2.1-1.3B geometry in bf16 on
// CUDA; on the CPU, f32 and inline execution (Device.setInline), so that memory is freed in
// program order as on a CUDA stream (--queued: the default executor, whose queued ops hold
// their inputs, so that the peak shows how far JS ran ahead).
//
// Per shape: weightsBytes + inputsBytes (in use before the step), peak (the allocator's
// high-water mark after the step), activationBytes = peak − in use before, and the same in
// units of one residual-stream tensor [2, L, dim]; ms: the step's median on the host clock with
// a device synchronize around it (--reps, default 3 on CUDA, none on the CPU); on CUDA also the
// step captured as a CUDA graph and replayed (checked equal to eager).
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { guidedVelocityAt, randomWanTransformerWeights, WAN21_T2V_1_3B, WanTransformer } from "@tessera/core";
import { captureGraph, Device, scope, Tensor } from "@tessera/native";
import { randnAs as randnOn, timeRuns } from "../lib/device-timing.mjs";

const args = process.argv.slice(2);
const arg = (name, def) => (args.includes(name) ? args[args.indexOf(name) + 1] : def);
const devName = arg("--device", "cuda");
const SHAPES = {
  "480p81": { f: 21, h: 60, w: 104 },
  "480p161": { f: 41, h: 60, w: 104 },
  "720p81": { f: 21, h: 90, w: 160 },
  "cpu-mid": { f: 5, h: 32, w: 32, layers: 3 },
  "cpu-deep": { f: 5, h: 32, w: 32, dim: 256, heads: 2, ffn: 1536 },
};

if (!args.includes("--one")) {
  // Parent: one child per shape, results gathered into one record.
  const shapes = arg("--shapes", devName === "cpu" ? "cpu-mid,cpu-deep" : "480p81,480p161,720p81").split(",");
  const out = {
    what: "Wan DiT step peak memory and time (benchmarks/gpu/dit-memory.mjs)",
    device: devName,
    shapes: {},
  };
  const self = fileURLToPath(import.meta.url);
  const rest = args.filter(
    (a, i) => !["--shapes", "--out"].includes(a) && !["--shapes", "--out"].includes(args[i - 1]),
  );
  for (const s of shapes) {
    const r = spawnSync(process.execPath, [self, ...rest, "--one", s], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
      maxBuffer: 1 << 24,
    });
    const line = r.stdout.trim().split("\n").at(-1) ?? "";
    try {
      out.shapes[s] = JSON.parse(line);
    } catch {
      out.shapes[s] = {
        error: `exit ${r.status}${r.signal ? ` (${r.signal})` : ""}: ${r.stdout.slice(-400)}`,
      };
    }
    const x = out.shapes[s];
    const gib = (b) => (b / 2 ** 30).toFixed(2);
    console.error(
      x.error
        ? `${s}: ${x.error}`
        : `${s}: peak ${gib(x.forward.peak)} GiB (weights ${gib(x.weightsBytes)}, activation ${gib(x.forward.activationBytes)} GiB = ${x.forward.activationUnits.toFixed(1)} x [2, ${x.tokens}, ${x.dim}]); guided step peak ${gib(x.guided.peak)} GiB${x.forward.ms ? `; ${x.forward.ms.toFixed(1)} ms` : ""}${x.graphMs ? `, graph ${x.graphMs.toFixed(1)} ms (equal to eager: ${x.graphEqualsEager})` : ""}`,
    );
  }
  const path = arg("--out");
  if (path) writeFileSync(path, `${JSON.stringify(out, null, 1)}\n`);
  else console.log(JSON.stringify(out, null, 1));
  process.exit(0);
}

// Child: one shape.
const shape = SHAPES[arg("--one")];
if (!shape) throw new Error(`dit-memory: unknown shape ${arg("--one")} (${Object.keys(SHAPES).join(", ")})`);
const dev = Device.parse(devName);
if (dev.kind === "cpu" && !args.includes("--queued") && typeof dev.setInline === "function")
  dev.setInline(true);
const dtype = arg("--dtype", dev.kind === "cpu" ? "f32" : "bf16");
const reps = Number(arg("--reps", dev.kind === "cpu" ? 0 : 3));
const num = (name, def) => Number(arg(name, def));
const heads = num("--heads", shape.heads ?? WAN21_T2V_1_3B.num_attention_heads);
const cfg = {
  ...WAN21_T2V_1_3B,
  num_attention_heads: heads,
  ffn_dim: num("--ffn", shape.ffn ?? WAN21_T2V_1_3B.ffn_dim),
  num_layers: num("--layers", shape.layers ?? WAN21_T2V_1_3B.num_layers),
};
const dim = heads * cfg.attention_head_dim;
const text = num("--text", 512);
const tokens = (shape.f * shape.h * shape.w) / 4;

const randnAs = (s, seed) => randnOn(dev, s, seed, dtype);

// The median of `reps` timed runs, no warm-up; null where --reps is 0.
const timed = async (fn) => (reps === 0 ? null : (await timeRuns(dev, fn, reps)).median);

const w = randomWanTransformerWeights(cfg, { seed: 2, device: dev, dtype });
const model = new WanTransformer(cfg, w);
await dev.synchronize();
const weightsBytes = dev.memoryStats().inUse;
const latents = randnAs([2, shape.f, shape.h, shape.w, cfg.in_channels], 3);
const timesteps = Tensor.from([500, 500], [2], { device: dev });
const context = randnAs([2, text, cfg.text_dim], 4);
// The guided step takes one f32 latent and both branches' text.
const latent1 = randn([1, shape.f, shape.h, shape.w, cfg.in_channels], {
  seed: 5,
  device: dev,
  dtype: "f32",
});
await dev.synchronize();
const before = dev.memoryStats();
const unit = 2 * tokens * dim * (dtype === "f32" ? 4 : 2);

// The batch-2 forward (what diffusers' WanTransformer3DModel is measured on).
const y = model.forward({ latents, timesteps, context });
await dev.synchronize();
y.dispose();
const afterForward = dev.memoryStats();
// The guided step (guidance 5: both branches, combined in f32).
const g = guidedVelocityAt(model, latent1, timesteps, context, 5, dtype);
await dev.synchronize();
g.dispose();
const afterGuided = dev.memoryStats();
const rec = {
  config: cfg,
  dtype,
  device: dev.info().description,
  latent: [2, shape.f, shape.h, shape.w, cfg.in_channels],
  tokens,
  dim,
  text,
  weightsBytes,
  inputsBytes: before.inUse - weightsBytes,
  setupPeak: before.peak,
  forward: {
    peak: afterForward.peak,
    activationBytes: afterForward.peak - before.inUse,
    activationUnits: (afterForward.peak - before.inUse) / unit,
    // false: the step never went above the set-up's own peak, so activationBytes is an upper bound.
    aboveSetup: afterForward.peak > before.peak,
  },
  guided: { peak: afterGuided.peak, activationBytes: afterGuided.peak - before.inUse },
  inUseAfter: afterGuided.inUse,
};
rec.forward.ms = await timed(() => model.forward({ latents, timesteps, context }));
rec.guided.ms = await timed(() => guidedVelocityAt(model, latent1, timesteps, context, 5, dtype));
if (dev.kind === "cuda") {
  const { graph, result } = await captureGraph(dev, () =>
    scope(() => guidedVelocityAt(model, latent1, timesteps, context, 5, dtype)),
  );
  // The replay must give the eager step's output bit for bit (intermediates freed during the
  // capture are reused within it, in the order the replay runs them).
  graph.replay();
  const eager = guidedVelocityAt(model, latent1, timesteps, context, 5, dtype);
  const [ga, eb] = [await result.toFloat32Array(), await eager.toFloat32Array()];
  eager.dispose();
  rec.graphEqualsEager = ga.every((x, i) => x === eb[i] || (Number.isNaN(x) && Number.isNaN(eb[i])));
  rec.graphMs = await timed(() => {
    graph.replay();
    return { dispose() {} };
  });
  rec.peakWithGraph = dev.memoryStats().peak;
  graph.dispose();
  result.dispose();
}
console.log(JSON.stringify(rec));
process.exit(0);

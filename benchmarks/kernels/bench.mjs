// Our side of the kernel benchmark: every case of the manifest (cases.py) through
// @tessera/native, inputs drawn on the device with the native `randn` (the same values
// torch_bench.py regenerates), checked against PyTorch's row-sampled reference output
// BEFORE it is timed, then timed.
//
//   node bench.mjs --manifest M.json --out ours.json [--device cuda|cpu] [--only SUBSTR]
//                  [--tag own] [--budget SECONDS]
//
// Timing (the same as torch_bench.py): `await device.synchronize()`, N back-to-back launches,
// `await device.synchronize()`, wall clock / N; warm-up first; the median of --reps samples.
// The host time to enqueue the N launches is recorded too: when it is well under the kernel
// time, launch overhead is hidden behind the GPU queue.
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import {
  attention,
  conv3d,
  Device,
  gatedResidual,
  layerNorm,
  linear,
  patchEmbed3d,
  randn,
  Tensor,
} from "@tessera/native";

const args = process.argv.slice(2);
const arg = (name, def) => (args.includes(name) ? args[args.indexOf(name) + 1] : def);
const manifest = JSON.parse(readFileSync(arg("--manifest"), "utf8"));
const outPath = arg("--out");
const dev = Device.parse(arg("--device", "cuda"));
const only = arg("--only", "");
const tag = arg("--tag", "");
const budget = Number(arg("--budget", "1e9"));
const targetMs = Number(arg("--target-ms", "25"));
const reps = Number(arg("--reps", "15"));
const warm = Number(arg("--warm", "3"));
const TOL = 2e-2;
const tStart = performance.now();

const result = {
  date: new Date().toISOString(),
  commit: process.env.COMMIT ?? "unknown",
  node: process.version,
  device: dev.info(),
  tag,
  env: { TESSERA_CUDA_NO_CUBLASLT: process.env.TESSERA_CUDA_NO_CUBLASLT ?? null },
  timing: `median of ${reps} samples, each N back-to-back launches between two awaited device.synchronize() (N so a sample lasts ~${targetMs} ms), after ${warm} warm-up launches`,
  cases: {},
};
const save = () => {
  writeFileSync(`${outPath}.tmp`, `${JSON.stringify(result, null, 1)}\n`);
  renameSync(`${outPath}.tmp`, outPath);
};

async function time(fn) {
  for (let i = 0; i < warm; i++) fn().dispose();
  await dev.synchronize();
  let t0 = performance.now();
  fn().dispose();
  await dev.synchronize();
  const est = Math.max(performance.now() - t0, 1e-3);
  const n = Math.max(1, Math.min(2000, Math.ceil(targetMs / est)));
  const samples = [];
  const enqueue = [];
  for (let r = 0; r < reps; r++) {
    await dev.synchronize();
    t0 = performance.now();
    for (let i = 0; i < n; i++) fn().dispose();
    const t1 = performance.now();
    await dev.synchronize();
    samples.push((performance.now() - t0) / n);
    enqueue.push((t1 - t0) / n);
  }
  const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  return {
    ms: med(samples),
    minMs: Math.min(...samples),
    maxMs: Math.max(...samples),
    n,
    reps,
    enqueueMsPerLaunch: med(enqueue),
  };
}

function makeBf16ToF32() {
  const b = new Uint32Array(1);
  const f = new Float32Array(b.buffer);
  return (h) => {
    b[0] = h << 16;
    return f[0];
  };
}
const toF32 = makeBf16ToF32();

/** Our output against the sampled reference: rel. error over the sampled rows, and a NaN/Inf scan of the whole output. */
async function check(c, out) {
  let refBuf;
  try {
    refBuf = readFileSync(c.ref);
  } catch {
    return { checked: false, reason: "no reference file" };
  }
  const ref = new Float32Array(new Uint8Array(refBuf).buffer);
  const raw = await out.toTypedArray();
  const isBits = !(raw instanceof Float32Array);
  const value = isBits ? (i) => toF32(raw[i]) : (i) => raw[i];
  let nonFinite = 0;
  if (isBits) {
    for (let i = 0; i < raw.length; i++) if ((raw[i] & 0x7f80) === 0x7f80) nonFinite++;
  } else {
    for (let i = 0; i < raw.length; i++) if (!Number.isFinite(raw[i])) nonFinite++;
  }
  const { rows, rowLen, refStride } = c;
  const nSample = Math.ceil(rows / refStride);
  if (raw.length !== rows * rowLen || ref.length !== nSample * rowLen)
    return {
      checked: false,
      reason: `size mismatch: out ${raw.length}, ref ${ref.length}, expected ${rows * rowLen} / ${nSample * rowLen}`,
    };
  let num = 0;
  let den = 0;
  let maxAbs = 0;
  for (let s = 0; s < nSample; s++) {
    const base = s * refStride * rowLen;
    for (let j = 0; j < rowLen; j++) {
      const o = value(base + j);
      const r = ref[s * rowLen + j];
      const d = o - r;
      num += d * d;
      den += r * r;
      if (Math.abs(d) > maxAbs) maxAbs = Math.abs(d);
    }
  }
  const relErr = den > 0 ? Math.sqrt(num / den) : Math.sqrt(num);
  const pass = nonFinite === 0 && Number.isFinite(relErr) && relErr <= TOL;
  return { checked: true, relErr, maxAbs, nonFinite, sampledRows: nSample, pass };
}

function setup(c) {
  const t = {};
  for (const i of c.inputs) t[i.name] = randn(i.shape, { seed: i.seed, dtype: c.dtype, device: dev });
  const p = c.params;
  switch (c.kind) {
    case "attention": {
      if (p.keyLen != null) t.keyLengths = Tensor.from([p.keyLen], [1], { dtype: "i32", device: dev });
      const opts = {};
      if (p.group && p.group !== "full") opts.group = p.group;
      if (p.group !== "full" || p.rope) opts.grid = p.grid;
      if (p.rope) opts.rope = true;
      if (t.keyLengths) opts.keyLengths = t.keyLengths;
      return { t, fn: () => attention(t.q, t.k, t.v, opts) };
    }
    case "linear":
      return {
        t,
        fn: () => linear(t.x, t.w, t.b, p.epilogue && p.epilogue !== "none" ? { epilogue: p.epilogue } : {}),
      };
    case "patch":
      return { t, fn: () => patchEmbed3d(t.x, t.w, t.b) };
    case "conv3d": {
      // Causal in time; params.padHW / params.stride for other convs (default: the VAE's 3x3x3, pad 1).
      const opts = { bias: t.b, causal: true, padding: p.padHW ?? 1, stride: p.stride, prev: t.prev };
      return { t, fn: () => conv3d(t.x, t.w, opts) };
    }
    case "layernorm":
      return { t, fn: () => layerNorm(t.x, { eps: p.eps, scale: t.scale, shift: t.shift }) };
    case "gated_residual":
      return { t, fn: () => gatedResidual(t.x, t.y, t.gate) };
    case "rng":
      return {
        t,
        fn: () => randn(c.inputs[0].shape, { seed: c.inputs[0].seed, dtype: c.dtype, device: dev }),
      };
    default:
      throw new Error(`unknown kind ${c.kind}`);
  }
}

// Warm the GPU (clocks, module load, cuBLASLt handle) before the first timed case.
if (dev.kind === "cuda") {
  const a = randn([4096, 4096], { seed: 7, dtype: "bf16", device: dev });
  const t0 = performance.now();
  while (performance.now() - t0 < 1000) {
    for (let i = 0; i < 20; i++) linear(a, a).dispose();
    await dev.synchronize();
  }
  a.dispose();
}

for (const c of manifest.cases) {
  if (only && !c.name.includes(only)) continue;
  const r = {};
  result.cases[c.name] = r;
  if ((performance.now() - tStart) / 1e3 > budget) {
    r.skipped = "time budget";
    save();
    continue;
  }
  const t0 = performance.now();
  let s;
  try {
    s = setup(c);
    const out = s.fn();
    Object.assign(r, await check(c, out));
    out.dispose();
    if (!c.checkOnly) Object.assign(r, await time(s.fn));
  } catch (e) {
    r.error = `${e?.name ?? "Error"}: ${String(e?.message ?? e).split("\n")[0]}`;
  } finally {
    if (s) for (const x of Object.values(s.t)) x.dispose();
    await dev.synchronize().catch(() => {});
    dev.emptyCache();
  }
  r.wallS = (performance.now() - t0) / 1e3;
  const chk = r.checked
    ? `err ${r.relErr.toExponential(2)}${r.pass ? "" : " FAIL"}`
    : `unchecked (${r.reason ?? r.error})`;
  console.log(
    `[ours${tag ? `:${tag}` : ""}] ${c.name}: ${r.ms !== undefined ? `${r.ms.toFixed(4)} ms (enqueue ${r.enqueueMsPerLaunch.toFixed(4)} ms/launch)` : ""} ${chk}${r.error ? ` ERROR ${r.error}` : ""}`,
  );
  save();
}
result.wallS = (performance.now() - tStart) / 1e3;
result.memoryPeak = dev.memoryStats().peak;
save();

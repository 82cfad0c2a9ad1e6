// CPU benchmark: `pnpm bench` at the repository root (after a build).
//
// Times matmul 1024x1024x1024 f32 and attention (320 tokens, 4 heads of 64) on the
// CPU backend, and numpy's matmul of the same size in the same run, then writes
// every figure to results/cpu.json (the date is inside). Options: --runs N (samples, default 9),
// --out PATH (the JSON record), --no-numpy.
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { attention, Device, matmul, Tensor } from "@tessera/native";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const arg = (name, def) => (args.includes(name) ? args[args.indexOf(name) + 1] : def);
const samples = Number(arg("--runs", "9"));
const skipNumpy = args.includes("--no-numpy");

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

// Random normal-ish values without pulling in the test RNG.
function randomF32(n, seed) {
  const v = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    v[i] = s / 2 ** 31 - 1;
  }
  return v;
}

// Each sample queues `reps` ops back to back and waits once, so the wait's hop
// through the event loop is spread over several ops (numpy is timed the same way).
async function timeOp(run, { reps, warmup = 2 }) {
  const cpu = Device.cpu;
  const once = async () => {
    const start = performance.now();
    const outs = [];
    for (let i = 0; i < reps; i++) outs.push(run());
    await cpu.synchronize();
    const ms = (performance.now() - start) / reps;
    for (const o of outs) o.dispose();
    return ms;
  };
  for (let i = 0; i < warmup; i++) await once();
  const times = [];
  for (let i = 0; i < samples; i++) times.push(await once());
  return { medianMs: median(times), minMs: Math.min(...times), samplesMs: times, reps };
}

function git(...a) {
  const r = spawnSync("git", a, { cwd: here, encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : null;
}

// numpy's matmul of the same size, timed the same way, in a child process whose
// OpenBLAS is left to pick its own kernel and cache sizes.
function numpyMatmul(n, reps) {
  if (skipNumpy) return { skipped: "--no-numpy" };
  const script = `
import json, sys, time
try:
    import numpy as np
except Exception as e:
    print(json.dumps({"skipped": "numpy is not installed (" + type(e).__name__ + ")"})); sys.exit(0)
n, reps, samples = ${n}, ${reps}, ${samples}
rng = np.random.default_rng(0)
a = rng.standard_normal((n, n), dtype=np.float32); b = rng.standard_normal((n, n), dtype=np.float32)
def once():
    t = time.perf_counter()
    for _ in range(reps): a @ b
    return (time.perf_counter() - t) / reps * 1e3
for _ in range(2): once()
times = [once() for _ in range(samples)]
blas = None
try:
    cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    blas = (cfg.get("name") or "") + " " + (cfg.get("version") or "")
except Exception:
    pass
print(json.dumps({"samplesMs": times, "numpy": np.__version__, "blas": blas}))
`;
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const r = spawnSync("python3", ["-c", script], { env, encoding: "utf8" });
  if (r.error) return { skipped: `python3 could not be run (${r.error.code ?? r.error.message})` };
  if (r.status !== 0) return { skipped: `python3 failed: ${(r.stderr || "").trim().split("\n").pop()}` };
  const out = JSON.parse(r.stdout.trim().split("\n").pop());
  if (out.skipped) return out;
  return { ...out, medianMs: median(out.samplesMs), minMs: Math.min(...out.samplesMs), reps };
}

const gflops = (flops, ms) => flops / (ms * 1e6);
const fmt = (x, d = 1) => (x === null || x === undefined ? "-" : x.toFixed(d));

async function main() {
  const info = Device.cpu.info();
  console.log(`cpu: ${info.description} (${info.threads} threads)`);
  const rows = [];

  // matmul 1024^3
  const n = 1024;
  const a = Tensor.from(randomF32(n * n, 1), [n, n]);
  const b = Tensor.from(randomF32(n * n, 2), [n, n]);
  const mmFlops = 2 * n * n * n;
  const mm = await timeOp(() => matmul(a, b), { reps: 8 });
  a.dispose();
  b.dispose();
  const mmRow = {
    name: `matmul ${n}x${n}x${n} f32`,
    flops: mmFlops,
    ...mm,
    gflops: gflops(mmFlops, mm.medianMs),
  };
  rows.push(mmRow);

  // attention: 320 tokens, 4 heads of 64 (QK^T and PV: 4·B·H·L²·D flops)
  const [B, L, H, D] = [1, 320, 4, 64];
  const q = Tensor.from(randomF32(B * L * H * D, 3), [B, L, H, D]);
  const k = Tensor.from(randomF32(B * L * H * D, 4), [B, L, H, D]);
  const v = Tensor.from(randomF32(B * L * H * D, 5), [B, L, H, D]);
  const attFlops = 4 * B * H * L * L * D;
  const att = await timeOp(() => attention(q, k, v), { reps: 20 });
  for (const t of [q, k, v]) t.dispose();
  rows.push({
    name: `attention L=${L} H=${H} D=${D} f32`,
    flops: attFlops,
    ...att,
    gflops: gflops(attFlops, att.medianMs),
  });

  const np = numpyMatmul(n, 8);
  const npRow = np.skipped
    ? { name: `numpy matmul ${n}x${n}x${n} f32`, skipped: np.skipped }
    : {
        name: `numpy matmul ${n}x${n}x${n} f32`,
        flops: mmFlops,
        ...np,
        gflops: gflops(mmFlops, np.medianMs),
      };
  rows.push(npRow);
  const ratio = npRow.gflops ? mmRow.gflops / npRow.gflops : null;

  console.log("");
  console.log(
    `${"benchmark".padEnd(36)}${"median ms".padStart(11)}${"best ms".padStart(10)}${"GFLOP/s".padStart(10)}`,
  );
  for (const r of rows) {
    if (r.skipped) console.log(`${r.name.padEnd(36)}  skipped: ${r.skipped}`);
    else
      console.log(
        `${r.name.padEnd(36)}${fmt(r.medianMs, 3).padStart(11)}${fmt(r.minMs, 3).padStart(10)}${fmt(r.gflops).padStart(10)}`,
      );
  }
  if (ratio !== null)
    console.log(
      `\ntessera / numpy matmul: ${fmt(ratio, 2)}x (${npRow.numpy}, ${npRow.blas ?? "unknown BLAS"})`,
    );

  const now = new Date();
  const record = {
    date: now.toISOString(),
    commit: git("rev-parse", "HEAD"),
    dirty: (git("status", "--porcelain") ?? "") !== "",
    device: {
      description: info.description,
      threads: info.threads,
      cpus: os.cpus().length,
      platform: `${os.platform()} ${os.release()} ${os.arch()}`,
      memoryBytes: os.totalmem(),
      node: process.version,
      env: { TESSERA_NUM_THREADS: process.env.TESSERA_NUM_THREADS ?? null },
    },
    samples,
    results: rows,
    matmulRatioToNumpy: ratio,
  };
  const out = arg("--out", join(here, "results", "cpu.json"));
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(record, null, 2)}\n`);
  console.log(`\nwrote ${out}`);
}

await main();

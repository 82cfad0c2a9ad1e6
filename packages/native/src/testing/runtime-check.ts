// Runtime checks that need a real GPU (run by scripts/gpu/check.sh):
//   node dist/testing/runtime-check.js [--out result.json]
// Out-of-memory is typed and recoverable, transfers round-trip exactly, reads
// back leave the event loop free, CUDA graphs replay what eager runs give, and
// disposed tensors return to the cache.
import { writeFileSync } from "node:fs";
import { cudaStatus, Device } from "../device.js";
import { OutOfMemoryError } from "../errors.js";
import { copyAsync, pinnedEmpty } from "../host-copy.js";
import { matmul } from "../ops/gemm.js";
import { Tensor } from "../tensor.js";
import { checkCaptureRefusals, checkGraphReplay } from "./graph-checks.js";
import { HostRng } from "./random.js";

interface Check {
  name: string;
  pass: boolean;
  detail: string;
}

const args = process.argv.slice(2);
const outPath = args.includes("--out") ? args[args.indexOf("--out") + 1] : undefined;
const checks: Check[] = [];
const record = (name: string, pass: boolean, detail: string) => {
  checks.push({ name, pass, detail });
  console.log(`${pass ? "PASS" : "FAIL"} ${name}: ${detail}`);
};

async function run(): Promise<void> {
  const status = cudaStatus();
  if (!status.available) {
    record("cuda available", false, status.reason);
    return;
  }
  const gpu = Device.cuda(0);
  const info = gpu.info();
  record("cuda available", true, `${info.description}, sm_${info.sm}, cuBLASLt ${info.hasBlas}`);

  // Out of memory: far more than the card has, then normal work on the same device.
  try {
    Tensor.empty([1 << 30, 1 << 10], { device: gpu, dtype: "f32" }); // 4 TiB
    record("oom is typed", false, "allocation of 4 TiB succeeded");
  } catch (e) {
    record("oom is typed", e instanceof OutOfMemoryError, `${(e as Error).name}: ${(e as Error).message}`);
  }
  const rng = new HostRng(7);
  const v = rng.normals(4097);
  const t = Tensor.from(v, [4097], { device: gpu });
  const back = await t.toFloat32Array();
  record(
    "works after oom, exact round trip",
    back.every((x, i) => x === v[i]),
    "4097 f32 values",
  );

  // cpu -> cuda -> cpu, every dtype.
  for (const dtype of ["f32", "bf16", "f16", "i32", "u8"] as const) {
    const vals =
      dtype === "u8" ? rng.ints(77, 0, 256) : dtype === "i32" ? rng.ints(77, -1000, 1000) : rng.normals(77);
    const c = Tensor.from(vals, [7, 11], { dtype });
    const g = await c.to(gpu);
    const h = await g.to("cpu");
    const a = await c.toFloat32Array();
    const b = await h.toFloat32Array();
    record(
      `transfer ${dtype}`,
      a.every((x, i) => x === b[i]),
      "cpu -> cuda:0 -> cpu",
    );
    for (const x of [c, g, h]) x.dispose();
  }

  // Page-locked host memory and the asynchronous copy (an idle expert's swap): a round trip
  // is exact, and the bus rate both ways (256 MiB of bf16).
  {
    const m = 128 << 20;
    const src = Tensor.from(rng.normals(4099), [4099], { device: gpu });
    const pinned = pinnedEmpty([4099], { forDevice: gpu });
    copyAsync(pinned, src);
    const dst = Tensor.empty([4099], { device: gpu });
    copyAsync(dst, pinned);
    await gpu.synchronize();
    const x0 = await src.toFloat32Array();
    const x1 = await pinned.toFloat32Array();
    const x2 = await dst.toFloat32Array();
    record(
      "pinned round trip",
      pinned.device.name === "cpu" && x0.every((v, i) => v === x1[i] && v === x2[i]),
      "cuda:0 -> page-locked host -> cuda:0, 4099 f32 values",
    );
    for (const z of [src, pinned, dst]) z.dispose();
    const big = Tensor.empty([m], { device: gpu, dtype: "bf16" });
    const host = pinnedEmpty([m], { dtype: "bf16", forDevice: gpu });
    const rate = async (fn: () => void) => {
      fn();
      await gpu.synchronize();
      const t0 = performance.now();
      for (let i = 0; i < 4; i++) fn();
      await gpu.synchronize();
      return (4 * 2 * m) / 1e6 / (performance.now() - t0);
    };
    const d2h = await rate(() => copyAsync(host, big));
    const h2d = await rate(() => copyAsync(big, host));
    record(
      "pinned copy rate",
      h2d > 5 && d2h > 5,
      `host->device ${h2d.toFixed(1)} GB/s, device->host ${d2h.toFixed(1)} GB/s`,
    );
    big.dispose();
    host.dispose();
  }

  // A long GPU queue: the event loop keeps ticking while we wait for the result.
  const n = 4096;
  const a = Tensor.from(rng.normals(n * n, 1 / 64), [n, n], { device: gpu, dtype: "bf16" });
  let x = a;
  const chain: Tensor[] = [];
  for (let i = 0; i < 50; i++) {
    x = matmul(x, a);
    chain.push(x);
  }
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  const start = performance.now();
  await x.toFloat32Array();
  clearInterval(timer);
  const waited = performance.now() - start;
  // A free event loop fires a 1 ms interval every few ms; a blocked one barely at all.
  record(
    "async read",
    ticks >= Math.max(1, Math.floor(waited / 20)),
    `${ticks} timer ticks during a ${waited.toFixed(0)} ms wait`,
  );
  for (const c of chain) c.dispose();
  a.dispose();
  t.dispose();
  // CUDA graphs: replay on refilled inputs equals eager; refusals inside a capture.
  for (const c of [...(await checkGraphReplay(gpu)), ...(await checkCaptureRefusals(gpu))])
    record(c.name, c.pass, c.detail);

  await gpu.synchronize();
  const stats = gpu.memoryStats();
  record(
    "memory returned to cache",
    stats.inUse === 0,
    `in use ${stats.inUse} B, cached ${stats.cached} B, peak ${stats.peak} B`,
  );
}

await run();
const failed = checks.filter((c) => !c.pass).length;
console.log(`${checks.length - failed} passed, ${failed} failed`);
if (outPath)
  writeFileSync(outPath, `${JSON.stringify({ date: new Date().toISOString(), checks }, null, 1)}\n`);
process.exitCode = failed ? 1 : 0;

// CUDA-graph checks that need a GPU, shared by graph.test.ts (vitest, where a GPU is
// present) and runtime-check.ts (the GPU host, no vitest). Each returns its outcome
// rather than asserting, so both runners report it their own way.
import type { Device } from "../device.js";
import { captureGraph } from "../graph.js";
import { add, assign, cast, geluTanh } from "../ops/elementwise.js";
import { matmul } from "../ops/gemm.js";
import { scope } from "../scope.js";
import { Tensor } from "../tensor.js";
import { HostRng } from "./random.js";

export interface GraphCheck {
  name: string;
  pass: boolean;
  detail: string;
}

/**
 * Captures matmul → add → GELU → cast on one input, then three times refills the
 * input with fresh random values, replays, and compares with the same ops run eagerly
 * (bit for bit: same kernels, same inputs). Also: replays allocate nothing, and the
 * graph's memory is back in the cache once it and its output are disposed.
 */
export async function checkGraphReplay(dev: Device, seed = 99): Promise<GraphCheck[]> {
  const out: GraphCheck[] = [];
  await dev.synchronize();
  const inUse0 = dev.memoryStats().inUse;
  const rng = new HostRng(seed);
  const fresh = () => Tensor.from(rng.normals(64 * 48, 1), [64, 48], { device: dev });
  const w = Tensor.from(rng.normals(48 * 32, 0.2), [48, 32], { device: dev, dtype: "bf16" });
  const x = Tensor.empty([64, 48], { device: dev, dtype: "bf16" });
  const first = fresh();
  assign(x, first);
  first.dispose();
  const run = () => scope(() => cast(geluTanh(add(matmul(x, w), matmul(x, w))), "f32"));
  const { graph, result } = await captureGraph(dev, run);
  let worst = 0;
  let allocated = 0;
  for (let i = 0; i < 3; i++) {
    const src = fresh();
    assign(x, src);
    src.dispose();
    const before = dev.memoryStats().inUse;
    graph.replay();
    allocated += dev.memoryStats().inUse - before;
    const want = run();
    const [a, b] = [await result.toFloat32Array(), await want.toFloat32Array()];
    want.dispose();
    for (let k = 0; k < a.length; k++)
      if (a[k] !== b[k]) worst = Math.max(worst, Math.abs((a[k] as number) - (b[k] as number)) || 1);
  }
  out.push({
    name: "graph replay equals eager",
    pass: worst === 0,
    detail: `3 replays on refilled [64, 48] bf16 inputs; largest difference ${worst}`,
  });
  out.push({
    name: "graph replay allocates nothing",
    pass: allocated === 0,
    detail: `${allocated} B during replays`,
  });
  graph.dispose();
  result.dispose();
  for (const t of [w, x]) t.dispose();
  await dev.synchronize();
  const inUse2 = dev.memoryStats().inUse;
  out.push({
    name: "graph memory returned",
    pass: inUse2 === inUse0,
    detail: `in use ${inUse0} B before, ${inUse2} B once the graph and every tensor are disposed`,
  });
  return out;
}

/** Uploads and Promise-returning functions are refused inside a capture, a worker-thread wait is held until it ends, and the device recovers. */
export async function checkCaptureRefusals(dev: Device): Promise<GraphCheck[]> {
  const out: GraphCheck[] = [];
  const refused = async (fn: () => unknown, want: RegExp) => {
    try {
      await captureGraph(dev, fn);
      return "captured";
    } catch (e) {
      return want.test((e as Error).message) ? "" : (e as Error).message;
    }
  };
  const up = await refused(
    () => Tensor.from([1, 2], [2], { device: dev }),
    /while a CUDA graph is being captured/,
  );
  out.push({
    name: "upload refused during capture",
    pass: up === "",
    detail: up || "DeviceError naming the capture",
  });
  const pr = await refused(() => Promise.resolve(1), /returned a Promise/);
  out.push({ name: "async fn refused", pass: pr === "", detail: pr || "DeviceError naming the Promise" });
  const a = Tensor.from([1, 2, 3], [3], { device: dev });
  // A device.synchronize() started inside the capture runs on a worker thread: it
  // waits for the capture to end instead of breaking it.
  let waited: Promise<void> = Promise.resolve();
  const { graph, result } = await captureGraph(dev, () => {
    waited = dev.synchronize();
    return add(a, a);
  });
  const syncErr = await waited.then(
    () => "",
    (e: Error) => e.message,
  );
  out.push({
    name: "synchronize() from inside a capture waits for it",
    pass: syncErr === "",
    detail: syncErr || "resolved after the capture, which succeeded",
  });
  graph.replay();
  const got = Array.from(await result.toFloat32Array());
  out.push({
    name: "capture works after refusals",
    pass: got.join() === "2,4,6",
    detail: `replay gave [${got}]`,
  });
  graph.dispose();
  a.dispose();
  result.dispose();
  return out;
}

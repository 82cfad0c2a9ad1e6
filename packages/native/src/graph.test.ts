import { describe, expect, it } from "vitest";
import { cudaStatus, Device } from "./device.js";
import { DeviceError, OpError } from "./errors.js";
import { captureGraph } from "./graph.js";
import { assign } from "./ops/elementwise.js";
import { Tensor } from "./tensor.js";
import { checkCaptureRefusals, checkGraphReplay } from "./testing/graph-checks.js";

const CUDA = cudaStatus().available;
const SKIP = CUDA ? "" : " [SKIPPED: no CUDA device]";

describe("assign (refilling a tensor in place)", () => {
  it("copies src into dst, casting to dst's dtype, on the CPU", async () => {
    const dst = Tensor.from([0, 0, 0, 0], [2, 2]);
    const src = Tensor.from([1.5, -2, 3.25, 4], [2, 2], { dtype: "bf16" });
    assign(dst, src);
    expect(Array.from(await dst.toFloat32Array())).toEqual([1.5, -2, 3.25, 4]);
    // A strided source is read through its strides.
    const t = src.permuteView([1, 0]);
    assign(dst, t);
    expect(Array.from(await dst.toFloat32Array())).toEqual([1.5, 3.25, -2, 4]);
    for (const x of [dst, src, t]) x.dispose();
  });

  it("refuses a shape mismatch, a non-contiguous dst and an aliased source, naming the argument", () => {
    const dst = Tensor.from([0, 0, 0, 0], [2, 2]);
    const bad = Tensor.from([1, 2, 3], [3]);
    expect(() => assign(dst, bad)).toThrow(OpError);
    expect(() => assign(dst, bad)).toThrow(/argument 'src' has shape \[3\] but dst has shape \[2, 2\]/);
    const tr = dst.permuteView([1, 0]);
    expect(() => assign(tr, dst)).toThrow(/argument 'dst' .*contiguous/);
    const view = dst.reshape([2, 2]);
    expect(() => assign(dst, view)).toThrow(/shares its storage/);
    for (const x of [dst, bad, tr, view]) x.dispose();
  });
});

describe("captureGraph", () => {
  it("refuses the CPU with a clear error", async () => {
    await expect(captureGraph("cpu", () => 1)).rejects.toThrow(DeviceError);
    await expect(captureGraph(Device.cpu, () => 1)).rejects.toThrow(/needs a CUDA device; cpu runs ops/);
  });

  it.skipIf(!CUDA)(`replays recorded ops on refilled inputs, equal to running them${SKIP}`, async () => {
    for (const c of await checkGraphReplay(Device.cuda(0)))
      expect(c.pass, `${c.name}: ${c.detail}`).toBe(true);
  });

  it.skipIf(!CUDA)(`refuses uploads and async work inside the capture, and recovers${SKIP}`, async () => {
    for (const c of await checkCaptureRefusals(Device.cuda(0)))
      expect(c.pass, `${c.name}: ${c.detail}`).toBe(true);
  });
});

import { describe, expect, it } from "vitest";
import { cudaStatus, Device } from "./device.js";
import { OpError } from "./errors.js";
import { copyAsync, pinnedEmpty, waitCopies } from "./host-copy.js";
import { add } from "./ops/elementwise.js";
import { Tensor } from "./tensor.js";

const CUDA = cudaStatus().available;
const SKIP = CUDA ? "" : " [SKIPPED: no CUDA device]";

describe("pinnedEmpty and copyAsync", () => {
  it("on the CPU: an ordinary host tensor and a queued copy", async () => {
    const src = Tensor.from([1.5, -2, 3.25, 4, 5, 6], [2, 3], { dtype: "bf16" });
    const host = pinnedEmpty([2, 3], { dtype: "bf16", forDevice: "cpu" });
    expect(host.device.name).toBe("cpu");
    expect(host.dtype).toBe("bf16");
    copyAsync(host, src);
    const back = Tensor.empty([6], { dtype: "bf16" });
    copyAsync(back, host);
    await Device.cpu.synchronize();
    expect(Array.from(await back.toFloat32Array())).toEqual([1.5, -2, 3.25, 4, 5, 6]);
    for (const t of [src, host, back]) t.dispose();
  });

  it("refuses a dtype or size mismatch and a non-contiguous tensor, naming the argument", () => {
    const a = Tensor.from([1, 2, 3, 4], [2, 2]);
    const b = Tensor.from([1, 2, 3], [3]);
    const c = Tensor.from([1, 2, 3, 4], [2, 2], { dtype: "bf16" });
    expect(() => copyAsync(a, b)).toThrow(OpError);
    expect(() => copyAsync(a, b)).toThrow(/op 'copyAsync': argument 'src' has 3 elements but dst has 4/);
    expect(() => copyAsync(a, c)).toThrow(/argument 'src' is bf16 but dst is f32/);
    const t = a.permuteView([1, 0]);
    expect(() => copyAsync(t, a)).toThrow(/argument 'dst' is not contiguous/);
    for (const x of [a, b, c, t]) x.dispose();
  });

  it(`on CUDA: page-locked host memory, to the device and back${SKIP}`, async (ctx) => {
    if (!CUDA) return ctx.skip();
    const n = 1 << 20;
    const values = Array.from({ length: n }, (_, i) => (i % 251) - 125);
    const src = Tensor.from(values, [n], { device: "cuda" });
    const host = pinnedEmpty([n], { forDevice: "cuda" });
    expect(host.device.name).toBe("cpu");
    copyAsync(host, src);
    const dev = Tensor.empty([n], { device: "cuda" });
    copyAsync(dev, host);
    await Device.cuda(0).synchronize();
    expect(Array.from(await dev.toFloat32Array())).toEqual(values);
    expect(Array.from(await host.toFloat32Array())).toEqual(values);
    expect(() => copyAsync(dev, src)).toThrow(/both on devices/);
    for (const t of [src, host, dev]) t.dispose();
  });

  it("on the CPU, a copy on the copy stream is the queued copy and waitCopies a no-op", async () => {
    const src = Tensor.from([1, 2, 3, 4], [4]);
    const host = pinnedEmpty([4], { forDevice: "cpu" });
    copyAsync(host, src, { stream: "copy" });
    waitCopies("cpu");
    expect(Array.from(await host.toFloat32Array())).toEqual([1, 2, 3, 4]);
    expect(() => copyAsync(host, Tensor.from([1], [1]), { stream: "copy" })).toThrow(/has 1 elements/);
    for (const t of [src, host]) t.dispose();
  });

  it(`on CUDA: the copy stream waits for earlier compute and compute for it at waitCopies${SKIP}`, async (ctx) => {
    if (!CUDA) return ctx.skip();
    const n = 1 << 22;
    const host = pinnedEmpty([n], { forDevice: "cuda" });
    const seed = Tensor.from(
      Array.from({ length: n }, (_, i) => i % 97),
      [n],
      { device: "cuda" },
    );
    copyAsync(host, seed);
    await Device.cuda(0).synchronize();
    const dev = Tensor.empty([n], { device: "cuda" });
    copyAsync(dev, host, { stream: "copy" });
    waitCopies("cuda");
    const doubled = add(dev, dev);
    const got = await doubled.toFloat32Array();
    expect(got[n - 1]).toBe(2 * ((n - 1) % 97));
    expect(got[12345]).toBe(2 * (12345 % 97));
    for (const t of [host, seed, dev, doubled]) t.dispose();
  });
});

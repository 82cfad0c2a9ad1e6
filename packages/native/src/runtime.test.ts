import { describe, expect, it } from "vitest";
import { cudaStatus, Device } from "./device.js";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "./dtype.js";
import { DeviceError, OpError, OutOfMemoryError, TesseraError } from "./errors.js";
import { matmul } from "./ops/gemm.js";
import { liveTensorCount, scope } from "./scope.js";
import { Tensor } from "./tensor.js";
import { measurePeak } from "./testing/peak.js";
import { HostRng } from "./testing/random.js";

const rng = new HostRng(1234);

describe("tensor transfer", () => {
  it("round-trips every dtype through the CPU device", async () => {
    const v = rng.normals(77, 3);
    const f32 = Tensor.from(v, [7, 11]);
    expect(Array.from(await f32.toFloat32Array())).toEqual(Array.from(v));
    const bf = Tensor.from(v, [77], { dtype: "bf16" });
    const bfBack = await bf.toFloat32Array();
    for (let i = 0; i < v.length; i++) expect(bfBack[i]).toBe(bf16ToF32(f32ToBf16(v[i] as number)));
    const h = Tensor.from(v, [77], { dtype: "f16" });
    const hBack = await h.toFloat32Array();
    for (let i = 0; i < v.length; i++) expect(hBack[i]).toBe(f16ToF32(f32ToF16(v[i] as number)));
    const ints = Int32Array.from([-5, 0, 7, 2147483647]);
    const it32 = Tensor.from(ints, [4], { dtype: "i32" });
    expect(Array.from((await it32.toTypedArray()) as Int32Array)).toEqual(Array.from(ints));
    const u8 = Tensor.from([0, 1, 255], [3], { dtype: "u8" });
    expect(Array.from((await u8.toTypedArray()) as Uint8Array)).toEqual([0, 1, 255]);
    for (const t of [f32, bf, h, it32, u8]) t.dispose();
  });

  it("bf16/f16 conversions round to nearest even like the hardware", () => {
    expect(bf16ToF32(f32ToBf16(1 + 2 ** -8))).toBe(1); // tie goes to even
    expect(bf16ToF32(f32ToBf16(1 + 3 * 2 ** -8))).toBe(1 + 2 ** -6);
    expect(f16ToF32(f32ToF16(65504))).toBe(65504);
    expect(f16ToF32(f32ToF16(1e6))).toBe(Number.POSITIVE_INFINITY);
    expect(f16ToF32(f32ToF16(2 ** -24))).toBe(2 ** -24); // smallest subnormal
    expect(Number.isNaN(bf16ToF32(f32ToBf16(Number.NaN)))).toBe(true);
  });

  it("rejects data that does not fit the shape, naming the argument", () => {
    expect(() => Tensor.from([1, 2, 3], [2, 2])).toThrow(OpError);
    expect(() => Tensor.from([1, 2, 3], [2, 2])).toThrow(/'data'/);
    expect(() => Tensor.from([1], [1.5])).toThrow(/'shape'/);
    expect(() => Tensor.from([1], [-1])).toThrow(/'shape'/);
    expect(() => Tensor.from([1], [1], { dtype: "f64" as never })).toThrow(/'dtype'/);
  });
});

describe("devices", () => {
  it("parses device names and rejects unknown ones", () => {
    expect(Device.parse("cpu").name).toBe("cpu");
    expect(Device.parse("cuda").name).toBe("cuda:0");
    expect(Device.parse("cuda:3").name).toBe("cuda:3");
    expect(() => Device.parse("tpu")).toThrow(DeviceError);
    expect(() => Device.parse("cuda:x")).toThrow(/'cuda:x'/);
  });

  it("reports why CUDA is unavailable, and a CUDA tensor then fails with that reason", () => {
    const s = cudaStatus();
    if (s.available) return; // a GPU machine: nothing to check here
    expect(s.reason.length).toBeGreaterThan(0);
    expect(() => Tensor.from([1], [1], { device: "cuda:0" })).toThrow(TesseraError);
    expect(() => Tensor.from([1], [1], { device: "cuda:0" })).toThrow(/not available/);
  });

  it("describes the CPU", () => {
    const info = Device.cpu.info();
    expect(info.name).toBe("cpu");
    expect(info.threads).toBeGreaterThanOrEqual(1);
  });
});

describe("lifetime", () => {
  it("dispose is idempotent and a disposed tensor is a clear error", async () => {
    const a = Tensor.from([1, 2, 3, 4], [2, 2]);
    const b = Tensor.from([1, 0, 0, 1], [2, 2]);
    a.dispose();
    a.dispose();
    expect(a.disposed).toBe(true);
    expect(() => matmul(a, b)).toThrow(OpError);
    expect(() => matmul(a, b)).toThrow(/argument 'a' was disposed/);
    await expect(a.toFloat32Array()).rejects.toThrow(/disposed/);
    b.dispose();
  });

  it("scope disposes what it created except its result", () => {
    const before = liveTensorCount();
    const kept = scope(() => {
      const a = Tensor.from([1, 2, 3, 4], [2, 2]);
      const b = Tensor.from([1, 0, 0, 1], [2, 2]);
      const c = matmul(a, b);
      expect(liveTensorCount()).toBe(before + 3);
      return c;
    });
    expect(liveTensorCount()).toBe(before + 1);
    expect(kept.disposed).toBe(false);
    kept.dispose();
    expect(liveTensorCount()).toBe(before);
  });

  it("scope handles nesting, keep(), async bodies and thrown errors", async () => {
    const before = liveTensorCount();
    let kept: Tensor | undefined;
    const out = await scope(async (keep) => {
      const a = Tensor.from([1, 2], [1, 2]);
      kept = keep(Tensor.from([5], [1]));
      const inner = scope(() => {
        const t = Tensor.from([1, 1], [2, 1]);
        return { y: matmul(a, t) };
      });
      await new Promise((r) => setTimeout(r, 1));
      return inner.y;
    });
    expect(Array.from(await out.toFloat32Array())).toEqual([3]);
    expect(liveTensorCount()).toBe(before + 2);
    out.dispose();
    kept?.dispose();
    expect(() =>
      scope(() => {
        Tensor.from([1], [1]);
        throw new Error("boom");
      }),
    ).toThrow("boom");
    expect(liveTensorCount()).toBe(before);
  });

  it("out of memory is a typed error and the device keeps working", async () => {
    const cpu = Device.cpu;
    cpu.setMemoryLimit(cpu.memoryStats().inUse + (1 << 20));
    try {
      let err: unknown;
      try {
        Tensor.empty([1024, 1024], { dtype: "f32" }); // 4 MiB > 1 MiB limit
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(OutOfMemoryError);
      expect((err as OutOfMemoryError).device).toBe("cpu");
      expect((err as Error).message).toMatch(/out of memory on cpu/);
      const small = Tensor.from([1, 2, 3], [3]);
      expect(Array.from(await small.toFloat32Array())).toEqual([1, 2, 3]);
      small.dispose();
    } finally {
      cpu.setMemoryLimit(0);
    }
  });
});

describe("views", () => {
  it("reshape, narrow and permuteView share memory and check bounds", async () => {
    const t = Tensor.from([0, 1, 2, 3, 4, 5], [2, 3]);
    const r = t.reshape([3, -1]);
    expect(r.shape).toEqual([3, 2]);
    expect(Array.from(await r.toFloat32Array())).toEqual([0, 1, 2, 3, 4, 5]);
    const p = t.permuteView([1, 0]);
    expect(p.isContiguous).toBe(false);
    expect(() => p.reshape([6])).toThrow(/not contiguous/);
    expect(() => matmul(p, t)).toThrow(/argument 'a' is not contiguous/);
    const n = t.narrow(0, 1, 1);
    expect(n.isContiguous).toBe(true);
    expect(Array.from(await n.toFloat32Array())).toEqual([3, 4, 5]);
    expect(() => t.narrow(1, 2, 2)).toThrow(OpError);
    expect(() => t.permuteView([0, 0])).toThrow(/permutation/);
    expect(() => t.reshape([4])).toThrow(/elements/);
    for (const x of [t, r, p, n]) x.dispose();
  });
});

describe("asynchronous execution", () => {
  it("ops return before the CPU work is done and reading back leaves the event loop free", async () => {
    const n = 384;
    const a = Tensor.from(rng.normals(n * n), [n, n]);
    let x = a;
    const chain: Tensor[] = [];
    for (let i = 0; i < 6; i++) {
      x = matmul(x, a, { alpha: 1 / Math.sqrt(n) });
      chain.push(x);
    }
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const values = await x.toFloat32Array();
    clearInterval(timer);
    expect(values.length).toBe(n * n);
    expect(values.every(Number.isFinite)).toBe(true);
    // The interval kept firing while the native thread computed.
    expect(ticks).toBeGreaterThan(0);
    for (const t of [a, ...chain]) t.dispose();
  });

  it("inline, the CPU frees memory in program order, as a CUDA stream does, with the same results", async () => {
    const cpu = Device.cpu;
    const n = 256;
    const bytes = n * n * 4;
    const a = Tensor.from(rng.normals(n * n), [n, n]);
    // A chain that frees each step's input as soon as the next step is enqueued.
    const run = () => {
      let x = matmul(a, a, { alpha: 1 / Math.sqrt(n) });
      for (let i = 0; i < 8; i++) {
        const y = matmul(x, a, { alpha: 1 / Math.sqrt(n) });
        x.dispose();
        x = y;
      }
      return x;
    };
    const queued = run();
    const want = await queued.toFloat32Array();
    queued.dispose();
    cpu.setInline(true);
    try {
      const { result: x, peakBytes } = await measurePeak(cpu, run);
      const base = cpu.memoryStats().inUse - x.nbytes;
      const got = await x.toFloat32Array();
      x.dispose();
      expect(Array.from(got)).toEqual(Array.from(want));
      // Inline, at most two of the chain's results are alive at once (input and output of a step).
      expect(peakBytes).toBeGreaterThanOrEqual(bytes);
      expect(peakBytes).toBeLessThanOrEqual(2 * bytes);
      expect(cpu.memoryStats().inUse).toBe(base);
    } finally {
      cpu.setInline(false);
    }
    a.dispose();
    if (cudaStatus().available) expect(() => Device.cuda(0).setInline(true)).toThrow(/only the CPU/);
  });
});

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { native } from "../binding.js";
import { Device } from "../device.js";
import { type DType, f32ToBf16, f32ToF16 } from "../dtype.js";
import { OpError } from "../errors.js";
import { liveTensorCount, scope } from "../scope.js";
import { numel, Tensor } from "../tensor.js";
import { expectOpError } from "../testing/expect-op-error.js";
import { HostRng } from "../testing/random.js";
import { cast } from "./elementwise.js";
import { embedding, full, ones, randn, timestepEmbedding, upsampleNearest, zeros } from "./misc.js";
import { runOp } from "./run.js";

const rng = new HostRng(777);

// Fresh outputs are NaN-filled, so an element a kernel forgets to write fails the comparison.
beforeAll(() => native.setPoison(true));
afterAll(() => native.setPoison(false));

function expectEqualValues(got: ArrayLike<number>, ref: ArrayLike<number>): void {
  expect(got.length).toBe(ref.length);
  for (let i = 0; i < ref.length; i++) {
    const g = got[i] as number;
    const r = ref[i] as number;
    if (g !== r && !(Number.isNaN(g) && Number.isNaN(r)))
      expect.fail(`element ${i}: got ${g}, expected ${r}`);
  }
}

// ---- fill ----

describe("full / zeros / ones", () => {
  it("fills every dtype with the value converted like a cast", () =>
    scope(async () => {
      const cases: [DType, number, number][] = [
        ["f32", 0.1, Math.fround(0.1)],
        ["bf16", 0.1, f32ToBf16(0.1)],
        ["f16", -3.3, f32ToF16(-3.3)],
        ["i32", -2147483648, -2147483648],
        ["i32", 2147483647, 2147483647],
        ["u8", 255, 255],
      ];
      for (const [dtype, value, want] of cases) {
        for (const shape of [[1], [7, 77], [4097], [2, 3, 5, 7]]) {
          const t = full(shape, value, { dtype });
          expect(t.dtype).toBe(dtype);
          expect(t.shape).toEqual(shape);
          const got = await t.toTypedArray();
          expect(got.length).toBe(numel(shape));
          for (const g of got)
            if (g !== want) expect.fail(`${dtype} fill of ${value}: got ${g}, expected ${want}`);
        }
      }
    }));

  it("zeros and ones, scalars, empty shapes, NaN and infinity", () =>
    scope(async () => {
      expect(Array.from(await zeros([7]).toFloat32Array())).toEqual(new Array(7).fill(0));
      expect(Array.from(await ones([3], { dtype: "f16" }).toFloat32Array())).toEqual([1, 1, 1]);
      expect(Array.from((await zeros([5], { dtype: "u8" }).toTypedArray()) as Uint8Array)).toEqual([
        0, 0, 0, 0, 0,
      ]);
      expect(
        Array.from((await ones([2], { dtype: "i32", device: Device.cpu }).toTypedArray()) as Int32Array),
      ).toEqual([1, 1]);
      const s = full([], 2.5);
      expect(s.shape).toEqual([]);
      expect(Array.from(await s.toFloat32Array())).toEqual([2.5]);
      expect(full([3, 0], 1).shape).toEqual([3, 0]);
      expectEqualValues(await full([2], Number.NaN, { dtype: "bf16" }).toFloat32Array(), [
        Number.NaN,
        Number.NaN,
      ]);
      expect(Array.from(await full([2], -Infinity, { dtype: "f16" }).toFloat32Array())).toEqual([
        -Infinity,
        -Infinity,
      ]);
      // Out of f16 range rounds to infinity, as a cast does.
      expect(Array.from(await full([1], 1e6, { dtype: "f16" }).toFloat32Array())).toEqual([Infinity]);
    }));

  it("rejects bad arguments, naming them", () => {
    expectOpError(() => full([2], 1.5, { dtype: "i32" }), "value", /i32/);
    expectOpError(() => full([2], 2 ** 31, { dtype: "i32" }), "value", /i32/);
    expectOpError(() => full([2], 256, { dtype: "u8" }), "value", /u8/);
    expectOpError(() => full([2], -1, { dtype: "u8" }), "value", /u8/);
    expectOpError(() => full([2], Number.NaN, { dtype: "u8" }), "value", /u8/);
    expectOpError(() => full([2], 1, { dtype: "f64" as DType }), "dtype", /'f64'/);
    expectOpError(() => full([2], 1, { device: "tpu" }), "device", /'tpu'/);
    expectOpError(() => full([2, -1], 1), "shape", /negative/);
    expectOpError(() => full([2.5], 1), "shape", /integer/);
    expectOpError(() => full([1, 1, 1, 1, 1, 1, 1, 1, 1], 1), "shape", /at most 8/);
    expectOpError(() => full([2 ** 40, 2 ** 40], 1), "shape", /too many/);
    expectOpError(() => runOp("fill", [], { shape: [2] }), "value", /required/);
    expectOpError(() => runOp("fill", [], { value: 1 }), "shape", /required/);
    expectOpError(() => runOp("fill", [], { shape: [2], value: 1, dtyp: "f16" }), "dtyp", /not an attribute/);
    expectOpError(() => runOp("fill", [], { shape: [2], value: "1" }), "value", /number/);
  });
});

// ---- randn ----

// rng.h's recipe in JS: Philox4x32-10 then Box-Muller in float64.
function philox(counter: bigint, seed: bigint): number[] {
  const M = 0xffffffffn;
  let c0 = Number(counter & M);
  let c1 = Number((counter >> 32n) & M);
  let c2 = 0;
  let c3 = 0;
  let k0 = Number(seed & M);
  let k1 = Number((seed >> 32n) & M);
  for (let r = 0; r < 10; r++) {
    const p0 = 0xd2511f53n * BigInt(c0);
    const p1 = 0xcd9e8d57n * BigInt(c2);
    const hi0 = Number(p0 >> 32n);
    const lo0 = Number(p0 & M);
    const hi1 = Number(p1 >> 32n);
    const lo1 = Number(p1 & M);
    const n0 = (hi1 ^ c1 ^ k0) >>> 0;
    const n2 = (hi0 ^ c3 ^ k1) >>> 0;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
    k0 = (k0 + 0x9e3779b9) >>> 0;
    k1 = (k1 + 0xbb67ae85) >>> 0;
  }
  return [c0, c1, c2, c3];
}

function gaussianAt(seed: number, e: number): number {
  const [r0, r1] = philox(BigInt(Math.floor(e / 2)), BigInt(seed)) as [number, number];
  const u1 = (r0 + 1) * 2.3283064365386963e-10;
  const u2 = r1 * 2.3283064365386963e-10;
  const radius = Math.sqrt(-2 * Math.log(u1));
  const angle = 6.283185307179586 * u2;
  return Math.fround(e % 2 === 1 ? radius * Math.sin(angle) : radius * Math.cos(angle));
}

describe("randn", () => {
  it("follows rng.h's Philox + Box-Muller stream", () =>
    scope(async () => {
      for (const [seed, offset] of [
        [0, 0],
        [42, 1],
        [2 ** 32 + 5, 77],
        [2 ** 53 - 1, 2 ** 40 + 3],
      ] as const) {
        const got = await randn([77], { seed, offset }).toFloat32Array();
        for (let i = 0; i < 77; i++) {
          const want = gaussianAt(seed, offset + i);
          // JS and libm transcendentals may differ in the last bit of a double: allow one float ulp.
          if (Math.abs((got[i] as number) - want) > Math.abs(want) * 2 ** -23)
            expect.fail(`seed ${seed} element ${offset} + ${i}: got ${got[i]}, expected ${want}`);
        }
      }
    }));

  it("is standard normal over 1e5 samples", () =>
    scope(async () => {
      const n = 100_000;
      const v = await randn([n], { seed: 20240607 }).toFloat32Array();
      let s = 0;
      let s2 = 0;
      let within1 = 0;
      for (const x of v) {
        s += x;
        s2 += x * x;
        if (Math.abs(x) < 1) within1++;
      }
      const mean = s / n;
      const std = Math.sqrt(s2 / n - mean * mean);
      // Standard errors: 1/sqrt(n) = 0.003 for the mean, 1/sqrt(2n) = 0.002 for the std.
      expect(Math.abs(mean)).toBeLessThan(0.015);
      expect(Math.abs(std - 1)).toBeLessThan(0.01);
      expect(Math.abs(within1 / n - 0.6827)).toBeLessThan(0.008);
      expect(v.every(Number.isFinite)).toBe(true);
    }));

  it("is deterministic: same seed, same values; another seed, other values", () =>
    scope(async () => {
      const a = await randn([7, 77], { seed: 1234 }).toFloat32Array();
      const b = await randn([7, 77], { seed: 1234 }).toFloat32Array();
      const c = await randn([7, 77], { seed: 1235 }).toFloat32Array();
      expect(Array.from(a)).toEqual(Array.from(b));
      let same = 0;
      for (let i = 0; i < a.length; i++) if (a[i] === c[i]) same++;
      expect(same).toBe(0);
      // The shape does not matter, only the element count.
      expect(Array.from(await randn([539], { seed: 1234 }).toFloat32Array())).toEqual(Array.from(a));
    }));

  it("continues the stream at offset: randn(n, offset k) is the tail of randn(n + k)", () =>
    scope(async () => {
      const n = 4097;
      const whole = await randn([n + 80], { seed: 99 }).toFloat32Array();
      for (const k of [0, 1, 2, 7, 77, 80]) {
        const tail = await randn([n], { seed: 99, offset: k }).toFloat32Array();
        expect(Array.from(tail)).toEqual(Array.from(whole.subarray(k, k + n)));
      }
    }));

  it("rounds the same f32 stream into bf16 and f16", () =>
    scope(async () => {
      const f = await randn([4097], { seed: 5, offset: 3 }).toFloat32Array();
      const bf = (await randn([4097], { seed: 5, offset: 3, dtype: "bf16" }).toTypedArray()) as Uint16Array;
      const h = (await randn([4097], { seed: 5, offset: 3, dtype: "f16" }).toTypedArray()) as Uint16Array;
      expect(Array.from(bf)).toEqual(Array.from(f, f32ToBf16));
      expect(Array.from(h)).toEqual(Array.from(f, f32ToF16));
    }));

  it("rejects bad arguments, naming them", () => {
    expectOpError(() => runOp("randn", [], { shape: [2] }), "seed", /required/);
    expectOpError(() => randn([2], { seed: -1 }), "seed", /non-negative/);
    expectOpError(() => randn([2], { seed: 1.5 }), "seed", /integer/);
    expectOpError(() => randn([2], { seed: 2 ** 54 }), "seed", /integer/);
    expectOpError(() => randn([2], { seed: 1, offset: -3 }), "offset", /non-negative/);
    expectOpError(() => randn([2], { seed: 1, offset: 0.5 }), "offset", /integer/);
    expectOpError(() => randn([2], { seed: 1, dtype: "i32" }), "dtype", /float/);
    expectOpError(() => randn([-2], { seed: 1 }), "shape", /negative/);
    expectOpError(() => randn([2], { seed: 1, device: "cuda:x" }), "device", /'cuda:x'/);
    expectOpError(() => runOp("randn", [], { shape: [2], seed: 1, mean: 0 }), "mean", /not an attribute/);
  });
});

// ---- upsample_nearest ----

function upsampleRef(v: ArrayLike<number>, shape: readonly number[], scale: readonly number[]): number[] {
  const [b, f, h, w, c] = (shape.length === 5 ? shape : [shape[0], 1, ...shape.slice(1)]) as number[] as [
    number,
    number,
    number,
    number,
    number,
  ];
  const [st, sh, sw] = (scale.length === 3 ? scale : [1, ...scale]) as [number, number, number];
  const out: number[] = [];
  for (let bi = 0; bi < b; bi++)
    for (let fi = 0; fi < f * st; fi++)
      for (let hi = 0; hi < h * sh; hi++)
        for (let wi = 0; wi < w * sw; wi++)
          for (let ci = 0; ci < c; ci++)
            out.push(
              v[
                (((bi * f + Math.floor(fi / st)) * h + Math.floor(hi / sh)) * w + Math.floor(wi / sw)) * c +
                  ci
              ] as number,
            );
  return out;
}

describe("upsampleNearest", () => {
  it("repeats video and image pixels by the scale", () =>
    scope(async () => {
      for (const [shape, scale, outShape] of [
        [
          [2, 3, 5, 7, 13],
          [2, 3, 1],
          [2, 6, 15, 7, 13],
        ],
        [
          [1, 1, 1, 1, 1],
          [3, 2, 2],
          [1, 3, 2, 2, 1],
        ],
        [
          [1, 7, 5, 3],
          [2, 3],
          [1, 14, 15, 3],
        ],
        [
          [2, 7, 7, 77],
          [1, 1],
          [2, 7, 7, 77],
        ],
      ] as const) {
        const v = rng.normals(numel(shape));
        const out = upsampleNearest(Tensor.from(v, shape), scale);
        expect(out.shape).toEqual([...outShape]);
        expectEqualValues(await out.toFloat32Array(), upsampleRef(v, shape, scale));
      }
    }));

  it("takes a number as a spatial scale, and moves bf16/f16 bits exactly on the CPU", () =>
    scope(async () => {
      const v = rng.normals(2 * 3 * 5 * 7 * 3);
      const video = Tensor.from(v, [2, 3, 5, 7, 3]);
      expect(upsampleNearest(video, 2).shape).toEqual([2, 3, 10, 14, 3]);
      expectEqualValues(
        await upsampleNearest(video, 2).toFloat32Array(),
        upsampleRef(v, [2, 3, 5, 7, 3], [1, 2, 2]),
      );
      const image = Tensor.from(v, [6, 5, 7, 3]);
      expect(upsampleNearest(image, 3).shape).toEqual([6, 15, 21, 3]);
      for (const dt of ["bf16", "f16"] as const) {
        const x = cast(image, dt);
        const bitsIn = (await x.toTypedArray()) as Uint16Array;
        const got = (await upsampleNearest(x, [2, 1]).toTypedArray()) as Uint16Array;
        expect(Array.from(got)).toEqual(upsampleRef(bitsIn, [6, 5, 7, 3], [2, 1]));
      }
    }));

  it("rejects bad arguments, naming them", () => {
    const x = () => Tensor.from(rng.normals(2 * 3 * 4 * 5), [2, 3, 4, 5]);
    expectOpError(() => upsampleNearest(Tensor.from(rng.normals(12), [3, 4]), 2), "x", /4 to 5 dims/);
    expectOpError(() => upsampleNearest(x(), [2, 2, 2]), "scale", /\[sh, sw\]/);
    expectOpError(
      () => upsampleNearest(Tensor.from(rng.normals(6), [1, 1, 2, 3, 1]), [2, 2]),
      "scale",
      /\[st, sh, sw\]/,
    );
    expectOpError(() => upsampleNearest(x(), [0, 2]), "scale", /positive/);
    expectOpError(() => upsampleNearest(x(), [1.5, 2]), "scale", /integer/);
    expectOpError(() => upsampleNearest(Tensor.from([1], [1, 1, 1, 1], { dtype: "i32" }), 2), "x", /i32/);
    expectOpError(() => upsampleNearest(x().permuteView([0, 2, 1, 3]), 2), "x", /contiguous/);
    expectOpError(() => runOp("upsample_nearest", [["x", x()]]), "scale", /required/);
  });
});

// ---- embedding ----

describe("embedding", () => {
  it("gathers table rows, with NaN rows for ids outside the vocabulary", () =>
    scope(async () => {
      const vocab = 77;
      const dim = 13;
      const table = rng.normals(vocab * dim);
      const ids = rng.ints(7 * 11, -3, vocab + 3);
      ids[0] = 0;
      ids[1] = vocab - 1;
      ids[2] = vocab;
      ids[3] = -1;
      ids[4] = 2147483647;
      const out = embedding(Tensor.from(ids, [7, 11], { dtype: "i32" }), Tensor.from(table, [vocab, dim]));
      expect(out.shape).toEqual([7, 11, dim]);
      const ref: number[] = [];
      for (const id of ids)
        for (let j = 0; j < dim; j++)
          ref.push(id >= 0 && id < vocab ? (table[id * dim + j] as number) : Number.NaN);
      expectEqualValues(await out.toFloat32Array(), ref);
    }));

  it("serves bf16/f16 tables bit-exactly and a scalar id", () =>
    scope(async () => {
      const table = Tensor.from(rng.normals(7 * 5), [7, 5]);
      for (const dt of ["bf16", "f16"] as const) {
        const tb = cast(table, dt);
        const tv = (await tb.toTypedArray()) as Uint16Array;
        const got = (await embedding(
          Tensor.from([6, 2, 6], [3], { dtype: "i32" }),
          tb,
        ).toTypedArray()) as Uint16Array;
        expect(Array.from(got)).toEqual([
          ...tv.subarray(30, 35),
          ...tv.subarray(10, 15),
          ...tv.subarray(30, 35),
        ]);
        expect(embedding(Tensor.from([3], [], { dtype: "i32" }), tb).shape).toEqual([5]);
      }
      const large = await embedding(
        Tensor.from(rng.ints(4097, 0, 7), [4097], { dtype: "i32" }),
        table,
      ).toFloat32Array();
      expect(large.every(Number.isFinite)).toBe(true);
    }));

  it("rejects bad arguments, naming them", () => {
    const table = () => Tensor.from(rng.normals(12), [4, 3]);
    const ids = () => Tensor.from([0, 1], [2], { dtype: "i32" });
    expectOpError(() => embedding(Tensor.from([0, 1], [2]), table()), "ids", /i32/);
    expectOpError(() => embedding(ids(), Tensor.from(rng.normals(12), [12])), "table", /2 dims/);
    expectOpError(() => embedding(ids(), Tensor.from([1, 2], [1, 2], { dtype: "i32" })), "table", /i32/);
    expectOpError(() => embedding(ids(), table().permuteView([1, 0])), "table", /contiguous/);
    expectOpError(
      () => embedding(Tensor.from([0, 1, 2, 3], [2, 2], { dtype: "i32" }).permuteView([1, 0]), table()),
      "ids",
      /contiguous/,
    );
    expectOpError(() => runOp("embedding", [["ids", ids()]]), "table", /required/);
  });
});

// ---- timestep_embedding ----

function timestepRef(
  t: ArrayLike<number>,
  dim: number,
  maxPeriod = 10000,
  shift = 0,
  cosFirst = true,
): number[] {
  const half = dim / 2;
  const out: number[] = [];
  for (const x of Array.from(t)) {
    const args = Array.from(
      { length: half },
      (_, j) => x * Math.exp((-Math.log(maxPeriod) * j) / (half - shift)),
    );
    const cos = args.map(Math.cos);
    const sin = args.map(Math.sin);
    out.push(...(cosFirst ? [...cos, ...sin] : [...sin, ...cos]));
  }
  return out;
}

describe("timestepEmbedding", () => {
  it("matches float64 sinusoids for timesteps up to 1000", () =>
    scope(async () => {
      for (const [n, dim, opts] of [
        [77, 256, {}],
        [1, 2, {}],
        [7, 6, { cosFirst: false, freqShift: 1, maxPeriod: 100 }],
        [13, 34, { freqShift: 0.5 }],
      ] as const) {
        const tv = Float32Array.from({ length: n }, () => rng.uniform() * 1000);
        const out = timestepEmbedding(Tensor.from(tv, [n]), dim, opts);
        expect(out.shape).toEqual([n, dim]);
        const got = await out.toFloat32Array();
        const o = opts as { maxPeriod?: number; freqShift?: number; cosFirst?: boolean };
        const ref = timestepRef(tv, dim, o.maxPeriod, o.freqShift, o.cosFirst);
        // fp32 frequencies times t ~ 1000 put ~1e-4 of phase error in the last place.
        for (let i = 0; i < ref.length; i++)
          if (!(Math.abs((got[i] as number) - (ref[i] as number)) < 2e-4))
            expect.fail(`element ${i}: got ${got[i]}, expected ${ref[i]}`);
      }
    }));

  it("rounds the f32 result into bf16 and f16 outputs", () =>
    scope(async () => {
      const t = Tensor.from([0, 1, 250.5, 999], [4]);
      const f = await timestepEmbedding(t, 64).toFloat32Array();
      expect(f[0]).toBe(1); // cos(0) first
      expect(f[32]).toBe(0); // sin(0)
      for (const [dtype, round] of [
        ["bf16", f32ToBf16],
        ["f16", f32ToF16],
      ] as const) {
        const got = (await timestepEmbedding(t, 64, { dtype }).toTypedArray()) as Uint16Array;
        expect(Array.from(got)).toEqual(Array.from(f, round));
      }
    }));

  it("rejects bad arguments, naming them", () => {
    const t = () => Tensor.from([1, 2, 3], [3]);
    expectOpError(() => timestepEmbedding(t(), 7), "dim", /even/);
    expectOpError(() => timestepEmbedding(t(), 0), "dim", /positive/);
    expectOpError(() => timestepEmbedding(t(), 2.5), "dim", /integer/);
    expectOpError(() => timestepEmbedding(Tensor.from([1, 2], [2, 1]), 4), "t", /1 dims/);
    expectOpError(() => timestepEmbedding(Tensor.from([1, 2], [2], { dtype: "bf16" }), 4), "t", /bf16/);
    expectOpError(() => timestepEmbedding(t(), 4, { maxPeriod: 0 }), "maxPeriod", /positive/);
    expectOpError(() => timestepEmbedding(t(), 4, { freqShift: 2 }), "freqShift", /below dim \/ 2/);
    expectOpError(() => timestepEmbedding(t(), 4, { dtype: "u8" }), "dtype", /float/);
    expectOpError(
      () => runOp("timestep_embedding", [["t", t()]], { dim: 4, flip: true }),
      "flip",
      /not an attribute/,
    );
    expectOpError(() => runOp("timestep_embedding", [["t", t()]]), "dim", /required/);
  });
});

describe("lifetime", () => {
  it("leaves no tensors alive after a scope", async () => {
    const before = liveTensorCount();
    await scope(async () => {
      await upsampleNearest(full([1, 2, 2, 3], 1), 2).toFloat32Array();
      await randn([5], { seed: 1 }).toFloat32Array();
      expect(() => randn([5], { seed: -1 })).toThrow(OpError);
    });
    expect(liveTensorCount()).toBe(before);
  });
});

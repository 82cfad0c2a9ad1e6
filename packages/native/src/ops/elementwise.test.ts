import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { native } from "../binding.js";
import { bf16ToF32, type DType, f16ToF32, f32ToBf16, f32ToF16 } from "../dtype.js";
import { OpError } from "../errors.js";
import { liveTensorCount, scope } from "../scope.js";
import { numel, Tensor } from "../tensor.js";
import { expectOpError } from "../testing/expect-op-error.js";
import { HostRng } from "../testing/random.js";
import {
  add,
  affine,
  axpby,
  cast,
  concat,
  div,
  exp,
  gelu,
  geluTanh,
  maximum,
  minimum,
  mul,
  permute,
  rsqrt,
  sigmoid,
  silu,
  slice,
  softmax,
  sqrt,
  square,
  sub,
  type UnaryFn,
  unary,
} from "./elementwise.js";
import { runOp } from "./run.js";

const rng = new HostRng(20240607);

// Fresh outputs are NaN-filled, so an element a kernel forgets to write fails the comparison.
beforeAll(() => native.setPoison(true));
afterAll(() => native.setPoison(false));

/** A tensor of random normals (never all-zero) with its values. */
function rand(shape: readonly number[], scale = 1): { t: Tensor; v: Float32Array } {
  const v = rng.normals(numel(shape), scale);
  return { t: Tensor.from(v, shape), v };
}

function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i] as number;
  }
  return s;
}

/** Reads a strided view of flat `v` in row-major order (the reference for every layout op). */
function gather(
  v: ArrayLike<number>,
  shape: readonly number[],
  strides: readonly number[],
  offset: number,
): number[] {
  const out: number[] = [];
  const n = numel(shape);
  for (let i = 0; i < n; i++) {
    let r = i;
    let at = offset;
    for (let d = shape.length - 1; d >= 0; d--) {
      const size = shape[d] as number;
      at += (r % size) * (strides[d] as number);
      r = Math.floor(r / size);
    }
    out.push(v[at] as number);
  }
  return out;
}

/** Elementwise |got - ref| <= atol + rtol·|ref|, NaN only where ref is NaN. */
function expectClose(got: ArrayLike<number>, ref: ArrayLike<number>, rtol = 1e-5, atol = 1e-6): void {
  expect(got.length).toBe(ref.length);
  for (let i = 0; i < ref.length; i++) {
    const g = got[i] as number;
    const r = ref[i] as number;
    if (Number.isNaN(r)) {
      if (!Number.isNaN(g)) expect.fail(`element ${i}: got ${g}, expected NaN`);
      continue;
    }
    if (!(Math.abs(g - r) <= atol + rtol * Math.abs(r))) expect.fail(`element ${i}: got ${g}, expected ${r}`);
  }
}

/** Same values, NaN matching NaN, -0 matching 0 only where exact bits are not asked for. */
function expectEqualValues(got: ArrayLike<number>, ref: ArrayLike<number>): void {
  expect(got.length).toBe(ref.length);
  for (let i = 0; i < ref.length; i++) {
    const g = got[i] as number;
    const r = ref[i] as number;
    if (g !== r && !(Number.isNaN(g) && Number.isNaN(r)))
      expect.fail(`element ${i}: got ${g}, expected ${r}`);
  }
}

const sizes = [[1], [7], [77, 13], [3, 4097]] as const;

// erf in float64: its Maclaurin series near 0, the continued fraction of erfc beyond.
function erf(x: number): number {
  const a = Math.abs(x);
  if (a < 2.5) {
    let term = x;
    let sum = x;
    for (let n = 1; n < 80; n++) {
      term *= (-x * x) / n;
      sum += term / (2 * n + 1);
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  let f = a;
  for (let k = 60; k >= 1; k--) f = a + k / 2 / f;
  const erfc = Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

const unaryRef: Record<UnaryFn, (x: number) => number> = {
  identity: (x) => x,
  silu: (x) => x / (1 + Math.exp(-x)),
  gelu_tanh: (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))),
  gelu: (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
  exp: (x) => Math.exp(x),
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  square: (x) => x * x,
  sqrt: (x) => Math.sqrt(x),
  rsqrt: (x) => 1 / Math.sqrt(x),
};

describe("unary", () => {
  for (const fn of Object.keys(unaryRef) as UnaryFn[]) {
    it(`${fn}(alpha·x + beta) matches float64`, () =>
      scope(async () => {
        for (const shape of sizes) {
          const positive = fn === "sqrt" || fn === "rsqrt";
          const { t, v } = rand(shape, 2);
          const x = positive
            ? Tensor.from(
                v.map((a) => Math.abs(a) + 0.05),
                shape,
              )
            : t;
          const xs = await x.toFloat32Array();
          const alpha = positive ? 1.25 : -0.75;
          const beta = positive ? 0.125 : 0.3;
          const got = await unary(x, fn, alpha, beta).toFloat32Array();
          // alpha·x + beta may be fused (one rounding) or not: allow an ulp of it.
          const ref = Array.from(xs, (a) => unaryRef[fn](alpha * a + beta));
          expectClose(got, ref, 2e-6, 1e-6);
          expect(unary(x, fn).shape).toEqual([...shape]);
        }
      }));
  }

  it("named wrappers apply their function with alpha 1, beta 0", () =>
    scope(async () => {
      const { t, v } = rand([77]);
      const pos = Tensor.from(
        v.map((a) => Math.abs(a) + 0.1),
        [77],
      );
      const pv = await pos.toFloat32Array();
      const pairs: [Tensor, Float32Array, UnaryFn][] = [
        [silu(t), v, "silu"],
        [geluTanh(t), v, "gelu_tanh"],
        [gelu(t), v, "gelu"],
        [exp(t), v, "exp"],
        [sigmoid(t), v, "sigmoid"],
        [square(t), v, "square"],
        [sqrt(pos), pv, "sqrt"],
        [rsqrt(pos), pv, "rsqrt"],
      ];
      for (const [out, xs, fn] of pairs)
        expectClose(await out.toFloat32Array(), Array.from(xs, unaryRef[fn]), 2e-6, 1e-7);
      expectClose(
        await affine(t, 3, -1).toFloat32Array(),
        Array.from(v, (a) => 3 * a - 1),
        1e-6,
        1e-7,
      );
    }));

  it("handles extremes: sigmoid/silu saturate without NaN, sqrt of a negative is NaN", () =>
    scope(async () => {
      const x = Tensor.from([-200, -20, 20, 200], [4]);
      expectClose(await sigmoid(x).toFloat32Array(), [0, 1 / (1 + Math.exp(20)), 1, 1], 1e-6, 1e-30);
      const s = await silu(x).toFloat32Array();
      expect(s[0]).toBeCloseTo(0, 30);
      expect(s[3]).toBe(200);
      const r = await sqrt(Tensor.from([-1, 4], [2])).toFloat32Array();
      expect(Number.isNaN(r[0])).toBe(true);
      expect(r[1]).toBe(2);
    }));

  it("accepts a scalar and an empty tensor", () =>
    scope(async () => {
      expectClose(await exp(Tensor.from([0.5], [])).toFloat32Array(), [Math.exp(0.5)]);
      const e = exp(Tensor.from([], [3, 0]));
      expect(e.shape).toEqual([3, 0]);
      expect((await e.toFloat32Array()).length).toBe(0);
    }));
});

// ---- binary ----

function broadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const nd = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < nd; i++) {
    const da = a[i - (nd - a.length)] ?? 1;
    const db = b[i - (nd - b.length)] ?? 1;
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** The float64 reference of a broadcast binary op. */
function binaryRef(
  av: ArrayLike<number>,
  as: readonly number[],
  bv: ArrayLike<number>,
  bs: readonly number[],
  f: (a: number, b: number) => number,
): number[] {
  const out = broadcastShape(as, bs);
  const view = (s: readonly number[]) => {
    const cs = contiguousStrides(s);
    const lead = out.length - s.length;
    return out.map((_, i) => (i < lead || s[i - lead] === 1 ? 0 : (cs[i - lead] as number)));
  };
  const a = gather(av, out, view(as), 0);
  const b = gather(bv, out, view(bs), 0);
  return a.map((x, i) => f(x, b[i] as number));
}

const binaryFns: [string, (a: Tensor, b: Tensor) => Tensor, (a: number, b: number) => number][] = [
  ["add", add, (a, b) => a + b],
  ["sub", sub, (a, b) => a - b],
  ["mul", mul, (a, b) => a * b],
  ["div", div, (a, b) => a / b],
  ["axpby", (a, b) => axpby(a, b, 0.75, -1.5), (a, b) => 0.75 * a - 1.5 * b],
  ["maximum", maximum, Math.max],
  ["minimum", minimum, Math.min],
];

const broadcastPairs: [number[], number[]][] = [
  [[4097], [4097]],
  [[7, 77], [77]],
  [[77], [7, 77]],
  [
    [7, 1],
    [1, 77],
  ],
  [
    [2, 1, 7, 13],
    [5, 1, 13],
  ],
  [[4097], [1]],
  [[], [3, 13]],
  [[1], []],
  [
    [3, 1, 1, 1, 1, 1, 1, 5],
    [1, 2, 1, 1, 1, 1, 3, 1],
  ],
];

describe("binary", () => {
  for (const [name, op, f] of binaryFns) {
    it(`${name} broadcasts like numpy and matches float64`, () =>
      scope(async () => {
        for (const [as, bs] of broadcastPairs) {
          const a = rand(as);
          // Keep divisors away from zero so that float32 rounding of the quotient stays small.
          const b = name === "div" ? rand(bs).v.map((x) => (x < 0 ? x - 0.5 : x + 0.5)) : rand(bs).v;
          const out = op(a.t, Tensor.from(b, bs));
          expect(out.shape).toEqual(broadcastShape(as, bs));
          expectClose(await out.toFloat32Array(), binaryRef(a.v, as, b, bs, f), 1e-6, 1e-7);
        }
      }));
  }

  it("reads strided operands and aliasing inputs", () =>
    scope(async () => {
      const a = rand([13, 77]);
      const b = rand([77, 13]);
      const bt = b.t.permuteView([1, 0]);
      expect(bt.isContiguous).toBe(false);
      const ref = binaryRef(a.v, [13, 77], gather(b.v, [13, 77], [1, 13], 0), [13, 77], (x, y) => x * y);
      expectClose(await mul(a.t, bt).toFloat32Array(), ref, 1e-6, 1e-7);
      expectClose(
        await add(a.t, a.t).toFloat32Array(),
        Array.from(a.v, (x) => 2 * x),
        0,
        0,
      );
      // A column view [13, 1] of a strided tensor broadcast against [13, 77].
      const col = b.t.permuteView([1, 0]).narrow(1, 5, 1);
      const colRef = gather(b.v, [13, 1], [1, 13], 5 * 13);
      expectClose(
        await sub(a.t, col).toFloat32Array(),
        binaryRef(a.v, [13, 77], colRef, [13, 1], (x, y) => x - y),
        1e-6,
        1e-7,
      );
    }));

  it("gives an empty result for a zero-size broadcast dim", () =>
    scope(async () => {
      const out = add(Tensor.from([], [3, 0, 4]), rand([4]).t);
      expect(out.shape).toEqual([3, 0, 4]);
      expect((await out.toFloat32Array()).length).toBe(0);
    }));

  it("propagates NaN through maximum and minimum from either side", () =>
    scope(async () => {
      const a = Tensor.from([Number.NaN, 1, 2, -3], [4]);
      const b = Tensor.from([1, Number.NaN, -2, 3], [4]);
      expectEqualValues(await maximum(a, b).toFloat32Array(), [Number.NaN, Number.NaN, 2, 3]);
      expectEqualValues(await minimum(a, b).toFloat32Array(), [Number.NaN, Number.NaN, -2, -3]);
    }));
});

// ---- softmax ----

describe("softmax", () => {
  it("matches float64 over the last dim, also for large logits", () =>
    scope(async () => {
      for (const [shape, scale] of [
        [[1, 1], 1],
        [[7, 77], 1],
        [[3, 4097], 30],
        [[2, 3, 13], 100],
      ] as const) {
        const { t, v } = rand(shape, scale);
        const cols = shape[shape.length - 1] as number;
        const ref: number[] = [];
        for (let r = 0; r < v.length / cols; r++) {
          const row = Array.from(v.subarray(r * cols, (r + 1) * cols));
          const m = Math.max(...row);
          const e = row.map((x) => Math.exp(x - m));
          const s = e.reduce((p, q) => p + q, 0);
          ref.push(...e.map((x) => x / s));
        }
        const got = await softmax(t).toFloat32Array();
        expectClose(got, ref, 2e-5, 1e-12);
        for (let r = 0; r < v.length / cols; r++) {
          let s = 0;
          for (let j = 0; j < cols; j++) s += got[r * cols + j] as number;
          expect(s).toBeCloseTo(1, 5);
        }
      }
    }));
});

// ---- copy / cast ----

function bits(values: ArrayLike<number>): Uint16Array {
  return Uint16Array.from(values as ArrayLike<number>);
}

async function castBits(
  src: ArrayBufferView,
  shape: number[],
  from: DType,
  to: DType,
): Promise<ArrayLike<number>> {
  return cast(Tensor.fromBytes(src, shape, { dtype: from }), to).toTypedArray();
}

describe("cast", () => {
  const all16 = Uint16Array.from({ length: 65536 }, (_, i) => i);

  it("widens every bf16 and f16 bit pattern exactly and narrows it back to the same bits", () =>
    scope(async () => {
      for (const [dt, toF32] of [
        ["bf16", bf16ToF32],
        ["f16", f16ToF32],
      ] as const) {
        const wide = (await castBits(all16, [65536], dt, "f32")) as Float32Array;
        expectEqualValues(wide, Array.from(all16, toF32));
        const back = (await cast(Tensor.from(wide, [65536]), dt).toTypedArray()) as Uint16Array;
        for (let i = 0; i < 65536; i++) {
          if (Number.isNaN(toF32(i))) expect(Number.isNaN(toF32(back[i] as number))).toBe(true);
          else if (back[i] !== i) expect.fail(`${dt} pattern ${i} came back as ${back[i]}`);
        }
      }
    }));

  it("rounds f32 to bf16/f16 to nearest even, with overflow, subnormals and specials", () =>
    scope(async () => {
      const v = Float32Array.from([
        ...rng.normals(4097, 1),
        ...rng.normals(77, 1e5),
        ...rng.normals(77, 1e-6),
        ...rng.normals(77, 1e-40),
        65504,
        65519,
        65520,
        -1e6,
        2 ** -24,
        2 ** -25,
        3 * 2 ** -26,
        1 + 2 ** -8,
        1 + 3 * 2 ** -8,
        -0,
        Number.POSITIVE_INFINITY,
        Number.NEGATIVE_INFINITY,
        Number.NaN,
        3.4e38,
      ]);
      const x = Tensor.from(v, [v.length]);
      const bf = (await cast(x, "bf16").toTypedArray()) as Uint16Array;
      expect(Array.from(bf)).toEqual(Array.from(v, f32ToBf16));
      const h = (await cast(x, "f16").toTypedArray()) as Uint16Array;
      expect(Array.from(h)).toEqual(Array.from(v, f32ToF16));
    }));

  it("converts between bf16 and f16 through f32", () =>
    scope(async () => {
      // JS decodes every NaN to one NaN, so NaN inputs are only checked to stay NaN.
      const check = (
        got: Uint16Array,
        from: (h: number) => number,
        to: (x: number) => number,
        back: (h: number) => number,
      ) => {
        for (let i = 0; i < 65536; i++) {
          const x = from(i);
          if (Number.isNaN(x)) expect(Number.isNaN(back(got[i] as number))).toBe(true);
          else if (got[i] !== to(x)) expect.fail(`pattern ${i}: got ${got[i]}, expected ${to(x)}`);
        }
      };
      check((await castBits(all16, [256, 256], "bf16", "f16")) as Uint16Array, bf16ToF32, f32ToF16, f16ToF32);
      check((await castBits(all16, [65536], "f16", "bf16")) as Uint16Array, f16ToF32, f32ToBf16, bf16ToF32);
    }));

  it("truncates floats toward zero into i32, saturating, NaN -> 0", () =>
    scope(async () => {
      const v = [
        1.9,
        -1.9,
        0.5,
        -0.5,
        123456.7,
        2147483648,
        -2147483904,
        1e10,
        -1e10,
        Number.NaN,
        Infinity,
        -Infinity,
      ];
      const want = [
        1, -1, 0, 0, 123456, 2147483647, -2147483648, 2147483647, -2147483648, 0, 2147483647, -2147483648,
      ];
      expect(Array.from((await cast(Tensor.from(v, [12]), "i32").toTypedArray()) as Int32Array)).toEqual(
        want,
      );
      // From bf16 and f16 sources too.
      const small = [2.5, -7.75, 100, -0.25];
      for (const dt of ["bf16", "f16"] as const)
        expect(
          Array.from(
            (await cast(Tensor.from(small, [4], { dtype: dt }), "i32").toTypedArray()) as Int32Array,
          ),
        ).toEqual([2, -7, 100, 0]);
    }));

  it("clamps floats into u8", () =>
    scope(async () => {
      const v = [-1, 0.9, 17.2, 254.9, 255.5, 300, Number.NaN, Infinity, -Infinity];
      expect(Array.from((await cast(Tensor.from(v, [9]), "u8").toTypedArray()) as Uint8Array)).toEqual([
        0, 0, 17, 254, 255, 255, 0, 255, 0,
      ]);
    }));

  it("copies i32 and u8 exactly and converts between them and floats", () =>
    scope(async () => {
      const ints = Int32Array.from([-2147483648, 2147483647, -1, 0, 16777217, 77, 255, 256]);
      const ti = Tensor.from(ints, [8], { dtype: "i32" });
      expect(Array.from((await cast(ti, "i32").toTypedArray()) as Int32Array)).toEqual(Array.from(ints));
      expect(Array.from((await cast(ti, "u8").toTypedArray()) as Uint8Array)).toEqual([
        0, 255, 0, 0, 255, 77, 255, 255,
      ]);
      expect(Array.from(await cast(ti, "f32").toFloat32Array())).toEqual(Array.from(ints, Math.fround));
      expect(Array.from((await cast(ti, "bf16").toTypedArray()) as Uint16Array)).toEqual(
        Array.from(ints, f32ToBf16),
      );
      const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
      const tu = Tensor.from(bytes, [16, 16], { dtype: "u8" });
      expect(Array.from((await cast(tu, "u8").toTypedArray()) as Uint8Array)).toEqual(Array.from(bytes));
      expect(Array.from((await cast(tu, "i32").toTypedArray()) as Int32Array)).toEqual(Array.from(bytes));
      expect(Array.from((await cast(tu, "f16").toTypedArray()) as Uint16Array)).toEqual(
        Array.from(bytes, f32ToF16),
      );
    }));

  it("keeps NaN payload bits when the dtype does not change", () =>
    scope(async () => {
      const raw = bits([0x7fc1, 0xffff, 0x7f81, 0x0001]);
      expect(Array.from((await castBits(raw, [4], "bf16", "bf16")) as Uint16Array)).toEqual(Array.from(raw));
      expect(Array.from((await castBits(raw, [4], "f16", "f16")) as Uint16Array)).toEqual(Array.from(raw));
    }));

  it("makes strided tensors contiguous (Tensor.contiguous) in every dtype", () =>
    scope(async () => {
      const { t, v } = rand([7, 77, 13]);
      const p = t.permuteView([2, 0, 1]);
      const c = p.contiguous();
      expect(c.isContiguous).toBe(true);
      expect(c.shape).toEqual([13, 7, 77]);
      const ref = gather(v, [13, 7, 77], [1, 77 * 13, 13], 0);
      expectEqualValues(await c.toFloat32Array(), ref);
      expectEqualValues(await cast(p, "f32").toFloat32Array(), ref);
      for (const dt of ["bf16", "f16", "i32", "u8"] as const) {
        const base = cast(t, dt);
        const want = gather(await base.toFloat32Array(), [13, 7, 77], [1, 77 * 13, 13], 0);
        expectEqualValues(await base.permuteView([2, 0, 1]).contiguous().toFloat32Array(), want);
      }
    }));
});

// ---- permute / slice / concat ----

describe("permute", () => {
  it("reorders dims like a strided gather, for every dtype", () =>
    scope(async () => {
      const shape = [2, 7, 13, 5];
      const { t, v } = rand(shape);
      const cs = contiguousStrides(shape);
      for (const dims of [
        [0, 1, 2, 3],
        [3, 2, 1, 0],
        [0, 3, 1, 2],
        [-1, 0, -2, 1],
      ]) {
        const nd = dims.map((d) => (d < 0 ? d + 4 : d));
        const ps = nd.map((d) => shape[d] as number);
        const ref = gather(
          v,
          ps,
          nd.map((d) => cs[d] as number),
          0,
        );
        const out = permute(t, dims);
        expect(out.shape).toEqual(ps);
        expectEqualValues(await out.toFloat32Array(), ref);
        for (const dt of ["bf16", "i32", "u8"] as const) {
          const x = cast(t, dt);
          const xv = await x.toFloat32Array();
          expectEqualValues(
            await permute(x, dims).toFloat32Array(),
            gather(
              xv,
              ps,
              nd.map((d) => cs[d] as number),
              0,
            ),
          );
        }
      }
    }));

  it("accepts a strided input and a 1-D or scalar tensor", () =>
    scope(async () => {
      const { t, v } = rand([77, 13]);
      const out = permute(t.permuteView([1, 0]), [1, 0]);
      expectEqualValues(await out.toFloat32Array(), v);
      expectEqualValues(await permute(Tensor.from([4], []), []).toFloat32Array(), [4]);
    }));
});

describe("slice", () => {
  it("takes start:end:step along a dim, with negative indices counted from the end", () =>
    scope(async () => {
      const shape = [7, 4097];
      const { t, v } = rand(shape);
      const cs = contiguousStrides(shape);
      for (const [dim, start, end, step] of [
        [1, 0, 4097, 1],
        [1, 5, 77, 1],
        [1, -4000, 4097, 3],
        [-1, 1, -1, 4096],
        [0, 6, 7, 1],
        [0, -7, -2, 2],
        [0, 3, 3, 1],
        [1, 4097, 4097, 5],
      ] as const) {
        const d = dim < 0 ? dim + 2 : dim;
        const size = shape[d] as number;
        const s0 = start < 0 ? start + size : start;
        const e0 = end < 0 ? end + size : end;
        const len = Math.ceil((e0 - s0) / step);
        const os = [...shape];
        os[d] = len;
        const st = [...cs];
        st[d] = (cs[d] as number) * step;
        const out = slice(t, dim, start, end, step);
        expect(out.shape).toEqual(os);
        expectEqualValues(await out.toFloat32Array(), gather(v, os, st, s0 * (cs[d] as number)));
      }
    }));

  it("defaults step to 1 and slices strided and integer tensors", () =>
    scope(async () => {
      const { t, v } = rand([77, 13]);
      const out = slice(t.permuteView([1, 0]), 0, 2, 9);
      expectEqualValues(await out.toFloat32Array(), gather(v, [7, 77], [1, 13], 2));
      const ints = Tensor.from(
        Int32Array.from({ length: 77 }, (_, i) => i * 1000003),
        [77],
        { dtype: "i32" },
      );
      expect(Array.from((await slice(ints, 0, 70, 77, 2).toTypedArray()) as Int32Array)).toEqual([
        70000210, 72000216, 74000222, 76000228,
      ]);
    }));
});

describe("concat", () => {
  it("joins along any dim, including strided and empty pieces", () =>
    scope(async () => {
      const a = rand([3, 1, 5]);
      const b = rand([3, 7, 5]);
      const c = rand([3, 77, 5]);
      const out = concat([a.t, b.t, Tensor.from([], [3, 0, 5]), c.t], 1);
      expect(out.shape).toEqual([3, 85, 5]);
      const ref: number[] = [];
      for (let i = 0; i < 3; i++)
        for (const [x, n] of [
          [a.v, 1],
          [b.v, 7],
          [c.v, 77],
        ] as const)
          ref.push(...x.subarray(i * n * 5, (i + 1) * n * 5));
      expectEqualValues(await out.toFloat32Array(), ref);

      const p = rand([13, 7]);
      const q = rand([7, 13]);
      const joined = concat([q.t, p.t.permuteView([1, 0])], -1);
      expect(joined.shape).toEqual([7, 26]);
      const pt = gather(p.v, [7, 13], [1, 7], 0);
      const ref2: number[] = [];
      for (let i = 0; i < 7; i++)
        ref2.push(...q.v.subarray(i * 13, i * 13 + 13), ...pt.slice(i * 13, i * 13 + 13));
      expectEqualValues(await joined.toFloat32Array(), ref2);

      const first = concat([b.t, b.t], 0);
      expectEqualValues(await first.toFloat32Array(), [...b.v, ...b.v]);
      expectEqualValues(await concat([c.t], 2).toFloat32Array(), c.v);
    }));

  it("joins i32 and bf16 tensors exactly", () =>
    scope(async () => {
      const x = Tensor.from([1, -2, 2147483647], [3], { dtype: "i32" });
      const y = Tensor.from([-2147483648], [1], { dtype: "i32" });
      expect(Array.from((await concat([x, y], 0).toTypedArray()) as Int32Array)).toEqual([
        1, -2, 2147483647, -2147483648,
      ]);
      const raw = bits([0x3f80, 0x7fc1, 0xff80]);
      const h = Tensor.fromBytes(raw, [3], { dtype: "bf16" });
      expect(Array.from((await concat([h, h], 0).toTypedArray()) as Uint16Array)).toEqual([...raw, ...raw]);
    }));
});

// ---- argument checks ----

describe("bad arguments are OpErrors naming the argument", () => {
  const x = () => Tensor.from(rng.normals(12), [3, 4]);

  it("unary", () => {
    expectOpError(() => silu(Tensor.from([1, 2], [2], { dtype: "bf16" })), "x", /computes in f32.*cast/);
    expectOpError(() => silu(Tensor.from([1, 2], [2], { dtype: "i32" })), "x", /i32/);
    expectOpError(() => silu(x().permuteView([1, 0])), "x", /contiguous/);
    expectOpError(() => unary(x(), "tanh" as UnaryFn), "fn", /'tanh'/);
    expectOpError(() => runOp("unary", [["x", x()]]), "fn", /required/);
    expectOpError(() => unary(x(), "exp", Number.NaN), "alpha", /finite/);
    expectOpError(() => unary(x(), "exp", 1, Number.POSITIVE_INFINITY), "beta", /finite/);
    expectOpError(() => runOp("unary", [["x", x()]], { fn: "exp", alpah: 2 }), "alpah", /not an attribute/);
    expectOpError(() => runOp("unary", [["x", x()]], { fn: 3 }), "fn", /string/);
    expectOpError(() => runOp("unary", []), "x", /required/);
    expectOpError(
      () => {
        const t = x();
        t.dispose();
        return silu(t);
      },
      "x",
      /disposed/,
    );
  });

  it("binary", () => {
    expectOpError(() => add(x(), Tensor.from(rng.normals(5), [5])), "b", /\[5\].*\[3, 4\]/);
    expectOpError(
      () => mul(Tensor.from(rng.normals(6), [2, 3]), Tensor.from(rng.normals(6), [3, 2])),
      "b",
      /broadcast/,
    );
    expectOpError(() => add(x(), Tensor.from(rng.normals(4), [4], { dtype: "f16" })), "b", /dtype f16/);
    expectOpError(
      () => add(Tensor.from([1], [1], { dtype: "bf16" }), Tensor.from([1], [1], { dtype: "bf16" })),
      "a",
      /f32/,
    );
    expectOpError(
      () => add(Tensor.from([1], [1], { dtype: "u8" }), Tensor.from([1], [1], { dtype: "u8" })),
      "a",
      /u8/,
    );
    expectOpError(
      () =>
        runOp(
          "binary",
          [
            ["a", x()],
            ["b", x()],
          ],
          { fn: "pow" },
        ),
      "fn",
      /'pow'/,
    );
    expectOpError(
      () =>
        runOp(
          "binary",
          [
            ["a", x()],
            ["b", x()],
          ],
          { fn: "add", alpha: 2 },
        ),
      "alpha",
      /axpby/,
    );
    expectOpError(() => axpby(x(), x(), 1, Number.NaN), "beta", /finite/);
    expectOpError(() => runOp("binary", [["a", x()]], { fn: "add" }), "b", /required/);
  });

  it("softmax", () => {
    expectOpError(() => softmax(Tensor.from([1], [])), "x", /scalar/);
    expectOpError(() => softmax(x().permuteView([1, 0])), "x", /contiguous/);
    expectOpError(() => softmax(Tensor.from([1, 2], [2], { dtype: "f16" })), "x", /f32/);
    expectOpError(() => runOp("softmax", [["x", x()]], { dim: 0 }), "dim", /takes none/);
  });

  it("copy / cast", () => {
    expectOpError(() => cast(x(), "f64" as DType), "dtype", /'f64'/);
    expectOpError(() => runOp("copy", [["x", x()]], { dtype: 1 }), "dtype", /string/);
    expectOpError(() => runOp("copy", []), "x", /required/);
  });

  it("permute", () => {
    expectOpError(() => permute(x(), [0]), "dims", /1 entries.*2 dims/);
    expectOpError(() => permute(x(), [1, 1]), "dims", /twice/);
    expectOpError(() => permute(x(), [0, 2]), "dims", /out of range/);
    expectOpError(() => permute(x(), [0, -3]), "dims", /out of range/);
    expectOpError(() => permute(x(), [0, 0.5]), "dims", /integers/);
    expectOpError(() => runOp("permute", [["x", x()]]), "dims", /required/);
  });

  it("slice", () => {
    expectOpError(() => slice(x(), 2, 0, 1), "dim", /out of range/);
    expectOpError(() => slice(x(), -3, 0, 1), "dim", /out of range/);
    expectOpError(() => slice(x(), 1, 5, 5), "start", /out of range.*size 4/);
    expectOpError(() => slice(x(), 1, -5, 2), "start", /out of range/);
    expectOpError(() => slice(x(), 1, 0, 5), "end", /out of range/);
    expectOpError(() => slice(x(), 1, 3, 1), "end", /before start/);
    expectOpError(() => slice(x(), 1, 0, 4, 0), "step", /positive/);
    expectOpError(() => slice(x(), 1, 0, 4, -1), "step", /positive/);
    expectOpError(() => slice(x(), 1, 1.5, 4), "start", /integer/);
    expectOpError(() => slice(Tensor.from([1], []), 0, 0, 1), "x", /scalar/);
    expectOpError(() => runOp("slice", [["x", x()]], { start: 0 }), "dim", /required/);
  });

  it("concat", () => {
    expectOpError(() => concat([], 0), "tensors", /at least one/);
    expectOpError(
      () => concat([x(), Tensor.from(rng.normals(6), [2, 3])], 0),
      "x1",
      /\[2, 3\].*except dim 0/,
    );
    expectOpError(() => concat([x(), Tensor.from(rng.normals(4), [4])], 0), "x1", /shape/);
    expectOpError(
      () => concat([x(), x(), Tensor.from(rng.normals(12), [3, 4], { dtype: "bf16" })], 1),
      "x2",
      /dtype bf16/,
    );
    expectOpError(() => concat([x()], 2), "dim", /out of range/);
    expectOpError(() => concat([Tensor.from([1], [])], 0), "x0", /scalar/);
    expectOpError(() => runOp("concat", [["x0", x()]]), "dim", /required/);
  });
});

describe("lifetime", () => {
  it("leaves no tensors alive after a scope of ops, including failed ones", async () => {
    const before = liveTensorCount();
    await scope(async () => {
      const { t } = rand([7, 77]);
      await concat(
        [slice(permute(t, [1, 0]), 0, 1, 5), cast(cast(t, "bf16"), "f32").reshape([77, 7])],
        0,
      ).toFloat32Array();
      expect(() => add(t, Tensor.from([1, 2], [2]))).toThrow(OpError);
    });
    expect(liveTensorCount()).toBe(before);
  });
});

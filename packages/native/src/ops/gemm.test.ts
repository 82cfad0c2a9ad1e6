// CPU matmul/linear against a float64 reference written here, across the GEMM
// engine's blocking edges (micro-tile, KC and NC boundaries, threading), plus
// every argument error.
import { afterEach, describe, expect, it } from "vitest";
import { liveTensorCount } from "../scope.js";
import { Tensor } from "../tensor.js";
import { relError } from "../testing/compare.js";
import { expectOpError } from "../testing/expect-op-error.js";
import { HostRng } from "../testing/random.js";
import { linear, type MatmulOptions, matmul } from "./gemm.js";

const made: Tensor[] = [];
const rng = new HostRng(1234);
afterEach(() => {
  for (const t of made.splice(0)) t.dispose();
});

function keep(t: Tensor): Tensor {
  made.push(t);
  return t;
}
function randn(shape: number[], scale = 1): { t: Tensor; v: Float32Array } {
  const v = rng.normals(
    shape.reduce((a, b) => a * b, 1),
    scale,
  );
  return { t: keep(Tensor.from(v, shape)), v };
}

function gelu(x: number): number {
  return 0.5 * x * (1 + Math.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}
function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

// C[b] = act(alpha · op(A[b]) op(B[b]) + bias) in float64.
function refMatmul(
  a: Float32Array,
  b: Float32Array,
  batch: number,
  m: number,
  n: number,
  k: number,
  o: {
    transA?: boolean;
    transB?: boolean;
    bBatched?: boolean;
    bias?: Float32Array;
    alpha?: number;
    epi?: string;
  },
): Float64Array {
  const out = new Float64Array(batch * m * n);
  for (let q = 0; q < batch; q++) {
    const ao = q * m * k;
    const bo = o.bBatched ? q * k * n : 0;
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) {
          const av = a[ao + (o.transA ? p * m + i : i * k + p)] as number;
          const bv = b[bo + (o.transB ? j * k + p : p * n + j)] as number;
          s += av * bv;
        }
        let v = (o.alpha ?? 1) * s + (o.bias ? (o.bias[j] as number) : 0);
        if (o.epi === "gelu_tanh") v = gelu(v);
        else if (o.epi === "silu") v = silu(v);
        out[q * m * n + i * n + j] = v;
      }
  }
  return out;
}

async function values(t: Tensor): Promise<Float32Array> {
  keep(t);
  return t.toFloat32Array();
}

describe("matmul on cpu (f32) vs float64 reference", () => {
  const shapes: [number, number, number][] = [
    [1, 1, 1],
    [1, 33, 1],
    [5, 1, 9],
    [12, 32, 256], // exactly one micro-tile, one K block
    [13, 33, 257], // one past every edge
    [7, 77, 33],
    [129, 67, 255],
    [100, 70, 600], // several K blocks accumulate
    [40, 1100, 20], // N crosses the 1024-column block
    [300, 40, 64], // tall: split over rows between threads
    [256, 256, 256],
  ];
  for (const [m, n, k] of shapes) {
    for (const [transA, transB] of [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ] as const) {
      it(`${m}x${n}x${k} transA=${transA} transB=${transB}`, async () => {
        const a = randn(transA ? [k, m] : [m, k]);
        const b = randn(transB ? [n, k] : [k, n]);
        const got = await values(matmul(a.t, b.t, { transA, transB }));
        const want = refMatmul(a.v, b.v, 1, m, n, k, { transA, transB });
        expect(relError(got, want)).toBeLessThan(1e-5);
      });
    }
  }

  it("bias, alpha and each epilogue across K blocks", async () => {
    for (const epilogue of ["none", "gelu_tanh", "silu"] as const) {
      const m = 45;
      const n = 70;
      const k = 300;
      const a = randn([m, k], 0.2);
      const b = randn([k, n], 0.2);
      const bias = randn([n]);
      const got = await values(matmul(a.t, b.t, { bias: bias.t, alpha: 0.75, epilogue }));
      const want = refMatmul(a.v, b.v, 1, m, n, k, { bias: bias.v, alpha: 0.75, epi: epilogue });
      expect(relError(got, want), epilogue).toBeLessThan(1e-5);
    }
  });

  it("epilogues far into their tails (|x| up to ~100)", async () => {
    const vals = Float32Array.from({ length: 64 }, (_, i) => (i - 32) * 3.1);
    const a = keep(Tensor.from(vals, [64, 1]));
    const b = keep(Tensor.from([1], [1, 1]));
    for (const epilogue of ["gelu_tanh", "silu"] as const) {
      const got = await values(matmul(a, b, { epilogue }));
      const want = Array.from(vals, (x) => (epilogue === "silu" ? silu(x) : gelu(x)));
      for (let i = 0; i < 64; i++) expect(got[i]).toBeCloseTo(want[i] as number, 4);
    }
  });

  it("batched a and b, with transposes", async () => {
    const [batch, m, n, k] = [3, 40, 23, 17];
    const a = randn([batch, k, m]);
    const b = randn([batch, n, k]);
    const got = await values(matmul(a.t, b.t, { transA: true, transB: true }));
    expect(
      relError(got, refMatmul(a.v, b.v, batch, m, n, k, { transA: true, transB: true, bBatched: true })),
    ).toBeLessThan(1e-5);
  });

  it("b broadcast over a's batch dims (folded into one tall GEMM), with and without transA", async () => {
    for (const transA of [false, true]) {
      const [m, n, k] = [19, 9, 24];
      const a = randn(transA ? [2, 5, k, m] : [2, 5, m, k]);
      const b = randn([k, n]);
      const out = matmul(a.t, b.t, { transA, epilogue: "gelu_tanh" });
      expect(out.shape).toEqual([2, 5, m, n]);
      const got = await values(out);
      expect(relError(got, refMatmul(a.v, b.v, 10, m, n, k, { transA, epi: "gelu_tanh" }))).toBeLessThan(
        1e-5,
      );
    }
  });

  it("many small batched products (threaded over the batch)", async () => {
    const [batch, m, n, k] = [16, 33, 31, 20];
    const a = randn([batch, m, k]);
    const b = randn([batch, k, n]);
    const got = await values(matmul(a.t, b.t));
    expect(relError(got, refMatmul(a.v, b.v, batch, m, n, k, { bBatched: true }))).toBeLessThan(1e-5);
  });

  it("k = 0 gives act(bias)", async () => {
    const a = keep(Tensor.from([], [3, 0]));
    const b = keep(Tensor.from([], [0, 4]));
    const bias = keep(Tensor.from([1, -2, 0.5, 3], [4]));
    const got = await values(matmul(a, b, { bias }));
    expect(Array.from(got)).toEqual([1, -2, 0.5, 3, 1, -2, 0.5, 3, 1, -2, 0.5, 3]);
    const none = await values(matmul(a, b));
    expect(Array.from(none)).toEqual(new Array(12).fill(0));
  });

  it("linear folds leading dims and matches x @ W^T + b", async () => {
    const x = randn([2, 37, 36]);
    const w = randn([20, 36], 0.2);
    const bias = randn([20]);
    const out = linear(x.t, w.t, bias.t, { epilogue: "silu" });
    expect(out.shape).toEqual([2, 37, 20]);
    const got = await values(out);
    expect(
      relError(got, refMatmul(x.v, w.v, 1, 74, 20, 36, { transB: true, bias: bias.v, epi: "silu" })),
    ).toBeLessThan(1e-5);
  });

  it("a large product (1024^3) stays accurate", async () => {
    const n = 1024;
    const a = randn([n, n]);
    const b = randn([n, n]);
    const got = await values(matmul(a.t, b.t));
    // Spot-check rows against the float64 sum.
    for (const i of [0, 511, 1023]) {
      const row = new Float64Array(n);
      for (let p = 0; p < n; p++) {
        const av = a.v[i * n + p] as number;
        for (let j = 0; j < n; j++) row[j] = (row[j] as number) + av * (b.v[p * n + j] as number);
      }
      expect(relError(got.subarray(i * n, (i + 1) * n), row)).toBeLessThan(1e-5);
    }
  });
});

describe("matmul argument errors", () => {
  const opts = (o: MatmulOptions) => o;
  it("names the bad argument", () => {
    const a = randn([4, 5]).t;
    const b = randn([5, 3]).t;
    expectOpError(() => matmul(randn([4, 6]).t, b), "b", "matmul");
    expectOpError(() => matmul(randn([5]).t, b), "a");
    expectOpError(() => matmul(a, randn([5]).t), "b");
    expectOpError(() => matmul(randn([2, 4, 5]).t, randn([3, 5, 3]).t), "b");
    expectOpError(() => matmul(a, b, opts({ bias: randn([4]).t })), "bias");
    expectOpError(() => matmul(a, b, opts({ bias: randn([1, 3]).t })), "bias");
    expectOpError(() => matmul(a, b, { epilogue: "relu" as "none" }), "epilogue");
    expectOpError(() => matmul(a, keep(Tensor.from(new Array(15).fill(0), [5, 3], { dtype: "f16" }))), "b");
    expectOpError(() => matmul(keep(Tensor.from(new Array(20).fill(0), [4, 5], { dtype: "i32" })), b), "a");
    expectOpError(
      () => matmul(a, b, opts({ bias: keep(Tensor.from([0, 0, 0], [3], { dtype: "bf16" })) })),
      "bias",
    );
    expectOpError(() => matmul(keep(randn([5, 4]).t.permuteView([1, 0])), b), "a");
    expectOpError(() => matmul(a, b, { alpha: "x" as unknown as number }), "alpha");
    expectOpError(() => matmul(a, b, { transA: 1 as unknown as boolean }), "transA");
    const gone = Tensor.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15], [5, 3]);
    gone.dispose();
    expectOpError(() => matmul(a, gone), "b");
  });

  it("linear names the bad argument", () => {
    const x = randn([3, 8]).t;
    expectOpError(() => linear(x, randn([4, 7]).t), "weight", "linear");
    expectOpError(() => linear(x, randn([4, 8, 1]).t), "weight");
    expectOpError(() => linear(x, randn([4, 8]).t, randn([5]).t), "bias");
  });

  it("bf16/f16 inputs on the CPU are an OpError naming 'a'", () => {
    for (const dtype of ["bf16", "f16"] as const) {
      const a16 = Tensor.from([1, 2, 3, 4], [2, 2], { dtype });
      const b16 = Tensor.from([1, 0, 0, 1], [2, 2], { dtype });
      expectOpError(() => matmul(a16, b16), "a");
      expect(() => matmul(a16, b16)).toThrow(/computes in f32/);
      a16.dispose();
      b16.dispose();
    }
  });

  it("leaks no tensors", () => {
    for (const t of made.splice(0)) t.dispose();
    expect(liveTensorCount()).toBe(0);
  });
});

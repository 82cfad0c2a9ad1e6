import { describe, expect, it } from "vitest";
import { liveTensorCount, scope } from "../scope.js";
import { Tensor } from "../tensor.js";
import { relError } from "../testing/compare.js";
import { expectOpError as expectOpErrorNaming } from "../testing/expect-op-error.js";
import { HostRng } from "../testing/random.js";
import { gatedResidual, groupNorm, layerNorm, rmsNorm } from "./norm.js";
import { runOp } from "./run.js";

const rng = new HostRng(777);
const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

// ---- float64 references, straight from the definitions ----

interface RefNorm {
  kind: "layer" | "rms";
  weight?: Float32Array;
  bias?: Float32Array;
  eps?: number;
  scale?: Float32Array;
  shift?: Float32Array;
  /** scale/shift are x's shape rather than [B, C]. */
  perToken?: boolean;
}

function refNorm(x: Float32Array, shape: readonly number[], o: RefNorm): Float64Array {
  const C = shape[shape.length - 1] as number;
  const B = shape[0] as number;
  const L = x.length / (B * C);
  const eps = o.eps ?? 1e-6;
  const y = new Float64Array(x.length);
  for (let row = 0; row < B * L; row++) {
    const xs = Array.from(x.subarray(row * C, (row + 1) * C));
    const mean = o.kind === "layer" ? xs.reduce((a, b) => a + b, 0) / C : 0;
    const ms = xs.reduce((a, b) => a + (b - mean) * (b - mean), 0) / C;
    const rstd = 1 / Math.sqrt(ms + eps);
    const m = (o.perToken ? row : Math.floor(row / L)) * C;
    for (let c = 0; c < C; c++) {
      let v = ((xs[c] as number) - mean) * rstd;
      if (o.weight) v *= o.weight[c] as number;
      if (o.bias) v += o.bias[c] as number;
      if (o.scale) v *= 1 + (o.scale[m + c] as number);
      if (o.shift) v += o.shift[m + c] as number;
      y[row * C + c] = v;
    }
  }
  return y;
}

function refGroupNorm(
  x: Float32Array,
  shape: readonly number[],
  groups: number,
  o: { weight?: Float32Array; bias?: Float32Array; eps?: number; silu?: boolean },
): Float64Array {
  const C = shape[shape.length - 1] as number;
  const B = shape[0] as number;
  const S = x.length / (B * C);
  const cg = C / groups;
  const eps = o.eps ?? 1e-6;
  const y = new Float64Array(x.length);
  for (let b = 0; b < B; b++)
    for (let g = 0; g < groups; g++) {
      const idx: number[] = [];
      for (let s = 0; s < S; s++) for (let c = g * cg; c < (g + 1) * cg; c++) idx.push((b * S + s) * C + c);
      const mean = idx.reduce((a, i) => a + (x[i] as number), 0) / idx.length;
      const variance = idx.reduce((a, i) => a + ((x[i] as number) - mean) ** 2, 0) / idx.length;
      const rstd = 1 / Math.sqrt(variance + eps);
      for (const i of idx) {
        const c = i % C;
        let v =
          ((x[i] as number) - mean) * rstd * (o.weight ? (o.weight[c] as number) : 1) +
          (o.bias ? (o.bias[c] as number) : 0);
        if (o.silu) v = v / (1 + Math.exp(-v));
        y[i] = v;
      }
    }
  return y;
}

function refGated(
  x: Float32Array,
  y: Float32Array,
  gate: Float32Array,
  shape: readonly number[],
  perToken: boolean,
) {
  const C = shape[shape.length - 1] as number;
  const L = x.length / ((shape[0] as number) * C);
  return Float64Array.from(x, (xv, i) => {
    const row = Math.floor(i / C);
    const g = gate[(perToken ? row : Math.floor(row / L)) * C + (i % C)] as number;
    return xv + g * (y[i] as number);
  });
}

const f = (v: Float32Array | undefined, shape: readonly number[]) => (v ? Tensor.from(v, shape) : undefined);

async function checkNorm(shape: number[], o: RefNorm & { offset?: number }, tol = 2e-6): Promise<void> {
  const C = shape[shape.length - 1] as number;
  const B = shape[0] as number;
  const x = rng.normals(numel(shape), 2).map((v) => v + (o.offset ?? 0));
  const ref = refNorm(x, shape, o);
  const modShape = o.perToken ? shape : [B, C];
  const got = await scope(async () => {
    const xt = Tensor.from(x, shape);
    const common = {
      weight: f(o.weight, [C]),
      eps: o.eps,
      scale: f(o.scale, modShape),
      shift: f(o.shift, modShape),
    };
    const out = o.kind === "layer" ? layerNorm(xt, { ...common, bias: f(o.bias, [C]) }) : rmsNorm(xt, common);
    expect(out.shape).toEqual(shape);
    return out.toFloat32Array();
  });
  expect(relError(got, ref)).toBeLessThan(tol);
}

describe("layer_norm / rms_norm (CPU) against a float64 reference", () => {
  const shapes = [
    [1, 1, 1],
    [2, 7, 7],
    [2, 77, 36],
    [1, 3, 4, 5, 13],
    [3, 300],
    [1, 50, 1537],
  ];

  it("plain, with weight and bias, channels not a multiple of 8", async () => {
    const before = liveTensorCount();
    for (const kind of ["layer", "rms"] as const)
      for (const shape of shapes) {
        const C = shape[shape.length - 1] as number;
        await checkNorm(shape, { kind });
        await checkNorm(shape, {
          kind,
          weight: rng.normals(C),
          bias: kind === "layer" ? rng.normals(C) : undefined,
        });
      }
    expect(liveTensorCount()).toBe(before);
  });

  it("adaLN modulation per sample [B, C] and per token (x's shape)", async () => {
    for (const kind of ["layer", "rms"] as const)
      for (const shape of [
        [2, 7, 7],
        [2, 5, 3, 77],
        [1, 40, 36],
      ]) {
        const C = shape[shape.length - 1] as number;
        const B = shape[0] as number;
        await checkNorm(shape, { kind, scale: rng.normals(B * C, 0.5), shift: rng.normals(B * C) });
        await checkNorm(shape, { kind, scale: rng.normals(B * C, 0.5) });
        await checkNorm(shape, { kind, shift: rng.normals(B * C) });
        await checkNorm(shape, {
          kind,
          weight: rng.normals(C),
          scale: rng.normals(numel(shape), 0.5),
          shift: rng.normals(numel(shape)),
          perToken: true,
        });
        await checkNorm(shape, { kind, shift: rng.normals(numel(shape)), perToken: true });
      }
  });

  it("eps matters for small inputs", async () => {
    await checkNorm([2, 3, 16], { kind: "layer", eps: 0.5 });
    await checkNorm([2, 3, 16], { kind: "rms", eps: 0.25 });
    await checkNorm([2, 3, 16], { kind: "layer", eps: 0 });
  });

  it("statistics stay accurate under a large common offset", async () => {
    // E[x^2] - E[x]^2 in fp32 would lose every digit here.
    await checkNorm([2, 9, 77], { kind: "layer", offset: 1000 }, 5e-6);
    await checkNorm([1, 4, 3000], { kind: "layer", offset: 3000 }, 5e-6);
  });
});

describe("group_norm (CPU) against a float64 reference", () => {
  const run = async (
    shape: number[],
    groups: number,
    o: { weight?: boolean; bias?: boolean; eps?: number; silu?: boolean; offset?: number } = {},
    tol = 2e-6,
  ) => {
    const C = shape[shape.length - 1] as number;
    const x = rng.normals(numel(shape), 1.5).map((v) => v + (o.offset ?? 0));
    const w = o.weight ? rng.normals(C) : undefined;
    const b = o.bias ? rng.normals(C) : undefined;
    const ref = refGroupNorm(x, shape, groups, { weight: w, bias: b, eps: o.eps, silu: o.silu });
    const got = await scope(async () =>
      groupNorm(Tensor.from(x, shape), groups, {
        weight: f(w, [C]),
        bias: f(b, [C]),
        eps: o.eps,
        silu: o.silu,
      }).toFloat32Array(),
    );
    expect(relError(got, ref)).toBeLessThan(tol);
  };

  it("images and videos, channels-last, with and without affine and SiLU", async () => {
    const before = liveTensorCount();
    await run([2, 9, 12], 3);
    await run([2, 9, 12], 12, { weight: true, bias: true });
    await run([1, 5, 7, 12], 1, { weight: true, silu: true });
    await run([2, 3, 5, 7, 12], 4, { weight: true, bias: true, silu: true });
    await run([1, 1, 1], 1, { eps: 0.1 });
    await run([1, 7, 1, 3, 21], 7, { bias: true, eps: 1e-3 });
    expect(liveTensorCount()).toBe(before);
  });

  it("many positions (several chunks of the statistics sweep) and a large offset", async () => {
    await run([2, 3000, 6], 2, { weight: true, bias: true });
    await run([1, 2, 60, 40, 96], 32, { silu: true });
    await run([1, 1500, 8], 4, { offset: 500 }, 3e-5);
  });
});

describe("gated_residual (CPU)", () => {
  it("per-sample and per-token gates", async () => {
    const before = liveTensorCount();
    for (const shape of [
      [1, 1, 1],
      [2, 7, 13],
      [2, 3, 5, 77],
      [3, 36],
    ]) {
      const C = shape[shape.length - 1] as number;
      const B = shape[0] as number;
      for (const perToken of [false, true]) {
        const x = rng.normals(numel(shape));
        const y = rng.normals(numel(shape));
        const g = rng.normals(perToken ? numel(shape) : B * C);
        const ref = refGated(x, y, g, shape, perToken);
        const got = await scope(async () =>
          gatedResidual(
            Tensor.from(x, shape),
            Tensor.from(y, shape),
            Tensor.from(g, perToken ? shape : [B, C]),
          ).toFloat32Array(),
        );
        expect(relError(got, ref)).toBeLessThan(1e-7);
      }
    }
    expect(liveTensorCount()).toBe(before);
  });
});

// ---- errors ----

function expectOpError(fn: () => unknown, op: string, arg: string, pattern?: RegExp): void {
  expectOpErrorNaming(fn, arg, { op, ...(pattern ? { message: pattern } : {}) });
}

describe("norm argument errors", () => {
  const t = (shape: number[], dtype: "f32" | "bf16" | "f16" | "i32" = "f32") =>
    Tensor.from(new Float32Array(numel(shape)), shape, { dtype });
  const x = () => t([2, 3, 8]);

  it("layer_norm / rms_norm", () => {
    const before = liveTensorCount();
    for (const [op, fn] of [
      ["layer_norm", layerNorm],
      ["rms_norm", rmsNorm],
    ] as const) {
      expectOpError(() => fn(t([2, 3, 8], "bf16")), op, "x", /CPU backend computes in f32/);
      expectOpError(() => fn(t([2, 3, 8], "f16")), op, "x", /cast/);
      expectOpError(() => fn(t([2, 3, 8], "i32")), op, "x");
      expectOpError(() => fn(t([8])), op, "x", /at least 2 dims/);
      expectOpError(() => fn(t([2, 8, 3]).permuteView([0, 2, 1])), op, "x", /contiguous/);
      expectOpError(() => fn(x(), { weight: t([7]) }), op, "weight", /\[8\]/);
      expectOpError(() => fn(x(), { weight: t([8], "bf16") }), op, "weight");
      expectOpError(() => fn(x(), { eps: -1 }), op, "eps");
      expectOpError(() => fn(x(), { eps: Number.NaN }), op, "eps");
      expectOpError(() => fn(x(), { scale: t([2, 3]) }), op, "scale", /\[B, C\]/);
      expectOpError(() => fn(x(), { scale: t([1, 8]) }), op, "scale");
      expectOpError(() => fn(x(), { shift: t([2, 3, 7]) }), op, "shift");
      expectOpError(() => fn(x(), { shift: t([2, 8], "f16") }), op, "shift");
      expectOpError(() => fn(x(), { scale: t([2, 8]), shift: t([2, 3, 8]) }), op, "shift", /both/);
      expectOpError(() => fn(x(), { weight: [1, 2] as never }), op, "weight", /tensor/);
      expectOpError(() => runOp(op, [["x", x()]], { epsilon: 1e-5 }), op, "epsilon", /not an attribute/);
    }
    expectOpError(() => layerNorm(x(), { bias: t([9]) }), "layer_norm", "bias");
    // RMSNorm has no bias: passing one is a mistake, not something to ignore.
    expectOpError(
      () => runOp("rms_norm", [["x", x()]], { bias: t([8]) }),
      "rms_norm",
      "bias",
      /not an attribute/,
    );
    expect(liveTensorCount()).toBe(before);
  });

  it("group_norm", () => {
    expectOpError(() => groupNorm(t([2, 3, 8], "bf16"), 2), "group_norm", "x", /f32/);
    expectOpError(() => groupNorm(t([8]), 2), "group_norm", "x");
    expectOpError(() => groupNorm(x(), 3), "group_norm", "groups", /divide/);
    expectOpError(() => groupNorm(x(), 0), "group_norm", "groups", /positive/);
    expectOpError(() => groupNorm(x(), 1.5), "group_norm", "groups", /integer/);
    expectOpError(() => runOp("group_norm", [["x", x()]], {}), "group_norm", "groups", /required/);
    expectOpError(() => groupNorm(x(), 2, { weight: t([4]) }), "group_norm", "weight");
    expectOpError(() => groupNorm(x(), 2, { bias: t([8], "f16") }), "group_norm", "bias");
    expectOpError(() => groupNorm(x(), 2, { eps: Number.POSITIVE_INFINITY }), "group_norm", "eps");
    expectOpError(() => groupNorm(x(), 2, { silu: 1 as never }), "group_norm", "silu", /boolean/);
    expectOpError(
      () => runOp("group_norm", [["x", x()]], { groups: 2, scale: t([2, 8]) }),
      "group_norm",
      "scale",
    );
  });

  it("gated_residual", () => {
    expectOpError(() => gatedResidual(t([2, 3, 8], "bf16"), x(), t([2, 8])), "gated_residual", "x", /f32/);
    expectOpError(() => gatedResidual(x(), t([2, 3, 7]), t([2, 8])), "gated_residual", "y");
    expectOpError(() => gatedResidual(x(), t([2, 3, 8], "f16"), t([2, 8])), "gated_residual", "y");
    expectOpError(() => gatedResidual(x(), x(), t([2, 1, 8])), "gated_residual", "gate", /\[B, C\]/);
    expectOpError(() => gatedResidual(x(), x(), t([8])), "gated_residual", "gate");
    expectOpError(() => gatedResidual(x(), x(), null as never), "gated_residual", "gate", /required/);
    expectOpError(
      () =>
        runOp(
          "gated_residual",
          [
            ["x", x()],
            ["y", x()],
            ["gate", t([2, 8])],
          ],
          { alpha: 2 },
        ),
      "gated_residual",
      "alpha",
    );
  });
});

import { scope } from "../scope.js";
import type { ConformanceCase } from "../testing/conformance.js";
import {
  add,
  affine,
  assign,
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
  unary,
} from "./elementwise.js";

const floats = ["f32", "bf16", "f16"] as const;

// The harness disposes a case's inputs and output; cases with intermediates
// (including strided views) run inside scope() so those are disposed too.

export const cases: ConformanceCase[] = [
  // ---- unary ----
  ...(
    [
      ["silu", silu],
      ["gelu_tanh", geluTanh],
      ["gelu", gelu],
      ["exp", exp],
      ["sigmoid", sigmoid],
      ["square", square],
    ] as const
  ).map(
    ([name, fn]): ConformanceCase => ({
      name: `unary/${name}/3x4097`,
      dtypes: floats,
      run: (t) => fn(t.randn([3, 4097])),
    }),
  ),
  {
    name: "unary/sqrt-rsqrt/77x13",
    dtypes: floats,
    run: (t) => scope(() => mul(sqrt(t.uniform([77, 13], 0.1, 9)), rsqrt(t.uniform([77, 13], 0.1, 9)))),
  },
  {
    name: "unary/affine/1",
    dtypes: floats,
    run: (t) => affine(t.randn([1]), -1.5, 0.25),
  },
  {
    name: "unary/silu-alpha-beta/7x77",
    dtypes: floats,
    run: (t) => unary(t.randn([7, 77]), "silu", 0.5, 0.125),
  },
  // ---- binary ----
  {
    name: "binary/add-same-shape/4097",
    dtypes: floats,
    run: (t) => add(t.randn([4097]), t.randn([4097])),
  },
  {
    name: "binary/sub-bias-broadcast/77x13",
    dtypes: floats,
    run: (t) => sub(t.randn([77, 13]), t.randn([13])),
  },
  {
    name: "binary/mul-outer-broadcast/7x1-1x77",
    dtypes: floats,
    run: (t) => mul(t.randn([7, 1]), t.randn([1, 77])),
  },
  {
    name: "binary/div-4d-broadcast/2x1x7x13-5x1x13",
    dtypes: floats,
    run: (t) => div(t.randn([2, 1, 7, 13]), t.uniform([5, 1, 13], 0.5, 2)),
  },
  {
    name: "binary/axpby-scalar-b/3x77",
    dtypes: floats,
    run: (t) => axpby(t.randn([3, 77]), t.randn([1]), 0.75, -2),
  },
  {
    name: "binary/max-min/7x77",
    dtypes: floats,
    run: (t) =>
      scope(() => {
        const a = t.randn([7, 77]);
        const b = t.randn([7, 77]);
        return sub(maximum(a, b), minimum(a, t.randn([77])));
      }),
  },
  {
    name: "binary/add-strided-operand/13x77",
    dtypes: floats,
    run: (t) => scope(() => add(t.randn([77, 13]).permuteView([1, 0]), t.randn([13, 77]))),
  },
  // ---- softmax ----
  ...[
    [1, 1],
    [7, 77],
    [3, 4097],
  ].map(
    ([r, c]): ConformanceCase => ({
      name: `softmax/${r}x${c}`,
      dtypes: floats,
      run: (t) => softmax(t.randn([r as number, c as number], 3)),
    }),
  ),
  // ---- layout ops: exact, they only move (and round) values ----
  {
    name: "copy/contiguous-of-permuted/13x7x77",
    dtypes: floats,
    exact: true,
    run: (t) => scope(() => t.randn([7, 77, 13]).permuteView([2, 0, 1]).contiguous()),
  },
  {
    // In place: the output is dst itself, refilled from a strided source.
    name: "assign/permuted-into-contiguous/13x7x77",
    dtypes: floats,
    exact: true,
    run: (t) =>
      scope((keep) => {
        const dst = keep(t.randn([13, 7, 77]));
        assign(dst, t.randn([7, 77, 13]).permuteView([2, 0, 1]));
        return dst;
      }),
  },
  ...(["f32", "bf16", "f16"] as const).map(
    (to): ConformanceCase => ({
      name: `cast/to-${to}/4097`,
      dtypes: floats,
      exact: true,
      run: (t) => cast(t.randn([4097], 10), to),
    }),
  ),
  {
    name: "cast/to-i32-truncated/7x77",
    dtypes: floats,
    exact: true,
    run: (t) => cast(t.randn([7, 77], 1000), "i32"),
  },
  {
    name: "cast/to-u8-clamped/77x13",
    dtypes: floats,
    exact: true,
    run: (t) => cast(t.uniform([77, 13], -20, 300), "u8"),
  },
  {
    name: "permute/2x7x13x5-to-0312",
    dtypes: floats,
    exact: true,
    run: (t) => permute(t.randn([2, 7, 13, 5]), [0, 3, 1, 2]),
  },
  {
    name: "permute/negative-dims/77x3x1",
    dtypes: floats,
    exact: true,
    run: (t) => permute(t.randn([77, 3, 1]), [-1, -2, 0]),
  },
  {
    name: "slice/step3-negative-start/7x4097",
    dtypes: floats,
    exact: true,
    run: (t) => slice(t.randn([7, 4097]), 1, -4000, 4097, 3),
  },
  {
    name: "slice/of-strided/13x77-rows",
    dtypes: floats,
    exact: true,
    run: (t) => scope(() => slice(t.randn([77, 13]).permuteView([1, 0]), 0, 1, 12, 2)),
  },
  {
    name: "concat/dim1/1+7+77",
    dtypes: floats,
    exact: true,
    run: (t) => concat([t.randn([3, 1, 5]), t.randn([3, 7, 5]), t.randn([3, 77, 5])], 1),
  },
  {
    name: "concat/last-dim-with-strided-input/7x(13+13)",
    dtypes: floats,
    exact: true,
    run: (t) => scope(() => concat([t.randn([7, 13]), t.randn([13, 7]).permuteView([1, 0])], -1)),
  },
];

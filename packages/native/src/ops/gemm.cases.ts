import type { ConformanceCase } from "../testing/conformance.js";
import { linear, matmul } from "./gemm.js";

const floats = ["f32", "bf16", "f16"] as const;

export const cases: ConformanceCase[] = [
  ...[
    [1, 1, 1],
    [7, 77, 33],
    [64, 64, 64],
    [129, 67, 255],
  ].map(
    ([m, n, k]): ConformanceCase => ({
      name: `matmul/${m}x${n}x${k}`,
      dtypes: floats,
      run: (t) => matmul(t.randn([m as number, k as number]), t.randn([k as number, n as number])),
    }),
  ),
  {
    name: "matmul/batched-transA-transB-bias-alpha",
    dtypes: floats,
    run: (t) =>
      matmul(t.randn([3, 40, 17]), t.randn([3, 23, 40]), {
        transA: true,
        transB: true,
        bias: t.randn([23]),
        alpha: 0.5,
      }),
  },
  {
    name: "matmul/broadcast-b-gelu",
    dtypes: floats,
    run: (t) => matmul(t.randn([2, 5, 19, 24]), t.randn([24, 9]), { epilogue: "gelu_tanh" }),
  },
  {
    name: "linear/4097-tokens-silu",
    dtypes: floats,
    run: (t) => linear(t.randn([1, 4097, 36]), t.randn([20, 36], 0.2), t.randn([20]), { epilogue: "silu" }),
  },
];

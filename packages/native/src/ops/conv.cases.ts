import type { ConformanceCase } from "../testing/conformance.js";
import { type Conv2dOptions, type Conv3dOptions, conv2d, conv3d } from "./conv.js";

const floats = ["f32", "bf16", "f16"] as const;

interface Conv3dCase {
  name: string;
  x: [number, number, number, number, number];
  /** [Cout, kt, kh, kw] (Cin comes from x). */
  w: [number, number, number, number];
  opts?: Omit<Conv3dOptions, "bias" | "prev">;
  bias?: boolean;
  /** Frames of the previous-chunk cache. */
  prev?: number;
}

const conv3dCases: Conv3dCase[] = [
  { name: "3x3x3-pad1-c5-to-7", x: [2, 5, 9, 7, 5], w: [7, 3, 3, 3], opts: { padding: 1 }, bias: true },
  { name: "3x3x3-stride2-pad1-c3", x: [1, 7, 11, 9, 3], w: [6, 3, 3, 3], opts: { stride: 2, padding: 1 } },
  {
    name: "3x3x3-stride-1x2x2",
    x: [1, 4, 10, 12, 12],
    w: [20, 3, 3, 3],
    opts: { stride: [1, 2, 2], padding: [1, 1, 1] },
  },
  { name: "1x1x1-c13-to-11", x: [2, 3, 5, 6, 13], w: [11, 1, 1, 1], bias: true },
  { name: "1x1x1-stride2", x: [1, 3, 5, 6, 8], w: [5, 1, 1, 1], opts: { stride: 2 } },
  { name: "pad-2x1x0x2-kernel-3x2x3", x: [1, 3, 4, 5, 3], w: [4, 3, 2, 3], opts: { padding: [2, 1, 0, 2] } },
  {
    name: "causal-3x3x3",
    x: [1, 5, 6, 7, 12],
    w: [20, 3, 3, 3],
    opts: { causal: true, padding: 1 },
    bias: true,
  },
  {
    name: "causal-3x3x3-prev1",
    x: [2, 3, 5, 6, 7],
    w: [9, 3, 3, 3],
    opts: { causal: true, padding: 1 },
    prev: 1,
  },
  {
    name: "causal-3x3x3-prev2",
    x: [1, 4, 6, 5, 10],
    w: [6, 3, 3, 3],
    opts: { causal: true, padding: 1 },
    bias: true,
    prev: 2,
  },
  // Wan's VAE time downsampling: kernel (3, 1, 1), stride (2, 1, 1), causal.
  {
    name: "causal-3x1x1-time-stride2-prev2",
    x: [1, 4, 6, 6, 24],
    w: [24, 3, 1, 1],
    opts: { causal: true, stride: [2, 1, 1] },
    prev: 2,
  },
  {
    name: "causal-vae-c96",
    x: [1, 2, 16, 16, 96],
    w: [96, 3, 3, 3],
    opts: { causal: true, padding: 1 },
    bias: true,
    prev: 2,
  },
  // Cin % 8 == 0: the shapes the CUDA implicit-GEMM kernel (native/cuda/conv/conv3d_igemm.cu) takes,
  // with odd spatial sizes, stride 2, cached frames, K tails and Cout not a multiple of 8
  // (native/cuda/conv/igemm_host_check.cpp replays the same list).
  {
    name: "igemm-3x3x3-pad1-c16-to-36-odd",
    x: [2, 3, 7, 9, 16],
    w: [36, 3, 3, 3],
    opts: { padding: 1 },
    bias: true,
  },
  {
    name: "igemm-3x3x3-stride2-c32-odd",
    x: [1, 5, 13, 11, 32],
    w: [24, 3, 3, 3],
    opts: { stride: 2, padding: 1 },
  },
  {
    name: "igemm-causal-stride-1x2x2-c24-to-19-prev2",
    x: [1, 3, 9, 13, 24],
    w: [19, 3, 3, 3],
    opts: { causal: true, stride: [1, 2, 2], padding: 1 },
    bias: true,
    prev: 2,
  },
  {
    name: "igemm-causal-c64-to-136-prev1",
    x: [1, 2, 11, 10, 64],
    w: [136, 3, 3, 3],
    opts: { causal: true, padding: 1 },
    bias: true,
    prev: 1,
  },
  {
    name: "igemm-causal-c8-prev2",
    x: [1, 3, 6, 5, 8],
    w: [8, 3, 3, 3],
    opts: { causal: true, padding: 1 },
    prev: 2,
  },
  { name: "igemm-1x1x1-c8-to-16", x: [2, 3, 5, 7, 8], w: [16, 1, 1, 1], bias: true },
  {
    name: "igemm-causal-c128-prev2",
    x: [1, 2, 12, 20, 128],
    w: [128, 3, 3, 3],
    opts: { causal: true, padding: 1 },
    bias: true,
    prev: 2,
  },
  {
    name: "igemm-causal-time-stride2-c16-prev1",
    x: [2, 5, 7, 6, 16],
    w: [40, 3, 3, 3],
    opts: { causal: true, stride: [2, 1, 1], padding: 1 },
    prev: 1,
  },
  {
    name: "igemm-pad-2x1x0x2-kernel-3x2x3-c8",
    x: [1, 3, 4, 5, 8],
    w: [12, 3, 2, 3],
    opts: { padding: [2, 1, 0, 2] },
    bias: true,
  },
  // Cout <= 8, Cin % 32 == 0, stride 1: the CUDA direct kernel for narrow outputs
  // (native/cuda/conv/conv3d_narrow.cu: the VAE's RGB head). Tiles cut by the image edge in
  // both directions, cached frames, three channel blocks; then a 3x2x3 kernel with time padding
  // at both ends (input frames past either end are skipped), batch 2 and Cout 8.
  {
    name: "narrow-causal-c96-to-3-prev2",
    x: [1, 3, 11, 37, 96],
    w: [3, 3, 3, 3],
    opts: { causal: true, padding: 1 },
    bias: true,
    prev: 2,
  },
  {
    name: "narrow-kernel-3x2x3-pad-1x2x1x1-c64-to-8-batch2",
    x: [2, 2, 9, 33, 64],
    w: [8, 3, 2, 3],
    opts: { padding: [1, 2, 1, 1] },
  },
  // Three channel blocks of 64 with a spatial stride, batch 2 and an even Cout that is not a
  // multiple of 8: on Hopper the warp-specialised kernel (K > 2048, paired stores) with a
  // partial last column tile.
  {
    name: "igemm-causal-c192-to-130-stride-1x2x2-prev2",
    x: [2, 2, 9, 11, 192],
    w: [130, 3, 3, 3],
    opts: { causal: true, stride: [1, 2, 2], padding: 1 },
    bias: true,
    prev: 2,
  },
  {
    name: "igemm-causal-c40-to-72-prev2",
    x: [1, 2, 9, 7, 40],
    w: [72, 3, 3, 3],
    opts: { causal: true, padding: 1 },
    bias: true,
    prev: 2,
  },
];

const conv2dCases: {
  name: string;
  x: [number, number, number, number];
  w: [number, number, number];
  opts: Omit<Conv2dOptions, "bias">;
}[] = [
  { name: "3x3-pad1-c5", x: [2, 9, 7, 5], w: [6, 3, 3], opts: { padding: 1 } },
  { name: "3x3-stride2-pad1-odd", x: [1, 11, 13, 3], w: [7, 3, 3], opts: { stride: 2, padding: 1 } },
  { name: "1x1-c17", x: [1, 4, 5, 17], w: [9, 1, 1], opts: {} },
  {
    name: "5x2-stride-1x2-pad-2x0",
    x: [1, 8, 9, 4],
    w: [3, 5, 2],
    opts: { stride: [1, 2], padding: [2, 0] },
  },
  { name: "igemm-3x3-stride2-c16-odd", x: [1, 13, 15, 16], w: [24, 3, 3], opts: { stride: 2, padding: 1 } },
];

export const cases: ConformanceCase[] = [
  ...conv3dCases.map(
    (c): ConformanceCase => ({
      name: `conv3d/${c.name}`,
      dtypes: floats,
      run: (t) => {
        const [b, , h, w, cin] = c.x;
        const [cout, kt, kh, kw] = c.w;
        return conv3d(t.randn(c.x), t.randn([cout, cin, kt, kh, kw], 1 / Math.sqrt(cin * kt * kh * kw)), {
          ...c.opts,
          bias: c.bias ? t.randn([cout]) : undefined,
          prev: c.prev ? t.randn([b, c.prev, h, w, cin]) : undefined,
        });
      },
    }),
  ),
  ...conv2dCases.map(
    (c): ConformanceCase => ({
      name: `conv2d/${c.name}`,
      dtypes: floats,
      run: (t) => {
        const cin = c.x[3];
        const [cout, kh, kw] = c.w;
        return conv2d(t.randn(c.x), t.randn([cout, cin, kh, kw], 1 / Math.sqrt(cin * kh * kw)), {
          ...c.opts,
          bias: t.randn([cout]),
        });
      },
    }),
  ),
];

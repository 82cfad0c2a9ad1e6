import type { ConformanceCase } from "../testing/conformance.js";
import { gatedResidual, groupNorm, layerNorm, rmsNorm } from "./norm.js";

const floats = ["f32", "bf16", "f16"] as const;

export const cases: ConformanceCase[] = [
  {
    name: "layer_norm/1-channel",
    dtypes: floats,
    run: (t) => layerNorm(t.randn([2, 3, 1]), { eps: 1e-5 }),
  },
  {
    name: "layer_norm/7x7-batch2-affine",
    dtypes: floats,
    run: (t) => layerNorm(t.randn([2, 7, 7]), { weight: t.randn([7]), bias: t.randn([7]) }),
  },
  {
    name: "layer_norm/4097-tokens-C36-modulated-per-sample",
    dtypes: floats,
    run: (t) =>
      layerNorm(t.randn([1, 4097, 36], 3), { scale: t.randn([1, 36], 0.5), shift: t.randn([1, 36]) }),
  },
  {
    name: "layer_norm/video-tokens-C77-modulated-per-token",
    dtypes: floats,
    run: (t) =>
      layerNorm(t.randn([2, 3, 5, 77]), {
        weight: t.randn([77]),
        bias: t.randn([77]),
        scale: t.randn([2, 3, 5, 77], 0.5),
        shift: t.randn([2, 3, 5, 77]),
      }),
  },
  {
    name: "layer_norm/C1536",
    dtypes: floats,
    run: (t) => layerNorm(t.randn([1, 33, 1536]), { weight: t.randn([1536]), bias: t.randn([1536]) }),
  },
  // C a multiple of 8: the CUDA 16-byte warp kernel (norm.cu, norm_warp_vec_kernel), with its
  // pack count per lane at 6 / 12 (C 1536 in bf16 / f32), masked tails (C 264: 33 packs of
  // 8, 66 of 4) and the largest C it takes in bf16 (4096; f32 falls back to the block kernel).
  {
    name: "layer_norm/C1536-adaLN-modulated-per-sample",
    dtypes: floats,
    run: (t) =>
      layerNorm(t.randn([2, 40, 1536], 2), {
        eps: 1e-6,
        scale: t.randn([2, 1536], 0.5),
        shift: t.randn([2, 1536]),
      }),
  },
  // More rows than a full wave of the CUDA warp kernel's warps (132 SMs x 20 on an H100 at
  // C = 1536 in bf16), with a per-sample modulation whose sample changes between waves.
  {
    name: "layer_norm/4500-tokens-C1536-modulated-per-sample",
    dtypes: floats,
    run: (t) =>
      layerNorm(t.randn([2, 2250, 1536]), {
        eps: 1e-6,
        scale: t.randn([2, 1536], 0.5),
        shift: t.randn([2, 1536]),
      }),
  },
  {
    name: "rms_norm/4500-tokens-C1536-weight",
    dtypes: floats,
    run: (t) => rmsNorm(t.randn([1, 4500, 1536], 3), { weight: t.randn([1536]) }),
  },
  {
    name: "layer_norm/C264-affine-modulated-per-token",
    dtypes: floats,
    run: (t) =>
      layerNorm(t.randn([1, 37, 264]), {
        weight: t.randn([264]),
        bias: t.randn([264]),
        scale: t.randn([1, 37, 264], 0.5),
        shift: t.randn([1, 37, 264]),
      }),
  },
  {
    name: "rms_norm/C1536-weight-qk-norm",
    dtypes: floats,
    run: (t) => rmsNorm(t.randn([2, 45, 1536]), { weight: t.randn([1536]), eps: 1e-6 }),
  },
  {
    name: "rms_norm/C4096-weight",
    dtypes: floats,
    run: (t) => rmsNorm(t.randn([1, 9, 4096]), { weight: t.randn([4096]) }),
  },
  {
    name: "rms_norm/7x7-batch2",
    dtypes: floats,
    run: (t) => rmsNorm(t.randn([2, 7, 7])),
  },
  {
    name: "rms_norm/4097-tokens-C36-weight",
    dtypes: floats,
    run: (t) => rmsNorm(t.randn([1, 4097, 36]), { weight: t.randn([36]), eps: 1e-5 }),
  },
  {
    name: "rms_norm/C130-modulated-per-token",
    dtypes: floats,
    run: (t) =>
      rmsNorm(t.randn([2, 11, 130]), {
        weight: t.randn([130]),
        scale: t.randn([2, 11, 130], 0.5),
        shift: t.randn([2, 11, 130]),
      }),
  },
  {
    name: "group_norm/image-2x9x11x33-g3-affine",
    dtypes: floats,
    run: (t) => groupNorm(t.randn([2, 9, 11, 33], 2), 3, { weight: t.randn([33]), bias: t.randn([33]) }),
  },
  {
    name: "group_norm/video-1x3x5x7x12-g4-silu",
    dtypes: floats,
    run: (t) =>
      groupNorm(t.randn([1, 3, 5, 7, 12]), 4, { weight: t.randn([12]), bias: t.randn([12]), silu: true }),
  },
  {
    name: "group_norm/video-1x2x32x32x96-g32-silu",
    dtypes: floats,
    run: (t) => groupNorm(t.randn([1, 2, 32, 32, 96]), 32, { silu: true, eps: 1e-6 }),
  },
  {
    name: "group_norm/1-group-7-channels",
    dtypes: floats,
    run: (t) => groupNorm(t.randn([2, 77, 7]), 1),
  },
  {
    name: "gated_residual/4097-tokens-per-sample",
    dtypes: floats,
    run: (t) => gatedResidual(t.randn([2, 4097, 36]), t.randn([2, 4097, 36]), t.randn([2, 36])),
  },
  {
    name: "gated_residual/per-token-C77",
    dtypes: floats,
    run: (t) => gatedResidual(t.randn([2, 7, 77]), t.randn([2, 7, 77]), t.randn([2, 7, 77])),
  },
];

import type { CaseTools, ConformanceCase } from "../testing/conformance.js";
import { type AttentionOptions, attention } from "./attention.js";

const floats = ["f32", "bf16", "f16"] as const;

interface Spec {
  name: string;
  B: number;
  Lq: number;
  Lk?: number;
  H: number;
  D: number;
  opts?: (t: CaseTools) => AttentionOptions;
}

const spec = (s: Spec): ConformanceCase => ({
  name: `attention/${s.name}`,
  dtypes: floats,
  run: (t) => {
    const Lk = s.Lk ?? s.Lq;
    return attention(
      t.randn([s.B, s.Lq, s.H, s.D]),
      t.randn([s.B, Lk, s.H, s.D]),
      t.randn([s.B, Lk, s.H, s.D]),
      s.opts?.(t),
    );
  },
});

export const cases: ConformanceCase[] = [
  spec({ name: "1-token-D64", B: 1, Lq: 1, H: 1, D: 64 }),
  spec({ name: "7-tokens-batch2-D128", B: 2, Lq: 7, H: 2, D: 128 }),
  spec({ name: "77-tokens-H3-D64", B: 1, Lq: 77, H: 3, D: 64 }),
  spec({ name: "D40-not-a-multiple-of-16", B: 2, Lq: 33, H: 2, D: 40 }),
  spec({
    name: "cross-13x77-batch2-key-padding",
    B: 2,
    Lq: 13,
    Lk: 77,
    H: 2,
    D: 64,
    opts: (t) => ({ keyLengths: t.tensor([77, 30], [2], "i32") }),
  }),
  spec({
    name: "key-padding-zero-and-beyond-Lk",
    B: 3,
    Lq: 9,
    Lk: 21,
    H: 2,
    D: 64,
    opts: (t) => ({ keyLengths: t.tensor([0, 5, 40], [3], "i32") }),
  }),
  spec({ name: "cross-50x7-scale", B: 1, Lq: 50, Lk: 7, H: 2, D: 64, opts: () => ({ scale: 0.4 }) }),
  spec({
    name: "spatial-3x4x5-rope-batch2-D64",
    B: 2,
    Lq: 60,
    H: 2,
    D: 64,
    opts: () => ({ group: "spatial", grid: [3, 4, 5], rope: true }),
  }),
  spec({
    name: "temporal-5x3x4-rope-D128",
    B: 1,
    Lq: 60,
    H: 2,
    D: 128,
    opts: () => ({ group: "temporal", grid: [5, 3, 4], rope: true }),
  }),
  // Temporal groups: Wan's 21 frames at batch 2, 32 and 33 frames (a 32-row group fits half a
  // 64-row tile, 33 does not), and an odd head dim with RoPE.
  spec({
    name: "temporal-21x2x3-batch2-D128-scale",
    B: 2,
    Lq: 126,
    H: 3,
    D: 128,
    opts: () => ({ group: "temporal", grid: [21, 2, 3], scale: 0.3 }),
  }),
  spec({
    name: "temporal-32x3x1-D64",
    B: 1,
    Lq: 96,
    H: 2,
    D: 64,
    opts: () => ({ group: "temporal", grid: [32, 3, 1] }),
  }),
  spec({
    name: "temporal-33x2x1-D64",
    B: 1,
    Lq: 66,
    H: 2,
    D: 64,
    opts: () => ({ group: "temporal", grid: [33, 2, 1] }),
  }),
  // 81 frames: more keys than one 64-key tile (two key buffers); 77 positions of 21 frames:
  // 3 groups a tile with a partial last tile, heads and batch varying fastest over the blocks.
  spec({
    name: "temporal-81x2x3-D128",
    B: 1,
    Lq: 486,
    H: 2,
    D: 128,
    opts: () => ({ group: "temporal", grid: [81, 2, 3] }),
  }),
  spec({
    name: "temporal-21x7x11-batch2-H3-D64",
    B: 2,
    Lq: 1617,
    H: 3,
    D: 64,
    opts: () => ({ group: "temporal", grid: [21, 7, 11] }),
  }),
  spec({
    name: "temporal-7x2x2-D40-rope",
    B: 1,
    Lq: 28,
    H: 2,
    D: 40,
    opts: () => ({ group: "temporal", grid: [7, 2, 2], rope: { dims: [8, 16, 16] } }),
  }),
  spec({
    name: "full-rope-2x3x7-custom-dims-offset-theta",
    B: 2,
    Lq: 42,
    H: 1,
    D: 64,
    opts: () => ({ grid: [2, 3, 7], rope: { dims: [16, 24, 24], offset: [3, 0, 5], theta: 1000 } }),
  }),
  spec({
    name: "bias-shared-19x33",
    B: 2,
    Lq: 19,
    Lk: 33,
    H: 2,
    D: 64,
    opts: (t) => ({ bias: t.uniform([2, 19, 33], -2, 2, "f32") }),
  }),
  spec({
    name: "bias-batched-spatial-key-padding-rope",
    B: 2,
    Lq: 24,
    H: 2,
    D: 64,
    opts: (t) => ({
      group: "spatial",
      grid: [2, 3, 4],
      rope: true,
      bias: t.uniform([2, 2, 24, 24], -2, 2, "f32"),
      keyLengths: t.tensor([24, 13], [2], "i32"),
    }),
  }),
  // Several key tiles at head dim 128, a partial last tile, a one-key tile (key lengths),
  // cross attention; spatial frames of 130 tokens (two query and key tiles per frame).
  spec({
    name: "cross-300x333-D128-batch2-key-padding",
    B: 2,
    Lq: 300,
    Lk: 333,
    H: 2,
    D: 128,
    opts: (t) => ({ keyLengths: t.tensor([333, 129], [2], "i32") }),
  }),
  spec({
    name: "spatial-2x10x13-rope-D128",
    B: 1,
    Lq: 260,
    H: 2,
    D: 128,
    opts: () => ({ group: "spatial", grid: [2, 10, 13], rope: true }),
  }),
  spec({ name: "4097-tokens-H1-D64", B: 1, Lq: 4097, H: 1, D: 64 }),
  spec({
    name: "4097-tokens-temporal-17x241x1-rope",
    B: 1,
    Lq: 4097,
    H: 2,
    D: 64,
    opts: () => ({ group: "temporal", grid: [17, 241, 1], rope: true }),
  }),
  spec({
    name: "4097-tokens-spatial-17x241x1",
    B: 1,
    Lq: 4097,
    H: 1,
    D: 64,
    opts: () => ({ group: "spatial", grid: [17, 241, 1] }),
  }),
];

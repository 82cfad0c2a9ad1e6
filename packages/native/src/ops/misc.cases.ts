import type { ConformanceCase } from "../testing/conformance.js";
import { embedding, full, randn, timestepEmbedding, upsampleNearest } from "./misc.js";

const floats = ["f32", "bf16", "f16"] as const;

export const cases: ConformanceCase[] = [
  // ---- fill: factories take the device from t, having no input ----
  {
    name: "fill/float/77x13",
    dtypes: floats,
    exact: true,
    // -2.5 is exact in every float dtype, so the f32 reference matches bit for bit.
    run: (t) => full([77, 13], -2.5, { dtype: t.dtype, device: t.device }),
  },
  {
    name: "fill/i32/4097",
    dtypes: ["f32"],
    exact: true,
    run: (t) => full([4097], -123457, { dtype: "i32", device: t.device }),
  },
  {
    name: "fill/u8/7x7",
    dtypes: ["f32"],
    exact: true,
    run: (t) => full([7, 7], 201, { dtype: "u8", device: t.device }),
  },
  // ---- randn: the same seed gives the same numbers on every backend ----
  {
    name: "randn/f32/4097",
    dtypes: ["f32"],
    exact: true,
    run: (t) => randn([4097], { seed: 42, device: t.device }),
  },
  {
    name: "randn/f32-large-seed-odd-offset/7x77",
    dtypes: ["f32"],
    exact: true,
    run: (t) => randn([7, 77], { seed: 2 ** 53 - 1, offset: 77, device: t.device }),
  },
  {
    name: "randn/bf16/1",
    dtypes: ["f32"],
    exact: true,
    run: (t) => randn([1], { seed: 7, offset: 1, dtype: "bf16", device: t.device }),
  },
  {
    name: "randn/f16/77x13",
    dtypes: ["f32"],
    exact: true,
    run: (t) => randn([77, 13], { seed: 123456789, dtype: "f16", device: t.device }),
  },
  // ---- upsample_nearest ----
  {
    name: "upsample_nearest/video/1x3x7x5x13-by-2x2x3",
    dtypes: floats,
    exact: true,
    run: (t) => upsampleNearest(t.randn([1, 3, 7, 5, 13]), [2, 2, 3]),
  },
  {
    name: "upsample_nearest/image/2x7x7x3-by-3x1",
    dtypes: floats,
    exact: true,
    run: (t) => upsampleNearest(t.randn([2, 7, 7, 3]), [3, 1]),
  },
  // ---- embedding: ids outside [0, 77) give NaN rows, compared as NaN ----
  {
    name: "embedding/7x11-ids-vocab77x13",
    dtypes: floats,
    exact: true,
    run: (t) => embedding(t.ints([7, 11], -2, 80), t.randn([77, 13])),
  },
  {
    name: "embedding/4097-ids-vocab7x1",
    dtypes: floats,
    exact: true,
    run: (t) => embedding(t.ints([4097], 0, 7), t.randn([7, 1])),
  },
  // ---- timestep_embedding ----
  {
    name: "timestep_embedding/77x256",
    dtypes: floats,
    // Arguments reach 1000 rad, where one ulp of the frequency moves the phase by ~1e-4.
    tolerance: { f32: 5e-4 },
    run: (t) => timestepEmbedding(t.uniform([77], 0, 1000, "f32"), 256, { dtype: t.dtype }),
  },
  {
    name: "timestep_embedding/sin-first-shift1/7x6",
    dtypes: floats,
    tolerance: { f32: 5e-4 },
    run: (t) =>
      timestepEmbedding(t.uniform([7], 0, 1, "f32"), 6, {
        dtype: t.dtype,
        cosFirst: false,
        freqShift: 1,
        maxPeriod: 100,
      }),
  },
];

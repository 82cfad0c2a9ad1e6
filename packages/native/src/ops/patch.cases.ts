import type { ConformanceCase } from "../testing/conformance.js";
import { patchEmbed3d, unpatchify3d } from "./patch.js";

const floats = ["f32", "bf16", "f16"] as const;

// [x shape, patch, D, bias]
const embeds: [[number, number, number, number, number], [number, number, number], number, boolean][] = [
  [[1, 3, 6, 4, 16], [1, 2, 2], 37, true],
  [[2, 4, 4, 6, 5], [2, 2, 2], 7, false],
  [[1, 2, 3, 5, 3], [1, 1, 1], 9, true],
  [[1, 3, 30, 52, 16], [1, 2, 2], 1536, true], // Wan2.1-1.3B's embedding of a 480p-ish latent slice
];

// [batch, grid, patch, channels]
const unpatches: [number, [number, number, number], [number, number, number], number][] = [
  [1, [2, 3, 4], [1, 2, 2], 16],
  [2, [3, 2, 2], [2, 1, 3], 5],
  [1, [2, 5, 3], [1, 1, 1], 7],
];

export const cases: ConformanceCase[] = [
  ...embeds.map(
    ([xs, patch, d, bias]): ConformanceCase => ({
      name: `patch_embed3d/x${xs.join("x")}-p${patch.join("x")}-d${d}${bias ? "-bias" : ""}`,
      dtypes: floats,
      run: (t) => {
        const k = xs[4] * patch[0] * patch[1] * patch[2];
        return patchEmbed3d(
          t.randn(xs),
          t.randn([d, xs[4], ...patch], 1 / Math.sqrt(k)),
          bias ? t.randn([d]) : undefined,
        );
      },
    }),
  ),
  ...unpatches.map(
    ([b, grid, patch, c]): ConformanceCase => ({
      name: `unpatchify3d/g${grid.join("x")}-p${patch.join("x")}-c${c}-b${b}`,
      dtypes: floats,
      exact: true,
      run: (t) =>
        unpatchify3d(t.randn([b, grid[0] * grid[1] * grid[2], patch[0] * patch[1] * patch[2] * c]), {
          grid,
          patch,
          channels: c,
        }),
    }),
  ),
];

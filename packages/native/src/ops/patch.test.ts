// CPU patch_embed3d / unpatchify3d against float64 references written here, the
// round trip through an identity embedding, and every argument error.
import { afterEach, describe, expect, it } from "vitest";
import { liveTensorCount } from "../scope.js";
import { Tensor } from "../tensor.js";
import { relError } from "../testing/compare.js";
import { expectOpError } from "../testing/expect-op-error.js";
import { HostRng } from "../testing/random.js";
import { type PatchEmbedOptions, patchEmbed3d, type UnpatchifyOptions, unpatchify3d } from "./patch.js";

const made: Tensor[] = [];
const rng = new HostRng(4242);
afterEach(() => {
  for (const t of made.splice(0)) t.dispose();
});

function keep(t: Tensor): Tensor {
  made.push(t);
  return t;
}
const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
function randn(shape: number[], scale = 1): { t: Tensor; v: Float32Array } {
  const v = rng.normals(numel(shape), scale);
  return { t: keep(Tensor.from(v, shape)), v };
}
async function values(t: Tensor): Promise<Float32Array> {
  keep(t);
  return t.toFloat32Array();
}

// out[b, token, d] = bias[d] + Σ w[d, c, i, j, l] · x[b, f·pt+i, h·ph+j, w·pw+l, c], tokens in f-h-w order.
function refPatchEmbed(
  x: Float32Array,
  xs: readonly number[],
  w: Float32Array,
  D: number,
  patch: readonly number[],
  bias?: Float32Array,
): Float64Array {
  const [B, F, H, W, C] = xs as [number, number, number, number, number];
  const [pt, ph, pw] = patch as [number, number, number];
  const [gf, gh, gw] = [F / pt, H / ph, W / pw];
  const out = new Float64Array(B * gf * gh * gw * D);
  let o = 0;
  for (let b = 0; b < B; b++)
    for (let f = 0; f < gf; f++)
      for (let h = 0; h < gh; h++)
        for (let ww = 0; ww < gw; ww++)
          for (let d = 0; d < D; d++) {
            let s = bias ? (bias[d] as number) : 0;
            for (let c = 0; c < C; c++)
              for (let i = 0; i < pt; i++)
                for (let j = 0; j < ph; j++)
                  for (let l = 0; l < pw; l++) {
                    const xi = (((b * F + f * pt + i) * H + h * ph + j) * W + ww * pw + l) * C + c;
                    const wi = (((d * C + c) * pt + i) * ph + j) * pw + l;
                    s += (x[xi] as number) * (w[wi] as number);
                  }
            out[o++] = s;
          }
  return out;
}

// x [B, L, pt·ph·pw·C] (pt, ph, pw, C order) -> [B, Fg·pt, Hg·ph, Wg·pw, C].
function refUnpatchify(
  x: Float32Array,
  B: number,
  grid: readonly number[],
  patch: readonly number[],
  C: number,
) {
  const [gf, gh, gw] = grid as [number, number, number];
  const [pt, ph, pw] = patch as [number, number, number];
  const [F, H, W] = [gf * pt, gh * ph, gw * pw];
  const out = new Float32Array(B * F * H * W * C);
  let s = 0;
  for (let b = 0; b < B; b++)
    for (let f = 0; f < gf; f++)
      for (let h = 0; h < gh; h++)
        for (let w = 0; w < gw; w++)
          for (let i = 0; i < pt; i++)
            for (let j = 0; j < ph; j++)
              for (let l = 0; l < pw; l++)
                for (let c = 0; c < C; c++)
                  out[(((b * F + f * pt + i) * H + h * ph + j) * W + w * pw + l) * C + c] = x[s++] as number;
  return out;
}

describe("patch_embed3d on cpu (f32) vs float64 reference", () => {
  const cases: {
    x: [number, number, number, number, number];
    d: number;
    patch: [number, number, number];
    bias: boolean;
  }[] = [
    { x: [1, 1, 4, 6, 3], d: 5, patch: [1, 2, 2], bias: true },
    { x: [2, 4, 6, 4, 16], d: 37, patch: [1, 2, 2], bias: true }, // Wan latent channels, odd D
    { x: [1, 4, 4, 4, 5], d: 7, patch: [2, 2, 2], bias: false },
    { x: [2, 3, 3, 5, 9], d: 11, patch: [1, 1, 1], bias: true },
    { x: [1, 2, 9, 6, 4], d: 6, patch: [2, 3, 1], bias: false },
    { x: [1, 4, 16, 16, 16], d: 96, patch: [1, 2, 2], bias: true }, // enough tokens to thread
  ];
  for (const c of cases) {
    it(`x [${c.x.join(", ")}] patch [${c.patch.join(", ")}] D ${c.d}${c.bias ? " + bias" : ""}`, async () => {
      const x = randn(c.x);
      const w = randn([c.d, c.x[4], ...c.patch], 0.3);
      const bias = c.bias ? randn([c.d]) : undefined;
      const out = patchEmbed3d(x.t, w.t, bias?.t);
      const tokens = (c.x[1] / c.patch[0]) * (c.x[2] / c.patch[1]) * (c.x[3] / c.patch[2]);
      expect(out.shape).toEqual([c.x[0], tokens, c.d]);
      const want = refPatchEmbed(x.v, c.x, w.v, c.d, c.patch, bias?.v);
      expect(relError(await values(out), want)).toBeLessThan(1e-5);
    });
  }

  it("an explicit patch equal to the weight's kernel is accepted", async () => {
    const x = randn([1, 2, 4, 4, 3]);
    const w = randn([4, 3, 1, 2, 2]);
    const got = await values(patchEmbed3d(x.t, w.t, undefined, { patch: [1, 2, 2] }));
    expect(relError(got, refPatchEmbed(x.v, [1, 2, 4, 4, 3], w.v, 4, [1, 2, 2]))).toBeLessThan(1e-5);
  });
});

describe("unpatchify3d on cpu", () => {
  for (const [B, grid, patch, C] of [
    [1, [1, 2, 3], [1, 2, 2], 16],
    [2, [3, 2, 2], [2, 1, 3], 5],
    [1, [2, 5, 3], [1, 1, 1], 7],
  ] as const) {
    it(`grid [${grid.join(", ")}] patch [${patch.join(", ")}] C ${C}`, async () => {
      const L = numel(grid);
      const x = randn([B, L, numel(patch) * C]);
      const out = unpatchify3d(x.t, { grid, patch, channels: C });
      expect(out.shape).toEqual([B, grid[0] * patch[0], grid[1] * patch[1], grid[2] * patch[2], C]);
      // A pure permutation: exact.
      expect(Array.from(await values(out))).toEqual(Array.from(refUnpatchify(x.v, B, grid, patch, C)));
    });
  }

  it("inverts patch_embed3d with an identity weight", async () => {
    const [B, F, H, W, C] = [2, 4, 6, 4, 3];
    const patch = [2, 2, 2] as const;
    const D = numel(patch) * C;
    // weight[d, c, i, j, l] = 1 where d = ((i·ph + j)·pw + l)·C + c: the token holds the patch in unpatchify's order.
    const w = new Float32Array(D * D);
    for (let c = 0; c < C; c++)
      for (let i = 0; i < 2; i++)
        for (let j = 0; j < 2; j++)
          for (let l = 0; l < 2; l++)
            w[((((i * 2 + j) * 2 + l) * C + c) * C + c) * 8 + (i * 2 + j) * 2 + l] = 1;
    const x = randn([B, F, H, W, C]);
    const tokens = keep(patchEmbed3d(x.t, keep(Tensor.from(w, [D, C, ...patch]))));
    const back = await values(unpatchify3d(tokens, { grid: [F / 2, H / 2, W / 2], patch, channels: C }));
    expect(Array.from(back)).toEqual(Array.from(x.v));
  });
});

describe("patch argument errors", () => {
  it("patch_embed3d names the bad argument", () => {
    const x = randn([1, 2, 4, 4, 3]).t;
    const w = randn([8, 3, 1, 2, 2]).t;
    const half = (shape: number[], dtype: "bf16" | "f16") =>
      keep(Tensor.from(new Array(numel(shape)).fill(0), shape, { dtype }));
    expectOpError(() => patchEmbed3d(randn([2, 4, 4, 3]).t, w), "x", "patch_embed3d");
    expectOpError(() => patchEmbed3d(half([1, 2, 4, 4, 3], "bf16"), half([8, 3, 1, 2, 2], "bf16")), "x");
    expectOpError(
      () => patchEmbed3d(keep(Tensor.from(new Array(96).fill(0), [1, 2, 4, 4, 3], { dtype: "i32" })), w),
      "x",
    );
    expectOpError(() => patchEmbed3d(randn([1, 2, 5, 4, 3]).t, w), "x");
    expectOpError(() => patchEmbed3d(randn([1, 2, 4, 3, 3]).t, w), "x");
    expectOpError(() => patchEmbed3d(randn([1, 3, 4, 4, 3]).t, randn([8, 3, 2, 2, 2]).t), "x");
    expectOpError(() => patchEmbed3d(keep(Tensor.from([], [1, 0, 4, 4, 3])), w), "x");
    expectOpError(() => patchEmbed3d(keep(randn([1, 2, 4, 3, 4]).t.permuteView([0, 1, 2, 4, 3])), w), "x");
    expectOpError(() => patchEmbed3d(x, randn([8, 3, 2, 2]).t), "weight");
    expectOpError(() => patchEmbed3d(x, randn([8, 4, 1, 2, 2]).t), "weight");
    expectOpError(() => patchEmbed3d(x, half([8, 3, 1, 2, 2], "f16")), "weight");
    expectOpError(() => patchEmbed3d(x, keep(Tensor.from([], [0, 3, 1, 2, 2]))), "weight");
    expectOpError(() => patchEmbed3d(x, w, randn([7]).t), "bias");
    expectOpError(() => patchEmbed3d(x, w, half([8], "bf16")), "bias");
    expectOpError(() => patchEmbed3d(x, w, undefined, { patch: [1, 1, 1] }), "patch");
    expectOpError(
      () => patchEmbed3d(x, w, undefined, { patch: [1, 2] as unknown as [number, number, number] }),
      "patch",
    );
    expectOpError(() => patchEmbed3d(x, w, undefined, { patch: [1, 0, 2] }), "patch");
    expectOpError(
      () => patchEmbed3d(x, w, undefined, { stride: 2 } as unknown as PatchEmbedOptions),
      "stride",
    );
    const gone = Tensor.from(new Array(96).fill(0), [1, 2, 4, 4, 3]);
    gone.dispose();
    expectOpError(() => patchEmbed3d(gone, w), "x");
  });

  it("unpatchify3d names the bad argument", () => {
    const x = randn([1, 6, 4 * 5]).t;
    const ok: UnpatchifyOptions = { grid: [1, 2, 3], patch: [1, 2, 2], channels: 5 };
    expectOpError(() => unpatchify3d(randn([6, 20]).t, ok), "x", "unpatchify3d");
    expectOpError(() => unpatchify3d(randn([1, 6, 21]).t, ok), "x");
    expectOpError(
      () => unpatchify3d(keep(Tensor.from(new Array(120).fill(0), [1, 6, 20], { dtype: "f16" })), ok),
      "x",
    );
    expectOpError(() => unpatchify3d(keep(randn([1, 20, 6]).t.permuteView([0, 2, 1])), ok), "x");
    expectOpError(() => unpatchify3d(x, { ...ok, grid: [1, 2, 2] }), "grid");
    expectOpError(
      () => unpatchify3d(x, { ...ok, grid: [6, 1] as unknown as [number, number, number] }),
      "grid",
    );
    expectOpError(() => unpatchify3d(x, { ...ok, grid: [-1, -2, 3] }), "grid");
    expectOpError(() => unpatchify3d(x, { ...ok, patch: [1, 2, 0] }), "patch");
    expectOpError(() => unpatchify3d(x, { ...ok, channels: 0 }), "channels");
    expectOpError(() => unpatchify3d(x, { ...ok, channels: 2.5 }), "channels");
    expectOpError(() => unpatchify3d(x, { grid: ok.grid, patch: ok.patch } as UnpatchifyOptions), "channels");
    expectOpError(() => unpatchify3d(x, { patch: ok.patch, channels: 5 } as UnpatchifyOptions), "grid");
    expectOpError(() => unpatchify3d(x, { grid: ok.grid, channels: 5 } as UnpatchifyOptions), "patch");
  });

  it("leaks no tensors", () => {
    for (const t of made.splice(0)) t.dispose();
    expect(liveTensorCount()).toBe(0);
  });
});

// CPU conv3d/conv2d against a float64 reference written here (padding, stride,
// causal time padding, the previous-chunk frame cache), plus every argument error.
import { afterEach, describe, expect, it } from "vitest";
import { liveTensorCount } from "../scope.js";
import { Tensor } from "../tensor.js";
import { relError } from "../testing/compare.js";
import { expectOpError } from "../testing/expect-op-error.js";
import { HostRng } from "../testing/random.js";
import { type Conv2dOptions, type Conv3dOptions, conv2d, conv3d } from "./conv.js";

const made: Tensor[] = [];
const rng = new HostRng(77);
afterEach(() => {
  for (const t of made.splice(0)) t.dispose();
});

function keep(t: Tensor): Tensor {
  made.push(t);
  return t;
}
const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
function randn(shape: number[], scale = 1): { t: Tensor; v: Float32Array; shape: number[] } {
  const v = rng.normals(numel(shape), scale);
  return { t: keep(Tensor.from(v, shape)), v, shape };
}
async function values(t: Tensor): Promise<Float32Array> {
  keep(t);
  return t.toFloat32Array();
}

interface RefOpts {
  bias?: Float32Array;
  stride?: [number, number, number];
  pad?: [number, number, number, number]; // tFront, tBack, h, w
  prev?: Float32Array;
  prevFrames?: number;
}

// Channels-last conv3d in float64; frames before x come from `prev` (its last ones
// nearest to x) and are zeros beyond it, as the kernel defines.
function refConv3d(
  x: Float32Array,
  xs: readonly number[],
  w: Float32Array,
  ws: readonly number[],
  o: RefOpts = {},
): { out: Float64Array; shape: number[] } {
  const [B, F, H, W, Ci] = xs as [number, number, number, number, number];
  const [Co, , kt, kh, kw] = ws as [number, number, number, number, number];
  const [st, sh, sw] = o.stride ?? [1, 1, 1];
  const [pf, pb, ph, pw] = o.pad ?? [0, 0, 0, 0];
  const P = o.prevFrames ?? 0;
  const Fo = Math.floor((pf + F + pb - kt) / st) + 1;
  const Ho = Math.floor((2 * ph + H - kh) / sh) + 1;
  const Wo = Math.floor((2 * pw + W - kw) / sw) + 1;
  const out = new Float64Array(B * Fo * Ho * Wo * Co);
  let idx = 0;
  for (let b = 0; b < B; b++)
    for (let fo = 0; fo < Fo; fo++)
      for (let ho = 0; ho < Ho; ho++)
        for (let wo = 0; wo < Wo; wo++)
          for (let co = 0; co < Co; co++) {
            let s = o.bias ? (o.bias[co] as number) : 0;
            for (let t = 0; t < kt; t++) {
              const f = fo * st + t - pf;
              if (f >= F || f < -P) continue;
              for (let i = 0; i < kh; i++) {
                const h = ho * sh + i - ph;
                if (h < 0 || h >= H) continue;
                for (let j = 0; j < kw; j++) {
                  const ww = wo * sw + j - pw;
                  if (ww < 0 || ww >= W) continue;
                  for (let c = 0; c < Ci; c++) {
                    const xv =
                      f >= 0
                        ? (x[(((b * F + f) * H + h) * W + ww) * Ci + c] as number)
                        : ((o.prev as Float32Array)[(((b * P + P + f) * H + h) * W + ww) * Ci + c] as number);
                    s += xv * (w[(((co * Ci + c) * kt + t) * kh + i) * kw + j] as number);
                  }
                }
              }
            }
            out[idx++] = s;
          }
  return { out, shape: [B, Fo, Ho, Wo, Co] };
}

// Frames [f0, f1) of a [B, F, ...] array.
function frames(v: Float32Array, shape: readonly number[], f0: number, f1: number): Float32Array {
  const [B, F] = shape as [number, number];
  const per = numel(shape.slice(2));
  const out = new Float32Array(B * (f1 - f0) * per);
  for (let b = 0; b < B; b++)
    out.set(v.subarray((b * F + f0) * per, (b * F + f1) * per), b * (f1 - f0) * per);
  return out;
}

describe("conv3d on cpu (f32) vs float64 reference", () => {
  const cases: {
    name: string;
    x: number[];
    w: number[];
    opts: Conv3dOptions;
    ref: RefOpts;
    bias?: boolean;
  }[] = [
    {
      name: "3x3x3, pad 1, odd channels",
      x: [2, 5, 9, 7, 5],
      w: [7, 5, 3, 3, 3],
      opts: { padding: 1 },
      ref: { pad: [1, 1, 1, 1] },
      bias: true,
    },
    {
      name: "3x3x3, stride 2, pad 1",
      x: [1, 7, 11, 9, 3],
      w: [6, 3, 3, 3, 3],
      opts: { stride: 2, padding: 1 },
      ref: { stride: [2, 2, 2], pad: [1, 1, 1, 1] },
    },
    {
      name: "stride [1, 2, 2], padding [t, h, w]",
      x: [1, 4, 8, 10, 4],
      w: [9, 4, 3, 3, 3],
      opts: { stride: [1, 2, 2], padding: [1, 1, 1] },
      ref: { stride: [1, 2, 2], pad: [1, 1, 1, 1] },
      bias: true,
    },
    { name: "1x1x1", x: [2, 3, 5, 6, 13], w: [11, 13, 1, 1, 1], opts: {}, ref: {}, bias: true },
    {
      name: "1x1x1 stride 2",
      x: [1, 3, 5, 6, 8],
      w: [5, 8, 1, 1, 1],
      opts: { stride: 2 },
      ref: { stride: [2, 2, 2] },
    },
    {
      name: "asymmetric time padding [2, 1, 0, 2]",
      x: [1, 3, 4, 5, 3],
      w: [4, 3, 3, 2, 3],
      opts: { padding: [2, 1, 0, 2] },
      ref: { pad: [2, 1, 0, 2] },
    },
    { name: "no padding, kernel 2x3x1", x: [1, 4, 6, 3, 6], w: [3, 6, 2, 3, 1], opts: {}, ref: {} },
    {
      name: "causal 3x3x3",
      x: [1, 5, 6, 7, 4],
      w: [5, 4, 3, 3, 3],
      opts: { causal: true, padding: 1 },
      ref: { pad: [2, 0, 1, 1] },
      bias: true,
    },
    {
      name: "causal, spatial padding [h, w] = [0, 1]",
      x: [2, 3, 5, 4, 3],
      w: [4, 3, 3, 3, 3],
      opts: { causal: true, padding: [0, 1] },
      ref: { pad: [2, 0, 0, 1] },
    },
    {
      name: "causal, kernel 3x1x1 stride [2, 1, 1]",
      x: [1, 6, 3, 3, 5],
      w: [6, 5, 3, 1, 1],
      opts: { causal: true, stride: [2, 1, 1] },
      ref: { stride: [2, 1, 1], pad: [2, 0, 0, 0] },
    },
    {
      name: "large: K = 1080 over several blocks, 70 outputs, threaded",
      x: [1, 4, 12, 10, 40],
      w: [70, 40, 3, 3, 3],
      opts: { padding: 1 },
      ref: { pad: [1, 1, 1, 1] },
      bias: true,
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const x = randn(c.x);
      const w = randn(c.w, 0.3);
      const bias = c.bias ? randn([c.w[0] as number]) : undefined;
      const out = conv3d(x.t, w.t, { ...c.opts, bias: bias?.t });
      const want = refConv3d(x.v, x.shape, w.v, w.shape, { ...c.ref, bias: bias?.v });
      expect(out.shape).toEqual(want.shape);
      expect(relError(await values(out), want.out)).toBeLessThan(1e-5);
    });
  }

  it("causal with prev: the cache fills the front padding (P = 1 and P = 2)", async () => {
    for (const P of [1, 2]) {
      const x = randn([2, 3, 5, 6, 7]);
      const w = randn([5, 7, 3, 3, 3], 0.3);
      const prev = randn([2, P, 5, 6, 7]);
      const got = await values(conv3d(x.t, w.t, { causal: true, padding: 1, prev: prev.t }));
      const want = refConv3d(x.v, x.shape, w.v, w.shape, { pad: [2, 0, 1, 1], prev: prev.v, prevFrames: P });
      expect(relError(got, want.out)).toBeLessThan(1e-5);
    }
  });

  it("prev on a non-causal conv with explicit front padding", async () => {
    const x = randn([1, 2, 4, 4, 3]);
    const w = randn([2, 3, 3, 1, 1]);
    const prev = randn([1, 1, 4, 4, 3]);
    const got = await values(conv3d(x.t, w.t, { padding: [1, 1, 0, 0], prev: prev.t }));
    const want = refConv3d(x.v, x.shape, w.v, w.shape, { pad: [1, 1, 0, 0], prev: prev.v, prevFrames: 1 });
    expect(relError(got, want.out)).toBeLessThan(1e-5);
  });

  it("chunked causal conv with the frame cache equals the whole-video conv", async () => {
    // Wan's VAE encodes 1 frame, then chunks of 4; each chunk's cache is the last kt - 1
    // input frames seen so far (fewer at the start, the rest is zero padding).
    const xs = [1, 7, 6, 5, 6];
    const x = randn(xs);
    const w = randn([8, 6, 3, 3, 3], 0.3);
    const bias = randn([8]);
    const whole = await values(conv3d(x.t, w.t, { causal: true, padding: 1, bias: bias.t }));
    const parts: Float32Array[] = [];
    let start = 0;
    for (const len of [1, 4, 2]) {
      const chunk = keep(Tensor.from(frames(x.v, xs, start, start + len), [1, len, 6, 5, 6]));
      const p0 = Math.max(0, start - 2);
      const prev =
        start > 0 ? keep(Tensor.from(frames(x.v, xs, p0, start), [1, start - p0, 6, 5, 6])) : undefined;
      parts.push(await values(conv3d(chunk, w.t, { causal: true, padding: 1, bias: bias.t, prev })));
      start += len;
    }
    const joined = new Float32Array(whole.length);
    let off = 0;
    for (const p of parts) {
      joined.set(p, off);
      off += p.length;
    }
    expect(relError(joined, whole)).toBeLessThan(1e-6);
  });
});

describe("conv2d on cpu (f32) vs float64 reference", () => {
  for (const [name, xs, ws, stride, pad] of [
    ["3x3 pad 1", [2, 9, 7, 5], [6, 5, 3, 3], 1, 1],
    ["3x3 stride 2 pad 1, odd sizes", [1, 11, 13, 3], [7, 3, 3, 3], 2, 1],
    ["1x1", [1, 4, 5, 17], [9, 17, 1, 1], 1, 0],
    ["stride [1, 2], padding [2, 0], kernel 5x2", [1, 8, 9, 4], [3, 4, 5, 2], [1, 2], [2, 0]],
  ] as const) {
    it(name, async () => {
      const x = randn([...xs]);
      const w = randn([...ws], 0.3);
      const bias = randn([ws[0]]);
      const out = conv2d(x.t, w.t, { bias: bias.t, stride, padding: pad });
      const s = typeof stride === "number" ? [stride, stride] : stride;
      const p = typeof pad === "number" ? [pad, pad] : pad;
      const want = refConv3d(x.v, [xs[0], 1, xs[1], xs[2], xs[3]], w.v, [ws[0], ws[1], 1, ws[2], ws[3]], {
        bias: bias.v,
        stride: [1, s[0] as number, s[1] as number],
        pad: [0, 0, p[0] as number, p[1] as number],
      });
      expect(out.shape).toEqual([want.shape[0], want.shape[2], want.shape[3], want.shape[4]]);
      expect(relError(await values(out), want.out)).toBeLessThan(1e-5);
    });
  }
});

describe("conv argument errors", () => {
  it("conv3d names the bad argument", () => {
    const x = randn([1, 3, 5, 5, 4]).t;
    const w = randn([6, 4, 3, 3, 3]).t;
    const f16 = (shape: number[]) =>
      keep(Tensor.from(new Array(numel(shape)).fill(0), shape, { dtype: "f16" }));
    expectOpError(() => conv3d(randn([1, 5, 5, 4]).t, w), "x", "conv3d");
    expectOpError(
      () => conv3d(keep(Tensor.from(new Array(300).fill(0), [1, 3, 5, 5, 4], { dtype: "i32" })), w),
      "x",
    );
    expectOpError(() => conv3d(f16([1, 3, 5, 5, 4]), f16([6, 4, 3, 3, 3])), "x");
    expectOpError(() => conv3d(keep(Tensor.from([], [1, 3, 0, 5, 4])), w), "x");
    expectOpError(() => conv3d(x, randn([6, 4, 3, 3]).t), "weight");
    expectOpError(() => conv3d(x, randn([6, 3, 3, 3, 3]).t), "weight");
    expectOpError(() => conv3d(x, f16([6, 4, 3, 3, 3])), "weight");
    expectOpError(() => conv3d(x, keep(Tensor.from([], [6, 4, 0, 3, 3]))), "weight");
    expectOpError(() => conv3d(x, w, { bias: randn([5]).t }), "bias");
    expectOpError(() => conv3d(x, w, { bias: f16([6]) }), "bias");
    expectOpError(() => conv3d(x, w, { stride: 0 }), "stride");
    expectOpError(() => conv3d(x, w, { stride: [1, 2] as unknown as number }), "stride");
    expectOpError(() => conv3d(x, w, { padding: -1 }), "padding");
    expectOpError(() => conv3d(x, w, { padding: [1, 1] }), "padding");
    expectOpError(() => conv3d(x, w, { causal: true, padding: [1, 1, 1] }), "padding");
    expectOpError(() => conv3d(x, w, { causal: true, padding: [0, 0, 1, 1] }), "padding");
    expectOpError(() => conv3d(x, w, { causal: "yes" as unknown as boolean }), "causal");
    // Too small for the kernel once padded.
    expectOpError(() => conv3d(randn([1, 3, 2, 5, 4]).t, w), "x");
    expectOpError(() => conv3d(randn([1, 1, 5, 5, 4]).t, w, { padding: [0, 1, 1] }), "x");
    // The frame cache.
    expectOpError(() => conv3d(x, w, { causal: true, padding: 1, prev: randn([1, 3, 5, 5, 4]).t }), "prev");
    expectOpError(() => conv3d(x, w, { causal: true, padding: 1, prev: randn([1, 2, 5, 4, 4]).t }), "prev");
    expectOpError(() => conv3d(x, w, { causal: true, padding: 1, prev: randn([2, 2, 5, 5, 4]).t }), "prev");
    expectOpError(() => conv3d(x, w, { causal: true, padding: 1, prev: randn([1, 2, 5, 5, 3]).t }), "prev");
    expectOpError(() => conv3d(x, w, { causal: true, padding: 1, prev: randn([2, 5, 5, 4]).t }), "prev");
    expectOpError(() => conv3d(x, w, { causal: true, padding: 1, prev: f16([1, 2, 5, 5, 4]) }), "prev");
    expectOpError(() => conv3d(x, w, { padding: 1, prev: randn([1, 2, 5, 5, 4]).t }), "prev");
    expectOpError(() => conv3d(x, w, { prev: randn([1, 1, 5, 5, 4]).t }), "prev");
    // Layout and lifetime.
    expectOpError(() => conv3d(keep(randn([1, 3, 5, 4, 5]).t.permuteView([0, 1, 2, 4, 3])), w), "x");
    expectOpError(() => conv3d(x, w, { strides: 2 } as unknown as Conv3dOptions), "strides");
    const gone = Tensor.from(new Array(6 * 4 * 27).fill(0), [6, 4, 3, 3, 3]);
    gone.dispose();
    expectOpError(() => conv3d(x, gone), "weight");
  });

  it("conv2d names the bad argument", () => {
    const x = randn([1, 5, 5, 4]).t;
    const w = randn([6, 4, 3, 3]).t;
    expectOpError(() => conv2d(randn([1, 1, 5, 5, 4]).t, w), "x", "conv2d");
    expectOpError(() => conv2d(x, randn([6, 4, 1, 3, 3]).t), "weight");
    expectOpError(() => conv2d(x, randn([6, 5, 3, 3]).t), "weight");
    expectOpError(() => conv2d(x, w, { padding: [1, 1, 1] as unknown as number }), "padding");
    expectOpError(() => conv2d(x, w, { padding: -2 }), "padding");
    expectOpError(() => conv2d(x, w, { stride: [2, 0] }), "stride");
    expectOpError(() => conv2d(x, w, { bias: randn([4]).t }), "bias");
    expectOpError(() => conv2d(randn([1, 2, 5, 4]).t, w), "x");
    expectOpError(() => conv2d(x, w, { causal: true } as unknown as Conv2dOptions), "causal");
    expectOpError(
      () => conv2d(keep(Tensor.from(new Array(100).fill(0), [1, 5, 5, 4], { dtype: "bf16" })), w),
      "x",
    );
  });

  it("leaks no tensors", () => {
    for (const t of made.splice(0)) t.dispose();
    expect(liveTensorCount()).toBe(0);
  });
});

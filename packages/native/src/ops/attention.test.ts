import { describe, expect, it } from "vitest";
import { OpError } from "../errors.js";
import { liveTensorCount, scope } from "../scope.js";
import { Tensor } from "../tensor.js";
import { relError } from "../testing/compare.js";
import { expectOpError as expectOpErrorNaming } from "../testing/expect-op-error.js";
import { HostRng } from "../testing/random.js";
import { type AttentionGroup, attention, wanRopeDims } from "./attention.js";
import { runOp } from "./run.js";

type Grid = [number, number, number];

interface RefOptions {
  scale?: number;
  group?: AttentionGroup;
  grid?: Grid;
  rope?: { dims: Grid; offset: Grid; theta: number };
  keyLengths?: readonly number[];
  bias?: Float32Array;
  biasBatched?: boolean;
}

interface Dims {
  B: number;
  Lq: number;
  Lk: number;
  H: number;
  D: number;
}

// Float64 reference written straight from the definition: explicit token masks
// instead of the kernel's token groups, RoPE as a complex rotation of channel pairs.
function refAttention(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  dm: Dims,
  o: RefOptions,
): Float64Array {
  const { B, Lq, Lk, H, D } = dm;
  const scale = o.scale ?? 1 / Math.sqrt(D);
  const grid = o.grid ?? [1, 1, Lq];
  const hw = grid[1] * grid[2];
  const allowed = (i: number, j: number): boolean => {
    switch (o.group ?? "full") {
      case "spatial":
        return Math.floor(i / hw) === Math.floor(j / hw);
      case "temporal":
        return i % hw === j % hw;
      default:
        return true;
    }
  };
  const rotate = (x: Float64Array, tok: number): Float64Array => {
    if (!o.rope) return x;
    const pos = [Math.floor(tok / hw), Math.floor(tok / grid[2]) % grid[1], tok % grid[2]];
    const y = new Float64Array(x);
    let c0 = 0;
    for (let ax = 0; ax < 3; ax++) {
      const d = o.rope.dims[ax] as number;
      for (let i = 0; i < d / 2; i++) {
        const ang = ((pos[ax] as number) + (o.rope.offset[ax] as number)) * o.rope.theta ** ((-2 * i) / d);
        const re = x[c0 + 2 * i] as number;
        const im = x[c0 + 2 * i + 1] as number;
        y[c0 + 2 * i] = re * Math.cos(ang) - im * Math.sin(ang);
        y[c0 + 2 * i + 1] = re * Math.sin(ang) + im * Math.cos(ang);
      }
      c0 += d;
    }
    return y;
  };
  const row = (t: Float32Array, L: number, b: number, i: number, h: number): Float64Array =>
    Float64Array.from(t.subarray(((b * L + i) * H + h) * D, ((b * L + i) * H + h + 1) * D));
  const out = new Float64Array(B * Lq * H * D);
  for (let b = 0; b < B; b++) {
    const kl = o.keyLengths ? (o.keyLengths[b] as number) : Lk;
    for (let h = 0; h < H; h++) {
      const keys = Array.from({ length: Lk }, (_, j) => rotate(row(k, Lk, b, j, h), j));
      for (let i = 0; i < Lq; i++) {
        const qi = rotate(row(q, Lq, b, i, h), i);
        const logits: number[] = [];
        const idx: number[] = [];
        for (let j = 0; j < Lk; j++) {
          if (!allowed(i, j) || j >= kl) continue;
          let s = 0;
          const kj = keys[j] as Float64Array;
          for (let d = 0; d < D; d++) s += (qi[d] as number) * (kj[d] as number);
          s *= scale;
          if (o.bias) s += o.bias[(o.biasBatched ? b * H * Lq * Lk : 0) + (h * Lq + i) * Lk + j] as number;
          logits.push(s);
          idx.push(j);
        }
        const m = Math.max(...logits);
        if (logits.length === 0 || m === Number.NEGATIVE_INFINITY) continue; // all masked: zeros
        const p = logits.map((s) => Math.exp(s - m));
        const sum = p.reduce((a, x) => a + x, 0);
        const base = ((b * Lq + i) * H + h) * D;
        idx.forEach((j, n) => {
          const w = (p[n] as number) / sum;
          const vj = row(v, Lk, b, j, h);
          for (let d = 0; d < D; d++) out[base + d] = (out[base + d] as number) + w * (vj[d] as number);
        });
      }
    }
  }
  return out;
}

interface Case extends RefOptions {
  dims: Dims;
}

const rng = new HostRng(20240611);

async function check(c: Case, tol = 2e-6): Promise<number> {
  const { B, Lq, Lk, H, D } = c.dims;
  const q = rng.normals(B * Lq * H * D);
  const k = rng.normals(B * Lk * H * D);
  const v = rng.normals(B * Lk * H * D);
  const ref = refAttention(q, k, v, c.dims, c);
  const got = await scope(async () => {
    const out = attention(
      Tensor.from(q, [B, Lq, H, D]),
      Tensor.from(k, [B, Lk, H, D]),
      Tensor.from(v, [B, Lk, H, D]),
      {
        scale: c.scale,
        group: c.group,
        grid: c.grid,
        rope: c.rope,
        keyLengths: c.keyLengths ? Tensor.from(c.keyLengths, [B], { dtype: "i32" }) : undefined,
        bias: c.bias ? Tensor.from(c.bias, c.biasBatched ? [B, H, Lq, Lk] : [H, Lq, Lk]) : undefined,
      },
    );
    expect(out.shape).toEqual([B, Lq, H, D]);
    return out.toFloat32Array();
  });
  const err = relError(got, ref);
  expect(err).toBeLessThan(tol);
  return err;
}

describe("attention (CPU) against a float64 reference", () => {
  it("full self-attention, batch 2, odd token counts, head dims 64 and 128", async () => {
    const before = liveTensorCount();
    await check({ dims: { B: 2, Lq: 7, Lk: 7, H: 3, D: 64 } });
    await check({ dims: { B: 1, Lq: 1, Lk: 1, H: 1, D: 64 } });
    await check({ dims: { B: 2, Lq: 77, Lk: 77, H: 2, D: 128 } });
    expect(liveTensorCount()).toBe(before);
  });

  it("head dims that are not a multiple of the vector width", async () => {
    await check({ dims: { B: 1, Lq: 9, Lk: 9, H: 2, D: 7 } });
    await check({ dims: { B: 2, Lq: 33, Lk: 33, H: 1, D: 20 } });
    await check({ dims: { B: 1, Lq: 5, Lk: 5, H: 1, D: 130 } });
    await check({ dims: { B: 1, Lq: 3, Lk: 3, H: 1, D: 1 } });
  });

  it("enough queries and heads for several tasks per thread", async () => {
    await check({ dims: { B: 1, Lq: 320, Lk: 320, H: 4, D: 64 } });
    await check({ dims: { B: 1, Lq: 300, Lk: 300, H: 1, D: 48 }, scale: 0.05 });
  });

  it("a key sequence long enough that K/V are prepared one (batch, head) at a time", async () => {
    await check({ dims: { B: 1, Lq: 3, Lk: 40000, H: 2, D: 64 }, keyLengths: [35001] }, 1e-5);
  });

  it("cross-attention Lq != Lk with a custom scale", async () => {
    await check({ dims: { B: 2, Lq: 13, Lk: 77, H: 2, D: 64 }, scale: 0.3 });
    await check({ dims: { B: 1, Lq: 150, Lk: 3, H: 3, D: 16 } });
  });

  it("spatial grouping: a token sees only its own frame", async () => {
    await check({ dims: { B: 2, Lq: 30, Lk: 30, H: 2, D: 16 }, group: "spatial", grid: [3, 2, 5] });
    await check({ dims: { B: 1, Lq: 140, Lk: 140, H: 1, D: 64 }, group: "spatial", grid: [2, 7, 10] });
  });

  it("temporal grouping: a token sees only its own (h, w) site", async () => {
    await check({ dims: { B: 2, Lq: 24, Lk: 24, H: 2, D: 16 }, group: "temporal", grid: [4, 3, 2] });
    await check({ dims: { B: 1, Lq: 105, Lk: 105, H: 1, D: 64 }, group: "temporal", grid: [7, 3, 5] });
  });

  it("Wan 3D RoPE with the default split, and with custom dims, offset and theta", async () => {
    const grid: Grid = [3, 4, 5];
    const dims = { B: 2, Lq: 60, Lk: 60, H: 2, D: 64 };
    await check({ dims, grid, rope: { dims: wanRopeDims(64), offset: [0, 0, 0], theta: 10000 } });
    // `rope: true` must mean exactly the Wan split.
    const q = rng.normals(60 * 64);
    const mk = () => Tensor.from(q, [1, 60, 1, 64]);
    const [a, b] = await scope(async () => {
      const x = attention(mk(), mk(), mk(), { grid, rope: true });
      const y = attention(mk(), mk(), mk(), { grid, rope: { dims: [24, 20, 20] } });
      return Promise.all([x.toFloat32Array(), y.toFloat32Array()]);
    });
    expect(Array.from(a)).toEqual(Array.from(b));
    await check({
      dims: { B: 1, Lq: 42, Lk: 42, H: 2, D: 20 },
      grid: [2, 3, 7],
      rope: { dims: [4, 6, 10], offset: [5, -2, 300], theta: 500 },
    });
    await check({
      dims: { B: 1, Lq: 24, Lk: 24, H: 1, D: 128 },
      grid: [4, 2, 3],
      rope: { dims: wanRopeDims(128), offset: [0, 0, 0], theta: 10000 },
    });
    // Axes may take no channels at all (a 1-D temporal RoPE).
    await check({
      dims: { B: 1, Lq: 12, Lk: 12, H: 1, D: 8 },
      grid: [12, 1, 1],
      rope: { dims: [8, 0, 0], offset: [0, 0, 0], theta: 10000 },
    });
  });

  it("RoPE combined with spatial and temporal grouping", async () => {
    const rope = { dims: wanRopeDims(64), offset: [1, 2, 3] as Grid, theta: 10000 };
    await check({ dims: { B: 2, Lq: 36, Lk: 36, H: 2, D: 64 }, group: "spatial", grid: [3, 3, 4], rope });
    await check({ dims: { B: 2, Lq: 36, Lk: 36, H: 2, D: 64 }, group: "temporal", grid: [3, 3, 4], rope });
  });

  it("key padding: lengths inside, at and beyond Lk, and zero (a fully masked row gives zeros)", async () => {
    await check({ dims: { B: 4, Lq: 9, Lk: 21, H: 2, D: 64 }, keyLengths: [5, 21, 40, 0] });
    await check({
      dims: { B: 3, Lq: 30, Lk: 30, H: 1, D: 16 },
      group: "spatial",
      grid: [3, 2, 5],
      keyLengths: [17, 10, -3],
    });
    await check({
      dims: { B: 3, Lq: 30, Lk: 30, H: 1, D: 16 },
      group: "temporal",
      grid: [3, 2, 5],
      keyLengths: [17, 10, 1],
    });
    await check({
      dims: { B: 2, Lq: 30, Lk: 30, H: 1, D: 16 },
      group: "temporal",
      grid: [5, 3, 2],
      keyLengths: [13, 29],
      rope: { dims: [4, 6, 6], offset: [0, 0, 0], theta: 10000 },
    });
  });

  it("zero key lengths give exact zeros", async () => {
    const out = await scope(async () => {
      const x = Tensor.from(rng.normals(2 * 5 * 1 * 8), [2, 5, 1, 8]);
      return attention(x, x, x, { keyLengths: Tensor.from([0, 0], [2], { dtype: "i32" }) }).toFloat32Array();
    });
    expect(Array.from(out).every((x) => x === 0)).toBe(true);
  });

  it("additive bias, shared [H, Lq, Lk] and per batch [B, H, Lq, Lk], with key padding", async () => {
    const B = 2,
      H = 3,
      Lq = 11,
      Lk = 19;
    await check({ dims: { B, Lq, Lk, H, D: 64 }, bias: rng.normals(H * Lq * Lk, 2) });
    await check({
      dims: { B, Lq, Lk, H, D: 64 },
      bias: rng.normals(B * H * Lq * Lk, 2),
      biasBatched: true,
      keyLengths: [7, 19],
    });
    await check({
      dims: { B, Lq: 24, Lk: 24, H: 1, D: 16 },
      group: "temporal",
      grid: [4, 2, 3],
      bias: rng.normals(B * 24 * 24),
      biasBatched: true,
    });
  });

  it("a bias of -inf masks keys; a row masked entirely gives zeros", async () => {
    const B = 1,
      H = 2,
      Lq = 4,
      Lk = 6;
    const bias = new Float32Array(H * Lq * Lk);
    for (let i = 0; i < bias.length; i++) bias[i] = i % 3 === 0 ? Number.NEGATIVE_INFINITY : rng.normal();
    for (let j = 0; j < Lk; j++) bias[(1 * Lq + 2) * Lk + j] = Number.NEGATIVE_INFINITY; // head 1, query 2
    await check({ dims: { B, Lq, Lk, H, D: 8 }, bias });
  });

  it("returns an empty output for zero queries", async () => {
    const shape = await scope(async () => {
      const q = Tensor.from([], [1, 0, 2, 8]);
      const k = Tensor.from(rng.normals(3 * 2 * 8), [1, 3, 2, 8]);
      return attention(q, k, k).shape;
    });
    expect(shape).toEqual([1, 0, 2, 8]);
  });
});

describe("wanRopeDims", () => {
  it("splits as Wan2.1 does: [d - 4(d//6), 2(d//6), 2(d//6)]", () => {
    expect(wanRopeDims(64)).toEqual([24, 20, 20]);
    expect(wanRopeDims(128)).toEqual([44, 42, 42]);
    expect(wanRopeDims(12)).toEqual([4, 4, 4]);
    expect(() => wanRopeDims(63)).toThrow(OpError);
    expect(() => wanRopeDims(0)).toThrow(/'headDim'/);
  });
});

// Asserts fn throws an OpError for argument `arg`, naming it in the message.
function expectOpError(fn: () => unknown, arg: string, pattern?: RegExp): void {
  expectOpErrorNaming(fn, arg, { op: "attention", ...(pattern ? { message: pattern } : {}) });
}

describe("attention argument errors", () => {
  const t = (shape: number[], dtype: "f32" | "bf16" | "f16" | "i32" = "f32") =>
    Tensor.from(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape, { dtype });
  const q = () => t([2, 6, 2, 8]);

  it("checks q, k and v", () => {
    const before = liveTensorCount();
    expectOpError(() => attention(t([2, 6, 2, 8], "bf16"), q(), q()), "q", /CPU backend computes in f32/);
    expectOpError(
      () => attention(t([2, 6, 2, 8], "f16"), t([2, 6, 2, 8], "f16"), t([2, 6, 2, 8], "f16")),
      "q",
      /cast/,
    );
    expectOpError(() => attention(t([2, 6, 2, 8], "i32"), q(), q()), "q");
    expectOpError(() => attention(t([12, 2, 8]), q(), q()), "q", /4 dims/);
    expectOpError(() => attention(q(), t([2, 6, 2, 8], "bf16"), q()), "k");
    expectOpError(() => attention(q(), t([2, 6, 3, 8]), q()), "k", /\[B, Lk, H, D\]/);
    expectOpError(() => attention(q(), t([1, 6, 2, 8]), q()), "k");
    expectOpError(() => attention(q(), t([2, 6, 2, 4]), q()), "k");
    expectOpError(() => attention(q(), q(), t([2, 5, 2, 8])), "v");
    expectOpError(() => attention(q(), q(), t([2, 6, 2, 8], "f16")), "v");
    expectOpError(() => attention(t([2, 2, 6, 8]).permuteView([0, 2, 1, 3]), q(), q()), "q", /contiguous/);
    expect(liveTensorCount()).toBe(before);
  });

  it("checks scale and group", () => {
    expectOpError(() => attention(q(), q(), q(), { scale: Number.NaN }), "scale");
    expectOpError(() => attention(q(), q(), q(), { scale: Number.POSITIVE_INFINITY }), "scale");
    expectOpError(() => attention(q(), q(), q(), { scale: "big" as never }), "scale");
    expectOpError(
      () => attention(q(), q(), q(), { group: "diagonal" as never }),
      "group",
      /full, spatial, temporal/,
    );
  });

  it("checks grid against the grouping and q's tokens", () => {
    expectOpError(() => attention(q(), q(), q(), { group: "spatial" }), "grid", /required/);
    expectOpError(() => attention(q(), q(), q(), { group: "temporal" }), "grid", /required/);
    expectOpError(
      () => attention(q(), q(), q(), { group: "spatial", grid: [2, 3] as never }),
      "grid",
      /3 integers/,
    );
    expectOpError(() => attention(q(), q(), q(), { group: "spatial", grid: [2, 3, 0] }), "grid", /positive/);
    expectOpError(() => attention(q(), q(), q(), { group: "spatial", grid: [1.5, 2, 2] }), "grid");
    expectOpError(() => attention(q(), q(), q(), { group: "spatial", grid: [2, 2, 2] }), "grid", /8 tokens/);
    expectOpError(
      () => attention(q(), t([2, 4, 2, 8]), t([2, 4, 2, 8]), { group: "spatial", grid: [2, 3, 1] }),
      "k",
    );
    expectOpError(
      () => attention(q(), t([2, 4, 2, 8]), t([2, 4, 2, 8]), { group: "temporal", grid: [2, 3, 1] }),
      "k",
    );
  });

  it("checks the RoPE settings", () => {
    const grid: Grid = [1, 2, 3];
    expectOpError(() => attention(q(), q(), q(), { rope: true }), "grid", /rope/);
    expectOpError(
      () => attention(q(), t([2, 4, 2, 8]), t([2, 4, 2, 8]), { grid, rope: true }),
      "k",
      /self-attention/,
    );
    expectOpError(
      () => attention(t([2, 6, 2, 7]), t([2, 6, 2, 7]), t([2, 6, 2, 7]), { grid, rope: true }),
      "q",
      /even/,
    );
    expectOpError(
      () => attention(q(), q(), q(), { grid, rope: { dims: [4, 4] as never } }),
      "ropeDims",
      /3 integers/,
    );
    expectOpError(() => attention(q(), q(), q(), { grid, rope: { dims: [3, 3, 2] } }), "ropeDims", /even/);
    expectOpError(() => attention(q(), q(), q(), { grid, rope: { dims: [-2, 6, 4] } }), "ropeDims");
    expectOpError(
      () => attention(q(), q(), q(), { grid, rope: { dims: [2, 2, 2] } }),
      "ropeDims",
      /head dim is 8/,
    );
    expectOpError(() => attention(q(), q(), q(), { grid, rope: { offset: [1, 2] as never } }), "ropeOffset");
    expectOpError(() => attention(q(), q(), q(), { grid, rope: { offset: [0.5, 0, 0] } }), "ropeOffset");
    expectOpError(() => attention(q(), q(), q(), { grid, rope: { theta: 0 } }), "ropeTheta");
    expectOpError(() => attention(q(), q(), q(), { grid, rope: { theta: Number.NaN } }), "ropeTheta");
  });

  it("rejects RoPE settings without rope, and unknown attributes", () => {
    expectOpError(() => runAttention({ ropeDims: [4, 2, 2] }), "ropeDims", /only applies when rope is true/);
    expectOpError(() => runAttention({ ropeTheta: 100 }), "ropeTheta");
    expectOpError(() => runAttention({ ropeOffset: [0, 0, 0], rope: false }), "ropeOffset");
    expectOpError(() => runAttention({ sclae: 0.5 }), "sclae", /not an attribute/);
    expectOpError(() => runAttention({ rope: "yes" }), "rope", /boolean/);
  });

  it("checks keyLengths by dtype and shape", () => {
    expectOpError(() => attention(q(), q(), q(), { keyLengths: t([2]) }), "keyLengths", /i32/);
    expectOpError(() => attention(q(), q(), q(), { keyLengths: t([3], "i32") }), "keyLengths", /\[2\]/);
    expectOpError(() => attention(q(), q(), q(), { keyLengths: t([2, 1], "i32") }), "keyLengths");
    expectOpError(() => runAttention({ keyLengths: [3, 4] }), "keyLengths", /tensor/);
  });

  it("checks bias by dtype and shape", () => {
    expectOpError(() => attention(q(), q(), q(), { bias: t([2, 6, 6], "bf16") }), "bias", /f32/);
    expectOpError(() => attention(q(), q(), q(), { bias: t([2, 6, 5]) }), "bias", /\[H, Lq, Lk\]/);
    expectOpError(() => attention(q(), q(), q(), { bias: t([3, 2, 6, 6]) }), "bias", /\[B, H, Lq, Lk\]/);
    expectOpError(() => attention(q(), q(), q(), { bias: t([6, 6]) }), "bias");
  });

  it("rejects a disposed input, naming it", () => {
    const k = q();
    k.dispose();
    expectOpError(() => attention(q(), k, q()), "k", /disposed/);
  });
});

// The op with raw attributes, for checks the typed wrapper cannot express.
function runAttention(attrs: Record<string, unknown>): Tensor {
  const x = Tensor.from(new Float32Array(2 * 6 * 2 * 8), [2, 6, 2, 8]);
  return runOp(
    "attention",
    [
      ["q", x],
      ["k", x],
      ["v", x],
    ],
    attrs as never,
  );
}

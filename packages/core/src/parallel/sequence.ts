// Sequence parallelism for the Wan DiT: the video tokens split over ranks, with
// Ulysses all-to-all attention or ring attention at the one point where a token
// needs the others. sequenceSplit() gives WanTransformer.forwardSplit the hooks (see
// TokenSplit in models/wan/transformer.ts); the block loop is the model's own.
//
// Partition: every rank embeds the whole latents (a cheap strided conv) and keeps a
// contiguous run of L/N tokens of the f-h-w (frame-major) sequence. When N does not
// divide L, whole zero frames are appended until it does; all padding then sits at
// the END of the global sequence, so it is masked out of attention as keys
// (keyLengths / a −1e30 logit bias) and its rows are dropped at the gather.
//
// Per block, everything but self-attention is per token (adaLN, projections, q/k
// RMS norm over the full inner dim, cross-attention to the replicated text, FFN),
// so it runs on the rank's tokens alone. Self-attention:
//   ulysses: all-to-all [B, L/N, H, D] → [B, L, H/N, D] (tokens → heads), the native
//            attention op over the whole sequence with the global grid (so RoPE
//            positions are the global ones), and the inverse all-to-all. Needs H % N = 0.
//   ring:    q stays local; K/V blocks travel around the ring (N − 1 shifts) and are
//            merged with an online softmax (running max, sum, unnormalised output)
//            from matmul/exp/max ops, since the native attention op does not return
//            its log-sum-exp. RoPE is applied in TS at the global positions. Any H.
// The head's output is all-gathered along the tokens before unpatchify, so every
// rank ends with the whole velocity.
import {
  add,
  attention,
  cast,
  concat,
  div,
  exp,
  matmul,
  maximum,
  mul,
  ones,
  permute,
  scope,
  slice,
  sub,
  type Tensor,
  Tensor as TensorClass,
  wanRopeDims,
  zeros,
} from "@tessera/native";
import type { WanTransformerConfig } from "../models/wan/config.js";
import type { TokenGrid, TokenShard, TokenSplit } from "../models/wan/transformer.js";
import type { Communicator } from "./comm.js";

export type SequenceParallelAttention = "ulysses" | "ring";

/** Rank `rank`'s run of tokens of a token grid split over `worldSize` ranks (see the file header). */
export interface TokenRun {
  /** First global token of this rank. */
  start: number;
  /** Tokens every rank holds (real ones and padding). */
  perRank: number;
  /** Real tokens of the whole video (the rest of perRank·N is padding at the end). */
  real: number;
  /** Patch frames of the padded sequence (perRank·N / (H·W)). */
  paddedFrames: number;
}

/** The token partition of `grid` over `worldSize` ranks. */
export function tokenRun(grid: TokenGrid, worldSize: number, rank: number): TokenRun {
  const [fg, hg, wg] = grid;
  const hw = hg * wg;
  let fgp = fg; // frames, padded until the ranks divide the tokens
  while ((fgp * hw) % worldSize !== 0) fgp++;
  const perRank = (fgp * hw) / worldSize;
  return { start: rank * perRank, perRank, real: fg * hw, paddedFrames: fgp };
}

/**
 * The transformer's tokens split over `comm`'s ranks with `attention` at the split
 * (WanTransformer.forwardSplit takes it). Ulysses needs the heads divisible by the
 * world size; ring attention takes any head count.
 */
export function sequenceSplit(
  comm: Communicator,
  config: WanTransformerConfig,
  attention: SequenceParallelAttention = "ulysses",
): TokenSplit {
  const n = comm.worldSize;
  const heads = config.num_attention_heads;
  if (attention !== "ulysses" && attention !== "ring")
    throw new Error(`sequenceSplit: unknown attention '${String(attention)}' (ulysses or ring)`);
  if (attention === "ulysses" && heads % n !== 0)
    throw new Error(
      `sequenceSplit: ${heads} attention heads are not divisible by the world size ${n}; use ring attention or a world size dividing the heads`,
    );
  return { shard: (x, grid) => shardTokens(comm, attention, x, grid) };
}

function shardTokens(
  comm: Communicator,
  mode: SequenceParallelAttention,
  all: Tensor,
  grid: TokenGrid,
): TokenShard {
  const [b, , dim] = all.shape as [number, number, number];
  const run = tokenRun(grid, comm.worldSize, comm.rank);
  const padded: TokenGrid = [run.paddedFrames, grid[1], grid[2]];
  const s0 = Math.min(run.start, run.real);
  const e0 = Math.min(run.start + run.perRank, run.real);
  const pad = run.perRank - (e0 - s0);
  const padding = () => zeros([b, pad, dim], { dtype: all.dtype, device: all.device });
  const x =
    pad === 0 ? slice(all, 1, s0, e0) : e0 === s0 ? padding() : concat([slice(all, 1, s0, e0), padding()], 1);
  const keyLengths =
    run.real < run.perRank * comm.worldSize
      ? TensorClass.from(new Array(b).fill(run.real), [b], { dtype: "i32", device: all.device })
      : undefined;
  return {
    x,
    attention:
      mode === "ulysses"
        ? (q, k, v) => ulyssesSelfAttention(comm, q, k, v, padded, keyLengths)
        : (q, k, v) =>
            ringSelfAttention(comm, q, k, v, {
              localGrid: padded,
              frameOffset: 0,
              realTokens: run.real,
              tokens: { globalGrid: padded, tokenStart: run.start },
            }),
    gather: (y) => gatherTokens(comm, y, 1, run.real),
  };
}

/** Every rank's run of tokens of `y` along `dim`, joined in rank order, without the padding past `real`. */
export async function gatherTokens(
  comm: Communicator,
  y: Tensor,
  dim: number,
  real: number,
): Promise<Tensor> {
  const all = await comm.allGather(y, dim);
  if ((all.shape[dim] as number) === real) return all;
  const out = slice(all, dim, 0, real);
  all.dispose();
  return out;
}

/**
 * Ulysses self-attention with Wan's 3D RoPE: q, k, v are this rank's tokens
 * [B, L/N, H, D] (rank order = global token order); `grid` is the global token
 * grid. Returns this rank's tokens [B, L/N, H, D].
 */
export async function ulyssesSelfAttention(
  comm: Communicator,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  grid: readonly [number, number, number],
  keyLengths?: Tensor,
): Promise<Tensor> {
  const heads = q.shape[2] as number;
  if (heads % comm.worldSize !== 0)
    throw new Error(
      `ulyssesSelfAttention: ${heads} heads are not divisible by the world size ${comm.worldSize}`,
    );
  return scope(async () => {
    const toHeads = { splitDim: 2, concatDim: 1 };
    const qh = await comm.allToAll(q, toHeads);
    const kh = await comm.allToAll(k, toHeads);
    const vh = await comm.allToAll(v, toHeads);
    const o = attention(qh, kh, vh, keyLengths ? { grid, rope: true, keyLengths } : { grid, rope: true });
    return comm.allToAll(o, { splitDim: 1, concatDim: 2 });
  });
}

export interface RingGeometry {
  /** [Fl, Hh, W]: this rank's token grid (every rank holds the same count). */
  localGrid: readonly [number, number, number];
  /** Global frame index of this rank's first token frame (rank · Fl). */
  frameOffset: number;
  /**
   * Instead of whole frames, a run of tokens: this rank holds global tokens
   * [tokenStart, tokenStart + Lr) of `globalGrid` (localGrid and frameOffset are then ignored).
   */
  tokens?: { globalGrid: readonly [number, number, number]; tokenStart: number };
  /** Keys at or beyond this global token index are padding (masked); default all real. */
  realTokens?: number;
  /** RoPE base; default 10000. */
  theta?: number;
}

/**
 * Ring self-attention with Wan's 3D RoPE: q, k, v are this rank's tokens [B, Lr, H, D]
 * (every rank the same Lr, rank order = token order). K/V travel around the ring; the
 * blocks are merged with an online softmax in f32. Returns this rank's tokens [B, Lr, H, D].
 */
export async function ringSelfAttention(
  comm: Communicator,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  geo: RingGeometry,
): Promise<Tensor> {
  const [, lr, , hd] = q.shape as [number, number, number, number];
  const [fl, hh, ww] = geo.localGrid;
  if (!geo.tokens && fl * hh * ww !== lr)
    throw new Error(`ringSelfAttention: grid ${fl}x${hh}x${ww} does not hold ${lr} tokens`);
  const n = comm.worldSize;
  const r = comm.rank;
  const real = geo.realTokens ?? lr * n;
  const dtype = q.dtype;
  return scope(async () => {
    const f32 = (t: Tensor) => (t.dtype === "f32" ? t : cast(t, "f32"));
    // [B, Lr, H, D] → [B, H, Lr, D], rotated at this rank's global positions.
    const toBH = (t: Tensor) => permute(t, [0, 2, 1, 3]);
    const theta = geo.theta ?? 10000;
    const rope = geo.tokens
      ? ropeTablesAt(lr, tokenPosition(geo.tokens.globalGrid, geo.tokens.tokenStart), hd, theta, q.device)
      : ropeTables(geo.localGrid, geo.frameOffset, hd, theta, q.device);
    const qh = toBH(applyRope(f32(q), rope));
    let kh = toBH(applyRope(f32(k), rope));
    let vh = toBH(f32(v));
    const scale = 1 / Math.sqrt(hd);
    const onesCol = ones([lr, 1], { device: q.device });
    let m: Tensor | undefined;
    let l: Tensor | undefined;
    let acc: Tensor | undefined;
    for (let step = 0; step < n; step++) {
      const src = (((r - step) % n) + n) % n; // whose K/V block this is
      const s0 = matmul(qh, kh, { transB: true, alpha: scale }); // [B, H, Lr, Lr]
      const first = src * lr;
      let s = s0;
      if (first + lr > real) {
        const bias = new Float32Array(lr);
        for (let j = 0; j < lr; j++) bias[j] = first + j >= real ? -1e30 : 0;
        s = add(s0, TensorClass.from(bias, [lr], { device: q.device }));
      }
      const bm = rowMax(s); // [B, H, Lr, 1]
      const mn = m ? maximum(m, bm) : bm;
      const pm = exp(sub(s, mn));
      const ps = matmul(pm, onesCol);
      const pv = matmul(pm, vh);
      if (m && l && acc) {
        const alpha = exp(sub(m, mn));
        l = add(mul(l, alpha), ps);
        acc = add(mul(acc, alpha), pv);
      } else {
        l = ps;
        acc = pv;
      }
      m = mn;
      if (step < n - 1) {
        kh = await comm.ringShift(kh);
        vh = await comm.ringShift(vh);
      }
    }
    const o = permute(div(acc as Tensor, l as Tensor), [0, 2, 1, 3]); // [B, Lr, H, D]
    return o.dtype === dtype ? o : cast(o, dtype);
  });
}

/** Max over the last dim, keeping it as size 1, by halving with the elementwise max. */
function rowMax(x: Tensor): Tensor {
  const d = x.ndim - 1;
  let t = x;
  let len = x.shape[d] as number;
  while (len > 1) {
    const half = Math.floor(len / 2);
    let mx = maximum(slice(t, d, 0, half), slice(t, d, half, 2 * half));
    if (len % 2 === 1) mx = concat([mx, slice(t, d, len - 1, len)], d);
    t = mx;
    len = t.shape[d] as number;
  }
  return t;
}

interface RopeTables {
  cos: Tensor; // [1, L, 1, D/2, 1]
  sin: Tensor;
}

/** cos/sin of Wan's 3D RoPE angles for the tokens of `grid` starting at frame `frameOffset`. */
function ropeTables(
  grid: readonly [number, number, number],
  frameOffset: number,
  hd: number,
  theta: number,
  device: Tensor["device"],
): RopeTables {
  const [fl, hh, ww] = grid;
  return ropeTablesAt(
    fl * hh * ww,
    tokenPosition([fl + frameOffset, hh, ww], frameOffset * hh * ww),
    hd,
    theta,
    device,
  );
}

/** The (frame, row, column) of token `start + i` of a grid in f-h-w order. */
function tokenPosition(
  grid: readonly [number, number, number],
  start: number,
): (i: number) => [number, number, number] {
  const [, hh, ww] = grid;
  return (i) => {
    const t = start + i;
    return [Math.floor(t / (hh * ww)), Math.floor(t / ww) % hh, t % ww];
  };
}

/** cos/sin of Wan's 3D RoPE angles for `len` tokens at positions pos(0..len−1). */
function ropeTablesAt(
  len: number,
  pos: (i: number) => [number, number, number],
  hd: number,
  theta: number,
  device: Tensor["device"],
): RopeTables {
  const dims = wanRopeDims(hd);
  const half = hd / 2;
  const cos = new Float32Array(len * half);
  const sin = new Float32Array(len * half);
  // Per pair: its axis and its frequency theta^(-2i/d_axis).
  const axis: number[] = [];
  const freq: number[] = [];
  for (let a = 0; a < 3; a++)
    for (let i = 0; i < (dims[a] as number) / 2; i++) {
      axis.push(a);
      freq.push(theta ** ((-2 * i) / (dims[a] as number)));
    }
  for (let t = 0; t < len; t++) {
    const p = pos(t);
    for (let q = 0; q < half; q++) {
      const ang = (p[axis[q] as number] as number) * (freq[q] as number);
      cos[t * half + q] = Math.cos(ang);
      sin[t * half + q] = Math.sin(ang);
    }
  }
  return {
    cos: TensorClass.from(cos, [1, len, 1, half, 1], { device }),
    sin: TensorClass.from(sin, [1, len, 1, half, 1], { device }),
  };
}

/** Rotates each pair (x[2i], x[2i+1]) of x [B, L, H, D] by the tables' angles. */
function applyRope(x: Tensor, t: RopeTables): Tensor {
  const [b, len, heads, hd] = x.shape as [number, number, number, number];
  const x5 = x.reshape([b, len, heads, hd / 2, 2]);
  const x0 = slice(x5, 4, 0, 1);
  const x1 = slice(x5, 4, 1, 2);
  const o0 = sub(mul(x0, t.cos), mul(x1, t.sin));
  const o1 = add(mul(x0, t.sin), mul(x1, t.cos));
  return concat([o0, o1], 4).reshape([b, len, heads, hd]);
}

// Sequence-parallel Wan DiT forward (Ulysses, with ring attention as the
// alternative) and guidance-parallel velocity.
//
// Partition: the video tokens are in f-h-w (frame-major) order, so a contiguous
// token range is a range of latent frames. With Fg = F/pt patch frames and N ranks,
// each rank owns c = ceil(Fg/N) patch frames: rank r holds [r·c, min((r+1)·c, Fg)).
// When N does not divide Fg (Wan's 81 frames give Fg = 21), the last rank(s) hold
// fewer real frames and are padded with zero frames up to c; all padding then sits
// at the END of the global sequence, so it is masked out of attention as keys
// (keyLengths / a −1e30 logit bias) and its query rows are dropped at unpatchify.
// Padded ranks still compute c frames: the cost is that of ceil(Fg/N)·N frames.
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
import {
  add,
  attention,
  axpby,
  cast,
  concat,
  div,
  exp,
  matmul,
  maximum,
  mul,
  ones,
  patchEmbed3d,
  permute,
  scope,
  slice,
  sub,
  type Tensor,
  Tensor as TensorClass,
  unpatchify3d,
  wanRopeDims,
  zeros,
} from "@tessera/native";
import type { WanTransformerConfig } from "../models/wan/config.js";
import type { WanForwardInput, WanTransformer } from "../models/wan/transformer.js";
import type { Communicator } from "./comm.js";

export type SequenceParallelAttention = "ulysses" | "ring";

export interface UlyssesOptions {
  /** How self-attention sees the whole sequence; default "ulysses". */
  attention?: SequenceParallelAttention;
}

/** The latent frames [start, end) rank `rank` owns, and the padded count every rank computes. */
export interface FrameShard {
  /** First latent frame of this rank (inclusive). */
  start: number;
  /** One past the last real latent frame of this rank (≤ start + paddedFrames). */
  end: number;
  /** Latent frames every rank computes (ceil(Fg/N)·pt); end − start real ones, the rest zero padding. */
  paddedFrames: number;
}

/** The frame partition of `latentFrames` (a multiple of pt) over `worldSize` ranks; see the file header. */
export function frameShard(latentFrames: number, pt: number, worldSize: number, rank: number): FrameShard {
  if (!Number.isInteger(latentFrames) || latentFrames <= 0 || latentFrames % pt !== 0)
    throw new Error(
      `frameShard: latent frames ${latentFrames} must be a positive multiple of the patch ${pt}`,
    );
  const fg = latentFrames / pt;
  const c = Math.ceil(fg / worldSize);
  const s = Math.min(rank * c, fg);
  const e = Math.min((rank + 1) * c, fg);
  return { start: s * pt, end: e * pt, paddedFrames: c * pt };
}

/** Rank `comm.rank`'s frames of the full latents [B, F, H, W, C] (a new tensor; may be empty in F). */
export function shardLatents(latents: Tensor, comm: Communicator, pt: number): Tensor {
  const sh = frameShard(latents.shape[1] as number, pt, comm.worldSize, comm.rank);
  return slice(latents, 1, sh.start, sh.end);
}

/** The full [B, F, H, W, C] from every rank's frame shard (ranks with no frames send an empty shard). */
export async function gatherFrames(local: Tensor, comm: Communicator): Promise<Tensor> {
  return comm.allGather(local, 1);
}

export interface UlyssesForwardInput extends Omit<WanForwardInput, "latents"> {
  /** This rank's latent frames [B, end − start, H, W, C] (see frameShard / shardLatents). */
  latents: Tensor;
  /** Latent frames F of the whole video. */
  latentFrames: number;
}

/**
 * The Wan DiT forward with the video tokens split over `comm`'s ranks. Reuses the
 * weights of a WanTransformer (replicated on every rank). Returns this rank's
 * velocity frames, [B, end − start, H, W, out_channels].
 */
export class UlyssesWanTransformer {
  readonly config: WanTransformerConfig;
  readonly dim: number;
  readonly mode: SequenceParallelAttention;

  constructor(
    readonly model: WanTransformer,
    readonly comm: Communicator,
    opts: UlyssesOptions = {},
  ) {
    this.config = model.config;
    this.dim = model.dim;
    this.mode = opts.attention ?? "ulysses";
    const h = this.config.num_attention_heads;
    if (this.mode === "ulysses" && h % comm.worldSize !== 0)
      throw new Error(
        `UlyssesWanTransformer: ${h} attention heads are not divisible by the world size ${comm.worldSize}; use { attention: "ring" } or a world size dividing the heads`,
      );
    if (this.mode !== "ulysses" && this.mode !== "ring")
      throw new Error(`UlyssesWanTransformer: unknown attention mode '${String(this.mode)}'`);
  }

  private w(name: string): Tensor {
    return this.model.weights.get(name);
  }

  async forward(input: UlyssesForwardInput): Promise<Tensor> {
    const c = this.config;
    const n = this.comm.worldSize;
    const [pt, ph, pw] = c.patch_size;
    const lat = input.latents;
    if (lat.ndim !== 5 || lat.shape[4] !== c.in_channels)
      throw new Error(
        `UlyssesWanTransformer: latents must be [B, F/N, H, W, ${c.in_channels}], got [${lat.shape.join(", ")}]`,
      );
    const [b, fl, h, w] = lat.shape as [number, number, number, number, number];
    const sh = frameShard(input.latentFrames, pt, n, this.comm.rank);
    if (fl !== sh.end - sh.start)
      throw new Error(
        `UlyssesWanTransformer: rank ${this.comm.rank} of ${n} owns latent frames [${sh.start}, ${sh.end}) of ${input.latentFrames}, got ${fl}`,
      );
    if (h % ph || w % pw)
      throw new Error(
        `UlyssesWanTransformer: latent size ${h}x${w} is not a multiple of the patch ${ph}x${pw}`,
      );
    const fg = input.latentFrames / pt;
    const cg = sh.paddedFrames / pt; // patch frames per rank (padded)
    const hg = h / ph;
    const wg = w / pw;
    const geo: Geometry = {
      b,
      hw: hg * wg,
      localGrid: [cg, hg, wg],
      globalGrid: [cg * n, hg, wg],
      realTokens: fg * hg * wg,
      frameOffset: this.comm.rank * cg,
    };
    return scope(async () => {
      const { temb, tproj, ctx } = this.model.conditioning(input.timesteps, input.context, lat.dtype);

      // Pad this rank's frames with zeros to the common count.
      const padF = sh.paddedFrames - fl;
      const padded =
        padF === 0
          ? lat
          : fl === 0
            ? zeros([b, padF, h, w, c.in_channels], { dtype: lat.dtype, device: lat.device })
            : concat(
                [lat, zeros([b, padF, h, w, c.in_channels], { dtype: lat.dtype, device: lat.device })],
                1,
              );
      const keyLengths =
        geo.realTokens < cg * n * geo.hw
          ? TensorClass.from(new Array(b).fill(geo.realTokens), [b], { dtype: "i32", device: lat.device })
          : undefined;

      let x = patchEmbed3d(padded, this.w("patch_embedding.weight"), this.w("patch_embedding.bias"));
      for (let i = 0; i < c.num_layers; i++) {
        const xi = x;
        x = await scope(() => this.block(i, xi, tproj, ctx, geo, keyLengths));
      }

      const y = this.model.headTokens(x, temb);
      const out = unpatchify3d(y, { grid: geo.localGrid, patch: c.patch_size, channels: c.out_channels });
      return padF === 0 ? out : slice(out, 1, 0, fl);
    });
  }

  /**
   * The forward of the whole video on every rank with the tokens, not frames, split:
   * each rank embeds all of the latents (a cheap strided conv), keeps its contiguous
   * run of L/N tokens, runs the blocks on them, and the ranks' outputs are all-gathered
   * before unpatchify. Nothing is padded unless N does not divide the tokens (then
   * whole zero frames at the end, masked as keys) — where frame shards pad to
   * ceil(F/N) frames per rank (21 frames on 4 or 8 ranks compute 24). Takes the whole
   * latents [B, F, H, W, C] (the same on every rank) and returns the whole velocity
   * [B, F, H, W, out_channels] on every rank.
   */
  async forwardWhole(input: WanForwardInput): Promise<Tensor> {
    const c = this.config;
    const n = this.comm.worldSize;
    const [pt, ph, pw] = c.patch_size;
    const lat = input.latents;
    if (lat.ndim !== 5 || lat.shape[4] !== c.in_channels)
      throw new Error(
        `UlyssesWanTransformer: latents must be [B, F, H, W, ${c.in_channels}], got [${lat.shape.join(", ")}]`,
      );
    const [b, f, h, w] = lat.shape as [number, number, number, number, number];
    if (f % pt || h % ph || w % pw)
      throw new Error(
        `UlyssesWanTransformer: latents ${f}x${h}x${w} are not a multiple of the patch ${pt}x${ph}x${pw}`,
      );
    const fg = f / pt;
    const hg = h / ph;
    const wg = w / pw;
    const hw = hg * wg;
    const real = fg * hw;
    let fgp = fg; // frames, padded until the ranks divide the tokens
    while ((fgp * hw) % n !== 0) fgp++;
    const per = (fgp * hw) / n;
    const start = this.comm.rank * per;
    const geo: Geometry = {
      b,
      hw,
      localGrid: [fgp, hg, wg],
      globalGrid: [fgp, hg, wg],
      realTokens: real,
      frameOffset: 0,
      tokenStart: start,
    };
    return scope(async () => {
      const { temb, tproj, ctx } = this.model.conditioning(input.timesteps, input.context, lat.dtype);
      const all = patchEmbed3d(lat, this.w("patch_embedding.weight"), this.w("patch_embedding.bias"));
      const s0 = Math.min(start, real);
      const e0 = Math.min(start + per, real);
      const pad = per - (e0 - s0);
      const padding = () => zeros([b, pad, this.dim], { dtype: all.dtype, device: all.device });
      let x =
        pad === 0
          ? slice(all, 1, s0, e0)
          : e0 === s0
            ? padding()
            : concat([slice(all, 1, s0, e0), padding()], 1);
      all.dispose();
      const keyLengths =
        real < fgp * hw
          ? TensorClass.from(new Array(b).fill(real), [b], { dtype: "i32", device: lat.device })
          : undefined;
      for (let i = 0; i < c.num_layers; i++) {
        const xi = x;
        x = await scope(() => this.block(i, xi, tproj, ctx, geo, keyLengths));
      }
      const y = this.model.headTokens(x, temb);
      const gathered = await this.comm.allGather(y, 1);
      const tokens = fgp === fg ? gathered : slice(gathered, 1, 0, real);
      return unpatchify3d(tokens, { grid: [fg, hg, wg], patch: c.patch_size, channels: c.out_channels });
    });
  }

  private async block(
    i: number,
    x: Tensor,
    tproj: Tensor,
    ctx: Tensor,
    geo: Geometry,
    keyLengths: Tensor | undefined,
  ): Promise<Tensor> {
    const { q, k, v, mod } = this.model.blockSelfAttentionInputs(i, x, tproj);
    const sa =
      this.mode === "ulysses"
        ? await ulyssesSelfAttention(this.comm, q, k, v, geo.globalGrid, keyLengths)
        : await ringSelfAttention(this.comm, q, k, v, {
            localGrid: geo.localGrid,
            frameOffset: geo.frameOffset,
            realTokens: geo.realTokens,
            ...(geo.tokenStart === undefined
              ? {}
              : { tokens: { globalGrid: geo.globalGrid, tokenStart: geo.tokenStart } }),
          });
    return this.model.blockAfterSelfAttention(i, x, sa, mod, ctx);
  }
}

interface Geometry {
  b: number;
  hw: number;
  localGrid: [number, number, number];
  globalGrid: [number, number, number];
  realTokens: number;
  frameOffset: number;
  /** forwardWhole: this rank's first global token (its tokens need not be whole frames). */
  tokenStart?: number;
}

function _chunk(mod: Tensor, k: number, b: number, dim: number): Tensor {
  return slice(mod, 1, k, k + 1).reshape([b, dim]);
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

/** Anything with Wan's forward signature (a WanTransformer, or a wrapper of one). */
export interface VelocityModel {
  forward(input: WanForwardInput): Tensor | Promise<Tensor>;
}

/**
 * Guidance-parallel velocity over a communicator of exactly 2 ranks: rank 0 runs the
 * conditional branch (its `context` is the conditional text states, batch 1), rank 1
 * the unconditional one; the two outputs are gathered and combined on both ranks as
 * uncond + g·(cond − uncond) in f32 — the same as guidedVelocity's batch of two.
 */
export async function cfgParallelVelocity(
  comm: Communicator,
  model: VelocityModel,
  latents: Tensor,
  timestep: number,
  context: Tensor,
  guidance: number,
): Promise<Tensor> {
  if (comm.worldSize !== 2)
    throw new Error(`cfgParallelVelocity: needs a world of 2 ranks (cond, uncond), got ${comm.worldSize}`);
  if ((latents.shape[0] as number) !== 1 || (context.shape[0] as number) !== 1)
    throw new Error("cfgParallelVelocity: latents and this rank's context must have batch 1");
  return scope(async () => {
    const dtype = context.dtype;
    const x = latents.dtype === dtype ? latents : cast(latents, dtype);
    const ts = TensorClass.from([timestep], [1], { device: latents.device });
    const raw = await model.forward({ latents: x, timesteps: ts, context });
    const out = raw.dtype === "f32" ? raw : cast(raw, "f32");
    const both = await comm.allGather(out, 0); // [cond, uncond]
    return axpby(slice(both, 0, 0, 1), slice(both, 0, 1, 2), guidance, 1 - guidance);
  });
}

// The Wan VAE decode split in space over a Communicator's ranks: rank r decodes a band
// of latent rows (and so of pixel rows), exchanging one halo row with its neighbours
// before every 3×3(×3) conv, so the result equals the one-device decode to rounding.
//
// Everything in the decoder is per pixel (RMS norm over channels, SiLU, 1×1 convs,
// the time convs of kernel (3, 1, 1), nearest upsampling) except:
// - the 3×3(×3) convs, which see one row above and below: each band is extended with
//   its neighbours' edge rows (ring shifts by ±1; zeros at the top and bottom of the
//   frame, which is the conv's own zero padding) and convolved with no row padding.
//   The causal feature cache keeps the extended input, halo rows included;
// - the mid-block attention, over every position of a frame: each rank's queries
//   attend to the keys and values of every band (one all-gather; it runs at the
//   latent resolution, where it is cheap).
// Rows are split as evenly as they go (the first h mod N ranks get one more); every
// band needs at least one latent row.
import {
  add,
  concat,
  conv2d,
  conv3d,
  full,
  linear,
  matmul,
  maximum,
  minimum,
  mul,
  scope,
  silu,
  slice,
  softmax,
  Tensor,
  upsampleNearest,
  zeros,
} from "@tessera/native";
import { CACHE_T } from "../models/wan-vae/cache.js";
import type { VaeLayer } from "../models/wan-vae/config.js";
import { interleaveFrames, WanVaeNet } from "../models/wan-vae/net.js";
import type { WanVAE } from "../models/wan-vae/vae.js";
import type { Communicator } from "./comm.js";

/** Latent rows [start, end) of rank `rank`'s band. */
export interface RowBand {
  start: number;
  end: number;
}

/** The band of `rows` latent rows rank `rank` of `worldSize` decodes: as even as they go, the extra rows first. */
export function rowBand(rows: number, worldSize: number, rank: number): RowBand {
  if (!Number.isInteger(rows) || rows < worldSize)
    throw new Error(
      `spatial-parallel VAE: ${rows} latent rows cannot be split over ${worldSize} ranks (each needs at least one; the latent height is the video's / 8)`,
    );
  const base = Math.floor(rows / worldSize);
  const extra = rows % worldSize;
  const start = rank * base + Math.min(rank, extra);
  return { start, end: start + base + (rank < extra ? 1 : 0) };
}

export interface ParallelDecodeOptions {
  /** Called after each latent frame is decoded: i of n (0-based). */
  onChunk?: (i: number, n: number) => void;
  /** "all" (default): every rank returns the whole video; "band": each rank its own rows [B, T, 8·(end − start), W, 3]. */
  gather?: "all" | "band";
}

type Keep = <U extends { dispose(): void; readonly disposed: boolean }>(t: U) => U;

/** The causal feature cache of one band (entries outlive the chunk's scope; see FeatureCache). */
class BandCache {
  readonly frames = new Map<string, Tensor>();
  readonly started = new Set<string>();
  set(name: string, t: Tensor): void {
    const old = this.frames.get(name);
    if (old && old !== t) old.dispose();
    this.frames.set(name, t);
  }
  dispose(): void {
    for (const t of this.frames.values()) t.dispose();
    this.frames.clear();
    this.started.clear();
  }
}

/** A fresh tensor holding the last n frames of prev ++ x (as FeatureCache.setTail keeps). */
function tail(prev: Tensor | undefined, x: Tensor, n: number): Tensor {
  const t = x.shape[1] as number;
  if (t >= n || !prev) return slice(x, 1, Math.max(0, t - n), t);
  const p = prev.shape[1] as number;
  const need = Math.min(n - t, p);
  return concat([slice(prev, 1, p - need, p), x], 1);
}

/** Scope for an async body: its temporaries are freed at its end; `keep` exempts cache entries. */
function sub<T>(fn: (keep: Keep) => Promise<T>): Promise<T> {
  return scope((keep) => fn(keep as Keep));
}

/** Frees `prev` (an intermediate made here) once `next`, computed from it, is enqueued. */
function replace(prev: Tensor, next: Tensor): Tensor {
  if (prev !== next) prev.dispose();
  return next;
}

/**
 * Decodes normalised latents [B, F, h, w, z_dim] (the same on every rank) with the
 * frame's rows split over `comm`'s ranks. Returns the video [B, 1 + 4(F − 1), 8h, 8w, 3]
 * in [-1, 1] on every rank (or each rank's band, with gather "band").
 */
export async function decodeSpatialParallel(
  vae: WanVAE,
  latent: Tensor,
  comm: Communicator,
  opts: ParallelDecodeOptions = {},
): Promise<Tensor> {
  const z = vae.config.z_dim;
  const s = latent.shape;
  if (latent.ndim !== 5 || s[4] !== z || s.slice(0, 4).some((d) => d < 1))
    throw new Error(
      `decodeSpatialParallel: latent must be [B, F, h, w, ${z}] with every dim positive, got [${s.join(", ")}]`,
    );
  const [, f, h] = s as [number, number, number, number, number];
  const band = rowBand(h, comm.worldSize, comm.rank);
  const dec = new BandDecoder(vae, comm);
  const cache = new BandCache();
  try {
    const local = await scope(async () => {
      const mine = slice(latent, 2, band.start, band.end);
      const parts: Tensor[] = [];
      for (let i = 0; i < f; i++) {
        parts.push(await dec.chunk(cache, slice(mine, 1, i, i + 1)));
        opts.onChunk?.(i, f);
      }
      if (parts.length === 1) return parts[0] as Tensor;
      return concat(parts, 1);
    });
    if (opts.gather === "band") return local;
    try {
      return await comm.allGather(local, 2);
    } finally {
      local.dispose();
    }
  } finally {
    cache.dispose();
  }
}

/** The decoder over one band: WanVaeNet's layers, with halo exchange before each spatial conv. */
class BandDecoder {
  readonly #net: WanVaeNet;

  constructor(
    readonly vae: WanVAE,
    readonly comm: Communicator,
  ) {
    this.#net = new WanVaeNet(vae.layout, vae.weights);
  }

  #w(name: string): Tensor {
    return this.vae.weights.get(name);
  }

  /** One latent frame [B, 1, hb, w, z] → its pixels [B, T, 8·hb, 8w, 3], clamped. */
  async chunk(cache: BandCache, zb: Tensor): Promise<Tensor> {
    return sub(async () => {
      const net = this.#net;
      const c = this.vae.config;
      const vec = (v: number[]) => Tensor.from(v, [v.length], { device: zb.device, dtype: zb.dtype });
      const zd = add(mul(zb, vec(c.latents_std)), vec(c.latents_mean));
      const x = net.pointwise("post_quant_conv", zd);
      let hx = await sub((keep) => this.conv(cache, keep, "decoder.conv_in", x));
      hx = replace(hx, await this.mid(cache, "decoder", hx));
      for (const l of this.vae.layout.decoder.layers) hx = replace(hx, await this.layer(cache, l, hx));
      const hIn = hx;
      hx = replace(
        hx,
        await sub((keep) =>
          this.conv(cache, keep, "decoder.conv_out", silu(net.rms(hIn, "decoder.norm_out"))),
        ),
      );
      const lo = full([1], -1, { device: hx.device, dtype: hx.dtype });
      const hi = full([1], 1, { device: hx.device, dtype: hx.dtype });
      return minimum(maximum(hx, lo), hi);
    });
  }

  /** x [B, F, hb, W, C] with its neighbours' edge rows above and below ([B, F, hb + 2, W, C]). */
  async halo(x: Tensor): Promise<Tensor> {
    const [b, f, hb, w, c] = x.shape as [number, number, number, number, number];
    const n = this.comm.worldSize;
    const r = this.comm.rank;
    const zero = () => zeros([b, f, 1, w, c], { device: x.device, dtype: x.dtype });
    if (n === 1) return concat([zero(), x, zero()], 2);
    // Rank r gets rank r − 1's last row, then rank r + 1's first row; the frame's edges are zeros.
    const last = slice(x, 2, hb - 1, hb);
    const fromAbove = await this.comm.ringShift(last, 1);
    last.dispose();
    const first = slice(x, 2, 0, 1);
    const fromBelow = await this.comm.ringShift(first, -1);
    first.dispose();
    const top = r === 0 ? replace(fromAbove, zero()) : fromAbove;
    const bottom = r === n - 1 ? replace(fromBelow, zero()) : fromBelow;
    const out = concat([top, x, bottom], 2);
    top.dispose();
    bottom.dispose();
    return out;
  }

  /** WanVaeNet.causalConv over the band: kernel (3, k, k), padding 1 in W, the rows from the halo. */
  async conv(cache: BandCache, keep: Keep, name: string, x: Tensor): Promise<Tensor> {
    const xh = await this.halo(x);
    const prev = cache.frames.get(name);
    const y = conv3d(xh, this.#w(`${name}.weight`), {
      bias: this.#w(`${name}.bias`),
      causal: true,
      padding: [0, 1],
      ...(prev ? { prev } : {}),
    });
    cache.set(name, keep(tail(prev, xh, CACHE_T)));
    return y;
  }

  residual(cache: BandCache, name: string, cin: number, cout: number, x: Tensor): Promise<Tensor> {
    const net = this.#net;
    return sub(async (keep) => {
      const h = cin !== cout ? net.pointwise(`${name}.conv_shortcut`, x) : x;
      let a = silu(net.rms(x, `${name}.norm1`));
      a = await this.conv(cache, keep, `${name}.conv1`, a);
      a = silu(net.rms(a, `${name}.norm2`));
      a = await this.conv(cache, keep, `${name}.conv2`, a);
      return add(a, h);
    });
  }

  async mid(cache: BandCache, prefix: string, x: Tensor): Promise<Tensor> {
    const c = x.shape[4] as number;
    let h = await this.residual(cache, `${prefix}.mid_block.resnets.0`, c, c, x);
    h = replace(h, await this.attention(`${prefix}.mid_block.attentions.0`, h));
    return replace(h, await this.residual(cache, `${prefix}.mid_block.resnets.1`, c, c, h));
  }

  /** WanVaeNet.attention with this band's queries against every band's keys and values. */
  attention(name: string, x: Tensor): Promise<Tensor> {
    return sub(async () => {
      const [b, f, hb, w, c] = x.shape as [number, number, number, number, number];
      const n = b * f;
      const normed = this.#net.rms(x, `${name}.norm`).reshape([n, hb * w, c]);
      const qkv = linear(
        normed,
        this.#w(`${name}.to_qkv.weight`).reshape([3 * c, c]),
        this.#w(`${name}.to_qkv.bias`),
      );
      const q = slice(qkv, 2, 0, c);
      const kvLocal = slice(qkv, 2, c, 3 * c).reshape([n, hb, w, 2 * c]);
      const kvAll = await this.comm.allGather(kvLocal, 1); // [n, H, w, 2c], bands in row order
      const len = (kvAll.shape[1] as number) * w;
      const kv = kvAll.reshape([n, len, 2 * c]);
      const k = slice(kv, 2, 0, c);
      const v = slice(kv, 2, c, 2 * c);
      // As WanVaeNet.attention: score matrices of at most 2^27 elements at once.
      const group = Math.max(1, Math.floor((1 << 27) / (hb * w * len)));
      const outs: Tensor[] = [];
      for (let s = 0; s < n; s += group) {
        const e = Math.min(n, s + group);
        const part = (t: Tensor) => (s === 0 && e === n ? t : slice(t, 0, s, e));
        const scores = matmul(part(q), part(k), { transB: true, alpha: 1 / Math.sqrt(c) });
        const p = softmax(scores);
        scores.dispose();
        outs.push(matmul(p, part(v)));
        p.dispose();
      }
      const o = outs.length === 1 ? (outs[0] as Tensor) : concat(outs, 0);
      const y = linear(o, this.#w(`${name}.proj.weight`).reshape([c, c]), this.#w(`${name}.proj.bias`));
      return add(x, y.reshape([b, f, hb, w, c]));
    });
  }

  layer(cache: BandCache, l: VaeLayer, x: Tensor): Promise<Tensor> {
    if (l.kind === "res") return this.residual(cache, l.name, l.cin, l.cout, x);
    if (!l.mode.startsWith("up"))
      throw new Error(`spatial-parallel VAE: the decoder has no ${l.mode} layers (${l.name})`);
    return sub(async (keep) => {
      let y = x;
      if (l.mode === "upsample3d") y = this.timeUpsample(cache, keep, l.name, y);
      return this.spatialUpsample(l.name, y);
    });
  }

  /** As WanVaeNet's upsample3d time step (kernel (3, 1, 1): no halo). */
  timeUpsample(cache: BandCache, keep: Keep, name: string, x: Tensor): Tensor {
    const key = `${name}.time_conv`;
    const t = x.shape[1] as number;
    const up = (frames: Tensor) => {
      const prev = cache.frames.get(key);
      const y = conv3d(frames, this.#w(`${key}.weight`), {
        bias: this.#w(`${key}.bias`),
        causal: true,
        padding: 0,
        ...(prev ? { prev } : {}),
      });
      cache.set(key, keep(tail(prev, frames, CACHE_T)));
      return interleaveFrames(y);
    };
    if (cache.started.has(key)) return up(x);
    cache.started.add(key);
    if (t === 1) return x;
    return concat([slice(x, 1, 0, 1), up(slice(x, 1, 1, t))], 1);
  }

  /** Nearest 2× then a 3×3 conv: the halo rows are upsampled with the band, and one of each pair kept. */
  async spatialUpsample(name: string, x: Tensor): Promise<Tensor> {
    const [b, f, hb, w] = x.shape as [number, number, number, number, number];
    const xh = await this.halo(x);
    const up = upsampleNearest(xh, 2); // [b, f, 2hb + 4, 2w, c]
    const rows = slice(up, 2, 1, 2 * hb + 3);
    const c = rows.shape[4] as number;
    const y = conv2d(rows.reshape([b * f, 2 * hb + 2, 2 * w, c]), this.#w(`${name}.resample.1.weight`), {
      bias: this.#w(`${name}.resample.1.bias`),
      padding: [0, 1],
    });
    return y.reshape([b, f, 2 * hb, 2 * w, y.shape[3] as number]);
  }
}

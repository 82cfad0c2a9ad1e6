// The Wan VAE's encoder and decoder over channels-last video [B, F, H, W, C], for
// both forms of config.ts (Wan2.1's flat layers; Wan2.2's residual blocks, whose
// shortcuts are below: avgDown3d, dupUp3d).
//
// Every function takes a FeatureCache (run one chunk of a clip, continuing from the
// chunks before it) or null (run a whole clip at once, the reference that chunked
// runs must reproduce). The decoder also runs on one band of rows of a frame split
// over ranks (RowSplit): the same code, with its collectives at the split points,
// written once over hooks that may return a Promise (see maybe-async.ts). Facts taken from diffusers' autoencoder_kl_wan.py and
// Wan2.1's wan/modules/vae.py:
// - WanCausalConv3d pads time with 2·pad_t frames in front and none behind; a cached
//   chunk's last CACHE_T input frames stand in for that padding.
// - WanRMS_norm is F.normalize over channels · sqrt(C) · gamma (no bias in Wan2.1).
// - The mid-block attention is single-head over the H·W positions of each frame.
// - upsample3d's time_conv (C → 2C, kernel (3, 1, 1)) makes two frames of each; the
//   clip's first frame skips it (feat_cache "Rep"), and the chunk after sees zeros in
//   front rather than that first frame.
// - downsample3d's time_conv (kernel 3, stride 2, no padding) runs after the spatial
//   conv; the first frame passes through and later chunks see the previous chunk's
//   last frame in front.
import {
  add,
  affine,
  concat,
  conv2d,
  conv3d,
  linear,
  matmul,
  permute,
  rmsNorm,
  scope,
  silu,
  slice,
  softmax,
  type Tensor,
  upsampleNearest,
  zeros,
} from "@tessera/native";
import type { WeightStore } from "../../weights/store.js";
import { andThen, chain, type MaybePromise, syncResult } from "../maybe-async.js";
import { CACHE_T, type FeatureCache } from "./cache.js";
import type { VaeLayer, VaeLayout, VaeShortcut } from "./config.js";

/**
 * F.normalize divides by max(‖x‖₂, 1e-12); x/‖x‖·√C = x/√(mean(x²)). Our rmsNorm gives
 * x/√(mean(x²) + eps), and eps = 1e-24/C makes that x/√((‖x‖² + 1e-24)/C): the same up
 * to f32 rounding for every ‖x‖ ≫ 1e-12, and 0 rather than NaN at x = 0.
 */
export function rmsNormEps(channels: number): number {
  return 1e-24 / channels;
}

/** Largest attention score matrix (elements) built at once; bounds memory for many frames. */
const MAX_SCORES = 1 << 27;

/**
 * Where a spatial-parallel decode cuts the decoder (parallel/vae.ts builds one from a
 * communicator): each rank decodes a band of rows. Everything in the decoder is per
 * pixel except the 3×3(×3) convs, which see one row above and below — a band takes
 * them from its neighbours (the halo) and convolves without row padding — and the
 * mid-block attention, whose keys and values are every band's rows.
 */
export interface RowSplit {
  /** x [B, F, hb, W, C] between its neighbours' edge rows (zeros at the frame's top and bottom): [B, F, hb + 2, W, C]. */
  halo(x: Tensor): Promise<Tensor>;
  /** Every band's rows of x [N, hb, W, C], joined along dim 1 in order. */
  gatherRows(x: Tensor): Promise<Tensor>;
}

type Step = (x: Tensor) => MaybePromise<Tensor>;

export class WanVaeNet {
  /** `rows`: this net decodes one band of rows of a row split (the encoder has no split). */
  constructor(
    readonly layout: VaeLayout,
    readonly weights: WeightStore,
    readonly rows: RowSplit | null = null,
  ) {}

  private w(name: string): Tensor {
    return this.weights.get(name);
  }

  /** The encoder's output for these frames: [B, F', H/8, W/8, 2·z_dim] before quant_conv. */
  encoder(cache: FeatureCache | null, x: Tensor): Tensor {
    if (this.rows) throw new Error("WanVaeNet: the encoder runs on whole frames, not on a band of rows");
    const e = this.layout.encoder;
    const out = chain(
      scope(() => this.conv(cache, "encoder.conv_in", x)),
      [
        ...e.layers.map(
          (l): Step =>
            (h) =>
              this.layer(cache, l, h),
        ),
        (h) => this.mid(cache, "encoder", h),
        (h) => scope(() => this.conv(cache, "encoder.conv_out", silu(this.rms(h, "encoder.norm_out")))),
      ],
    );
    return syncResult(out, "WanVaeNet.encoder");
  }

  /**
   * The decoder's output for these latent frames (after post_quant_conv), before the
   * clamp; asynchronous only under a row split (see maybe-async.ts).
   */
  decoder(cache: FeatureCache | null, z: Tensor): MaybePromise<Tensor> {
    const d = this.layout.decoder;
    return chain(
      scope(() => this.conv(cache, "decoder.conv_in", z)),
      [
        (h) => this.mid(cache, "decoder", h),
        ...d.layers.map(
          (l): Step =>
            (h) =>
              this.layer(cache, l, h),
        ),
        (h) =>
          scope(() =>
            chain(this.rmsSilu(h, "decoder.norm_out"), [(a) => this.conv(cache, "decoder.conv_out", a)]),
          ),
      ],
    );
  }

  /** A 1×1×1 conv (quant_conv, post_quant_conv): pointwise, so it needs no cache. */
  pointwise(name: string, x: Tensor): Tensor {
    return conv3d(x, this.w(`${name}.weight`), { bias: this.w(`${name}.bias`) });
  }

  private layer(cache: FeatureCache | null, l: VaeLayer, x: Tensor): MaybePromise<Tensor> {
    if (l.kind === "res") return this.residual(cache, l.name, l.cin, l.cout, x);
    if (l.kind === "block") return this.block(cache, l, x);
    return this.resample(cache, l, x);
  }

  /**
   * A Wan2.2 residual block: its layers, plus its shortcut of the block's input x
   * (which the caller frees after this returns; the layers' intermediates are freed
   * as they go).
   */
  private block(
    cache: FeatureCache | null,
    l: Extract<VaeLayer, { kind: "block" }>,
    x: Tensor,
  ): MaybePromise<Tensor> {
    const [first, ...rest] = l.layers;
    if (!first) throw new Error(`WanVaeNet: ${l.name} has no layers`);
    const s = l.shortcut;
    return chain(this.layer(cache, first, x), [
      ...rest.map(
        (inner): Step =>
          (h) =>
            this.layer(cache, inner, h),
      ),
      (h) => (s ? scope(() => add(h, shortcut(cache, `${l.name}.avg_shortcut`, s, x))) : h),
    ]);
  }

  private mid(cache: FeatureCache | null, prefix: string, x: Tensor): MaybePromise<Tensor> {
    const c = x.shape[4] as number;
    return chain(this.residual(cache, `${prefix}.mid_block.resnets.0`, c, c, x), [
      (h) => this.attention(`${prefix}.mid_block.attentions.0`, h),
      (h) => this.residual(cache, `${prefix}.mid_block.resnets.1`, c, c, h),
    ]);
  }

  rms(x: Tensor, name: string): Tensor {
    const c = x.shape[x.ndim - 1] as number;
    return rmsNorm(x, { weight: this.w(`${name}.gamma`).reshape([c]), eps: rmsNormEps(c) });
  }

  /**
   * A causal conv with kernel (3, k, k), spatial padding `pad` ([rows, columns] or
   * both): time is padded with two frames in front, which the cache's frames of the
   * previous chunk replace.
   */
  causalConv(cache: FeatureCache | null, name: string, x: Tensor, pad: number | [number, number]): Tensor {
    const prev = cache?.get(name);
    const y = conv3d(x, this.w(`${name}.weight`), {
      bias: this.w(`${name}.bias`),
      causal: true,
      padding: pad,
      prev,
    });
    cache?.setTail(name, prev, x, CACHE_T);
    return y;
  }

  /**
   * causalConv with a 3×3 window and padding 1. Under a row split its rows come from
   * the halo instead of padding (the cache keeps the halo rows with the band).
   */
  private conv(cache: FeatureCache | null, name: string, x: Tensor): MaybePromise<Tensor> {
    const rows = this.rows;
    if (!rows) return this.causalConv(cache, name, x, 1);
    return scope(() => andThen(rows.halo(x), (xh) => this.causalConv(cache, name, xh, [0, 1])));
  }

  /**
   * Each intermediate is freed as soon as the next op that reads it is enqueued rather
   * than at the scope's end: at the decoder's last stage one activation is 4 frames of
   * 480×832×96, and holding all eight of a block at once set the decode's peak memory.
   */
  residual(
    cache: FeatureCache | null,
    name: string,
    cin: number,
    cout: number,
    x: Tensor,
  ): MaybePromise<Tensor> {
    return scope(() => {
      const h = cin !== cout ? this.pointwise(`${name}.conv_shortcut`, x) : x;
      return chain(this.rmsSilu(x, `${name}.norm1`), [
        (a) => this.conv(cache, `${name}.conv1`, a),
        (a) => this.rmsSilu(a, `${name}.norm2`),
        // (dropout: identity at inference)
        (a) => this.conv(cache, `${name}.conv2`, a),
        (a) => {
          const y = add(a, h);
          if (h !== x) h.dispose();
          return y;
        },
      ]);
    });
  }

  /** silu(rms(x)), freeing the norm's output once silu is enqueued. */
  private rmsSilu(x: Tensor, name: string): Tensor {
    const n = this.rms(x, name);
    return replace(n, silu(n));
  }

  /**
   * Single-head self-attention over each frame's H·W positions, with D = C (up to 384,
   * past the attention op's 256). Under a row split the queries are the band's and the
   * keys and values every band's.
   */
  attention(name: string, x: Tensor): MaybePromise<Tensor> {
    return scope(() => {
      const [b, f, h, w, c] = x.shape as [number, number, number, number, number];
      const n = b * f;
      const len = h * w;
      const normed = this.rms(x, `${name}.norm`).reshape([n, len, c]);
      const qkv = linear(
        normed,
        this.w(`${name}.to_qkv.weight`).reshape([3 * c, c]),
        this.w(`${name}.to_qkv.bias`),
      );
      // to_qkv's output channels are [q | k | v], each C wide.
      const q = slice(qkv, 2, 0, c);
      const attend = (k: Tensor, v: Tensor) => {
        const kLen = k.shape[1] as number;
        const group = Math.max(1, Math.floor(MAX_SCORES / (len * kLen)));
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
        const y = linear(o, this.w(`${name}.proj.weight`).reshape([c, c]), this.w(`${name}.proj.bias`));
        return add(x, y.reshape([b, f, h, w, c]));
      };
      if (!this.rows) return attend(slice(qkv, 2, c, 2 * c), slice(qkv, 2, 2 * c, 3 * c));
      const kvBand = slice(qkv, 2, c, 3 * c).reshape([n, h, w, 2 * c]);
      return this.rows.gatherRows(kvBand).then((kvAll) => {
        const kv = kvAll.reshape([n, (kvAll.shape[1] as number) * w, 2 * c]);
        return attend(slice(kv, 2, 0, c), slice(kv, 2, c, 2 * c));
      });
    });
  }

  resample(
    cache: FeatureCache | null,
    l: Extract<VaeLayer, { kind: "resample" }>,
    x: Tensor,
  ): MaybePromise<Tensor> {
    if (this.rows && !l.mode.startsWith("up"))
      throw new Error(`WanVaeNet: ${l.name} (${l.mode}) cannot run on a band of rows`);
    return scope(() => {
      if (l.mode === "upsample3d") x = this.timeUpsample(cache, l.name, x);
      if (l.mode.startsWith("up")) return this.spatialUpsample(l.name, x);
      const y = this.spatialDownsample(l.name, x);
      return l.mode === "downsample3d" ? this.timeDownsample(cache, l.name, y) : y;
    });
  }

  /**
   * nearest(-exact: the same at a factor of 2) 2× in H and W, then a 3×3 conv with
   * padding 1. Under a row split the halo rows are upsampled with the band and the
   * outer one of each pair dropped, so the conv sees exactly the rows it would in the
   * whole frame.
   */
  private spatialUpsample(name: string, x: Tensor): MaybePromise<Tensor> {
    const [b, f, h, w, c] = x.shape as [number, number, number, number, number];
    const weight = this.w(`${name}.resample.1.weight`);
    const bias = this.w(`${name}.resample.1.bias`);
    const rows = this.rows;
    if (!rows) {
      const up = upsampleNearest(x, 2).reshape([b * f, 2 * h, 2 * w, c]);
      const y = replace(up, conv2d(up, weight, { bias, padding: 1 }));
      return y.reshape([b, f, 2 * h, 2 * w, y.shape[3] as number]);
    }
    return rows.halo(x).then((xh) => {
      const up = upsampleNearest(xh, 2); // [b, f, 2h + 4, 2w, c]
      const band = slice(up, 2, 1, 2 * h + 3).reshape([b * f, 2 * h + 2, 2 * w, c]);
      const y = conv2d(band, weight, { bias, padding: [0, 1] });
      return y.reshape([b, f, 2 * h, 2 * w, y.shape[3] as number]);
    });
  }

  /**
   * ZeroPad2d((0, 1, 0, 1)) then a 3×3 stride-2 conv: output (i, j) sees input rows
   * 2i..2i+2 and columns 2j..2j+2, zeros past the bottom/right edge. A symmetric
   * padding would shift that window by one, so the zeros are concatenated.
   */
  private spatialDownsample(name: string, x: Tensor): Tensor {
    const [b, f, h, w, c] = x.shape as [number, number, number, number, number];
    const n = b * f;
    const opts = { device: x.device, dtype: x.dtype };
    const flat = x.reshape([n, h, w, c]);
    const right = concat([flat, zeros([n, h, 1, c], opts)], 2);
    const padded = concat([right, zeros([n, 1, w + 1, c], opts)], 1);
    const y = conv2d(padded, this.w(`${name}.resample.1.weight`), {
      bias: this.w(`${name}.resample.1.bias`),
      stride: 2,
    });
    return y.reshape([b, f, y.shape[1] as number, y.shape[2] as number, y.shape[3] as number]);
  }

  /** upsample3d's time step, before the spatial one: F frames → 2F (the clip's first frame → 1). */
  private timeUpsample(cache: FeatureCache | null, name: string, x: Tensor): Tensor {
    const key = `${name}.time_conv`;
    const t = x.shape[1] as number;
    const up = (frames: Tensor) => interleaveFrames(this.causalConv(cache, key, frames, 0));
    if (cache?.started(key)) return up(x);
    cache?.start(key);
    if (t === 1) return x;
    // The first frame is not doubled, and the conv's stream starts at the second frame.
    return concat([slice(x, 1, 0, 1), up(slice(x, 1, 1, t))], 1);
  }

  /** downsample3d's time step, after the spatial one: 1 + 2m frames → 1 + m; later chunks 2m → m. */
  private timeDownsample(cache: FeatureCache | null, name: string, x: Tensor): Tensor {
    const key = `${name}.time_conv`;
    const weight = this.w(`${key}.weight`);
    const bias = this.w(`${key}.bias`);
    const t = x.shape[1] as number;
    if (!cache) {
      // Whole clip: windows [x0 x1 x2], [x2 x3 x4], … after the first frame, which passes through.
      if (t === 1) return x;
      return concat([slice(x, 1, 0, 1), conv3d(x, weight, { bias, stride: [2, 1, 1] })], 1);
    }
    // Stride-2 windows must tile the stream: 1 + 2m frames in the first chunk, 2m after.
    if ((t + (cache.started(key) ? 1 : 0)) % 2 !== 1)
      throw new Error(`Wan VAE: ${key} got a chunk of ${t} frames, which its stride-2 windows cannot tile`);
    let y: Tensor;
    if (!cache.started(key)) {
      cache.start(key);
      if (t === 1) y = x;
      else {
        // The first frame passes through and also opens the first stride-2 window.
        const first = slice(x, 1, 0, 1);
        const rest = conv3d(slice(x, 1, 1, t), weight, {
          bias,
          stride: [2, 1, 1],
          padding: [1, 0, 0, 0],
          prev: first,
        });
        y = concat([first, rest], 1);
      }
    } else {
      // The previous chunk's last frame opens this chunk's first window.
      y = conv3d(x, weight, { bias, stride: [2, 1, 1], padding: [1, 0, 0, 0], prev: cache.get(key) });
    }
    cache.set(key, () => slice(x, 1, t - 1, t));
    return y;
  }
}

/** A block's shortcut of its input x (the cache only marks the clip's first chunk for dupup). */
function shortcut(cache: FeatureCache | null, key: string, s: VaeShortcut, x: Tensor): Tensor {
  if (s.kind === "avgdown") return avgDown3d(x, s);
  // DupUp3D drops the ft − 1 frames before the clip's first: the whole clip (no
  // cache) starts there, a chunked run only in its first chunk.
  const first = !cache?.started(key);
  cache?.start(key);
  return dupUp3d(x, s, first);
}

/**
 * AvgDown3D over channels-last x [B, T, H, W, cin] → [B, T', H/fs, W/fs, cout]: time is
 * first padded in front with zero frames to a multiple of ft; then output channel o at
 * block (t, h, w) is the mean of values o·g … o·g + g − 1 (g = cin·ft·fs²/cout) of the
 * block's values ordered (channel, dt, dh, dw) — diffusers' view/permute order.
 */
export function avgDown3d(x: Tensor, s: VaeShortcut): Tensor {
  const { cout, ft, fs } = s;
  const [b, t, h, w, c] = x.shape as [number, number, number, number, number];
  if (ft === 1 && fs === 1 && c === cout) return x;
  return scope(() => {
    const pad = (ft - (t % ft)) % ft;
    const xp = pad ? concat([zeros([b, pad, h, w, c], { device: x.device, dtype: x.dtype }), x], 1) : x;
    const [tt, hh, ww] = [(t + pad) / ft, h / fs, w / fs];
    const blocks = permute(xp.reshape([b, tt, ft, hh, fs, ww, fs, c]), [0, 1, 3, 5, 7, 2, 4, 6]);
    const g = (c * ft * fs * fs) / cout;
    const groups = blocks.reshape([b * tt * hh * ww * cout, g]);
    let sum = groups.narrow(1, 0, 1);
    for (let i = 1; i < g; i++) sum = add(sum, groups.narrow(1, i, 1));
    const mean = g === 1 ? sum.contiguous() : affine(sum, 1 / g, 0);
    return mean.reshape([b, tt, hh, ww, cout]);
  });
}

/**
 * DupUp3D over channels-last x [B, T, H, W, cin] → [B, T·ft (− ft + 1 if `first`),
 * H·fs, W·fs, cout]: each input channel repeated r = cout·ft·fs²/cin times, the copies
 * laid out over the output block's (channel, dt, dh, dw) order.
 */
export function dupUp3d(x: Tensor, s: VaeShortcut, first: boolean): Tensor {
  const { cout, ft, fs } = s;
  const [b, t, h, w, c] = x.shape as [number, number, number, number, number];
  return scope(() => {
    let y: Tensor;
    if (c === cout) {
      // r = ft·fs²: every value of a block is the same input channel, nearest upsampling.
      y = upsampleNearest(x, [ft, fs, fs]);
    } else {
      const r = (cout * ft * fs * fs) / c;
      const n = b * t * h * w;
      // Repeat-interleave the channels as nearest upsampling of a [n, c, 1, 1] image along its rows.
      const rep = r === 1 ? x : upsampleNearest(x.reshape([n, c, 1, 1]), [r, 1]);
      y = permute(rep.reshape([b, t, h, w, cout, ft, fs, fs]), [0, 1, 5, 2, 6, 3, 7, 4]).reshape([
        b,
        t * ft,
        h * fs,
        w * fs,
        cout,
      ]);
    }
    return first && ft > 1 ? slice(y, 1, ft - 1, t * ft) : y;
  });
}

/** [B, F, H, W, 2C] → [B, 2F, H, W, C]: frame 2f is channels [0, C) of f, frame 2f + 1 channels [C, 2C). */
export function interleaveFrames(x: Tensor): Tensor {
  const [b, f, h, w, c2] = x.shape as [number, number, number, number, number];
  const c = c2 / 2;
  return permute(x.reshape([b, f, h, w, 2, c]), [0, 1, 4, 2, 3, 5]).reshape([b, 2 * f, h, w, c]);
}

/** Frees `prev` (an intermediate this module made) once `next`, computed from it, is enqueued. */
function replace(prev: Tensor, next: Tensor): Tensor {
  if (prev !== next) prev.dispose();
  return next;
}

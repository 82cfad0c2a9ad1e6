// The Wan causal video VAE (diffusers AutoencoderKLWan): pixels [B, T, H, W, 3] in
// [-1, 1] ↔ normalised latents [B, 1 + (T − 1)/4, H/s, W/s, z_dim], s = 8 for Wan2.1
// and 16 for Wan2.2 (whose pixels are folded 2×2 into channels before the encoder
// and unfolded after the decoder: patchify / unpatchify below).
//
// Both directions run chunk by chunk as the reference does (encode: the first frame,
// then 4 at a time; decode: one latent frame at a time) with a feature cache, so the
// memory in use does not grow with the clip's length, only the output does.
// decodeRows runs the same decoder on one band of rows of a frame split over ranks
// (parallel/vae.ts fills its split points with collectives; see RowSplit in net.ts).
import {
  add,
  concat,
  full,
  maximum,
  minimum,
  mul,
  permute,
  scope,
  slice,
  Tensor,
  zeros,
} from "@tessera/native";
import type { WeightStore } from "../../weights/store.js";
import { andThen, type MaybePromise, syncResult } from "../maybe-async.js";
import { FeatureCache } from "./cache.js";
import {
  patchSize,
  spatialFactor,
  temporalFactor,
  type VaeLayout,
  type WanVaeConfig,
  wanVaeLayout,
} from "./config.js";
import { type RowSplit, WanVaeNet } from "./net.js";
import { wanVaeParams } from "./params.js";

export interface WanVaeTileOptions {
  /** Tile edge in latent pixels (× 8 in the output); diffusers' default is 32 (256 px). */
  size: number;
  /** Overlap of neighbouring tiles in latent pixels, blended linearly; diffusers' default is 8 (64 px). */
  overlap: number;
}

export interface WanVaeDecodeOptions {
  /** Decode in overlapping spatial tiles, each with its own cache, to bound activation memory. */
  tile?: WanVaeTileOptions;
  /** Called after each latent frame is decoded: i of n (0-based). */
  onChunk?: (i: number, n: number) => void;
}

export class WanVAE {
  readonly layout: VaeLayout;
  /** Pixels per latent along H and W (8; 16 for Wan2.2). */
  readonly spatialFactor: number;
  /** Pixels folded into channels along H and W around the encoder/decoder (1; 2 for Wan2.2). */
  readonly patchSize: number;
  /** Frames per latent frame after the first (4). */
  readonly temporalFactor: number;
  readonly #net: WanVaeNet;

  constructor(
    readonly config: WanVaeConfig,
    readonly weights: WeightStore,
  ) {
    this.layout = wanVaeLayout(config);
    this.spatialFactor = spatialFactor(config);
    this.temporalFactor = temporalFactor(config);
    this.patchSize = patchSize(config);
    const expected = new Map<string, readonly number[]>();
    for (const [name, spec] of wanVaeParams(config)) expected.set(name, spec.shape);
    weights.checkExactly(expected);
    this.#net = new WanVaeNet(this.layout, weights);
  }

  /** Normalised latent mean of `video` ([B, 1 + 4k, H, W, 3] in [-1, 1], H and W multiples of 8). */
  encode(video: Tensor): Tensor {
    const [, t] = this.checkVideo(video);
    const tf = this.temporalFactor;
    const n = 1 + (t - 1) / tf;
    const cache = new FeatureCache();
    try {
      return scope(() => {
        const parts: Tensor[] = [];
        for (let i = 0; i < n; i++) {
          const [s, e] = i === 0 ? [0, 1] : [1 + tf * (i - 1), 1 + tf * i];
          parts.push(
            scope(() =>
              this.latentOf(this.#net.encoder(cache, patchify(slice(video, 1, s, e), this.patchSize))),
            ),
          );
        }
        return joinFrames(parts);
      });
    } finally {
      cache.dispose();
    }
  }

  /** Video [B, 1 + 4(F − 1), 8h, 8w, 3] in [-1, 1] from normalised latents [B, F, h, w, z_dim]. */
  decode(latent: Tensor, opts: WanVaeDecodeOptions = {}): Tensor {
    const [, , h, w] = this.checkLatent(latent);
    const tiles = opts.tile ? tileGrid(h, w, opts.tile, this.spatialFactor) : [];
    const caches = tiles.length > 1 ? tiles.map(() => new FeatureCache()) : [new FeatureCache()];
    try {
      return scope(() => {
        if (tiles.length <= 1) {
          const cache = caches[0] as FeatureCache;
          const frame = (z: Tensor) =>
            clampUnit(
              syncResult(
                scope(() => this.pixels(this.#net, cache, z)),
                "WanVAE.decode",
              ),
            );
          return syncResult(this.decodeFrames(latent, frame, opts.onChunk), "WanVAE.decode");
        }
        const masks = tiles.map((t) =>
          Tensor.from(t.mask, [1, 1, t.mask.length / t.maskWidth, t.maskWidth, 1], {
            device: latent.device,
            dtype: latent.dtype,
          }),
        );
        // Each tile's output, weighted by its blend mask and zero-padded to the full
        // frame, summed: the masks add up to 1 at every pixel.
        const sf = this.spatialFactor;
        const frame = (z: Tensor): Tensor => {
          let canvas: Tensor | null = null;
          for (let k = 0; k < tiles.length; k++) {
            const t = tiles[k] as Tile;
            const cache = caches[k] as FeatureCache;
            const piece = scope(() => {
              const zt = slice(slice(z, 2, t.y0, t.y1), 3, t.x0, t.x1);
              const px = mul(
                syncResult(this.pixels(this.#net, cache, zt), "WanVAE.decode"),
                masks[k] as Tensor,
              );
              return padSpatial(px, t.y0 * sf, (h - t.y1) * sf, t.x0 * sf, (w - t.x1) * sf);
            });
            if (!canvas) canvas = piece;
            else {
              const next = add(canvas, piece);
              canvas.dispose();
              piece.dispose();
              canvas = next;
            }
          }
          return clampUnit(canvas as Tensor);
        };
        return syncResult(this.decodeFrames(latent, frame, opts.onChunk), "WanVAE.decode");
      });
    } finally {
      for (const c of caches) c.dispose();
    }
  }

  /**
   * decode() that waits for the device after each latent frame. The CPU backend's
   * executor runs ops in the background and each op's output is allocated when it is
   * queued, so decode() queues the whole clip's work at once and its memory peaks at
   * every intermediate of every frame (tens of MB per latent frame at 128×128); waiting
   * per frame bounds it to one frame's. Same output as decode().
   */
  async decodeStreaming(
    latent: Tensor,
    opts: { onChunk?: (i: number, n: number) => void } = {},
  ): Promise<Tensor> {
    this.checkLatent(latent);
    const device = latent.device;
    const cache = new FeatureCache();
    try {
      const frame = async (z: Tensor) => {
        const px = clampUnit(
          syncResult(
            scope(() => this.pixels(this.#net, cache, z)),
            "WanVAE.decodeStreaming",
          ),
        );
        await device.synchronize();
        return px;
      };
      return await scope(() => this.decodeFrames(latent, frame, opts.onChunk));
    } finally {
      cache.dispose();
    }
  }

  /**
   * decode() of one band of rows of latents split over ranks ([B, F, hb, w, z_dim] →
   * [B, 1 + 4(F − 1), 8·hb, 8w, 3]), with the halo rows and the attention's keys and
   * values from the other bands through `rows` (parallel/vae.ts gives one over a
   * communicator; every rank calls this at once with its own band).
   */
  async decodeRows(
    band: Tensor,
    rows: RowSplit,
    opts: { onChunk?: (i: number, n: number) => void } = {},
  ): Promise<Tensor> {
    this.checkLatent(band);
    const net = new WanVaeNet(this.layout, this.weights, rows);
    const cache = new FeatureCache();
    try {
      const frame = (z: Tensor) =>
        andThen(
          scope(() => this.pixels(net, cache, z)),
          clampUnit,
        );
      return await scope(() => this.decodeFrames(band, frame, opts.onChunk));
    } finally {
      cache.dispose();
    }
  }

  // One latent frame at a time (post_quant_conv over the denormalised frame, then
  // `frame`), joined; synchronous while `frame` is.
  private decodeFrames(
    latent: Tensor,
    frame: (z: Tensor) => MaybePromise<Tensor>,
    onChunk: ((i: number, n: number) => void) | undefined,
  ): MaybePromise<Tensor> {
    const f = latent.shape[1] as number;
    const parts: Tensor[] = [];
    const from = (start: number): MaybePromise<Tensor> => {
      for (let i = start; i < f; i++) {
        const px = scope(() =>
          frame(this.#net.pointwise("post_quant_conv", this.denormalise(slice(latent, 1, i, i + 1)))),
        );
        if (px instanceof Promise)
          return px.then((t) => {
            parts.push(t);
            onChunk?.(i, f);
            return from(i + 1);
          });
        parts.push(px);
        onChunk?.(i, f);
      }
      return joinFrames(parts);
    };
    return from(0);
  }

  /**
   * encode() computed over the whole clip at once, without a cache: the reference the
   * chunked path must reproduce (for tests; its memory grows with the clip).
   */
  encodeWhole(video: Tensor): Tensor {
    this.checkVideo(video);
    return scope(() => this.latentOf(this.#net.encoder(null, patchify(video.contiguous(), this.patchSize))));
  }

  /** decode() over all latent frames at once, without a cache or tiles (for tests). */
  decodeWhole(latent: Tensor): Tensor {
    this.checkLatent(latent);
    return scope(() =>
      clampUnit(
        syncResult(
          this.pixels(
            this.#net,
            null,
            this.#net.pointwise("post_quant_conv", this.denormalise(latent.contiguous())),
          ),
          "WanVAE.decodeWhole",
        ),
      ),
    );
  }

  /** The decoder's output for z (after post_quant_conv) as pixels, before the clamp. */
  private pixels(net: WanVaeNet, cache: FeatureCache | null, z: Tensor): MaybePromise<Tensor> {
    const p = this.patchSize;
    return p === 1 ? net.decoder(cache, z) : andThen(net.decoder(cache, z), (y) => unpatchify(y, p));
  }

  /** quant_conv, keep the mean half (the posterior's mode: no sampling), normalise. */
  private latentOf(h: Tensor): Tensor {
    const z = this.config.z_dim;
    const moments = this.#net.pointwise("quant_conv", h);
    h.dispose();
    const mu = slice(moments, 4, 0, z);
    const inv = this.config.latents_std.map((s) => 1 / s);
    const shift = this.config.latents_mean.map((m, i) => -m * (inv[i] as number));
    return add(mul(mu, this.channelVector(inv, mu)), this.channelVector(shift, mu));
  }

  /** z · std + mean: the latent statistics the encoder divided out. */
  private denormalise(z: Tensor): Tensor {
    return add(
      mul(z, this.channelVector(this.config.latents_std, z)),
      this.channelVector(this.config.latents_mean, z),
    );
  }

  private channelVector(values: number[], like: Tensor): Tensor {
    return Tensor.from(values, [values.length], { device: like.device, dtype: like.dtype });
  }

  private checkVideo(video: Tensor): [number, number, number, number, number] {
    const s = video.shape;
    const sf = this.spatialFactor;
    const tf = this.temporalFactor;
    const cin = this.layout.inChannels / this.patchSize ** 2;
    if (video.ndim !== 5 || s[4] !== cin)
      throw new Error(`WanVAE.encode: video must be [B, T, H, W, ${cin}], got [${s.join(", ")}]`);
    const [b, t, h, w] = s as [number, number, number, number];
    if (b < 1 || t < 1 || (t - 1) % tf !== 0)
      throw new Error(
        `WanVAE.encode: frame count T must be 1 + ${tf}k (1, ${1 + tf}, ${1 + 2 * tf}, …), got ${t}`,
      );
    if (h < 1 || w < 1 || h % sf !== 0 || w % sf !== 0)
      throw new Error(`WanVAE.encode: height and width must be positive multiples of ${sf}, got ${h}x${w}`);
    this.checkDevice("encode", "video", video);
    return s as [number, number, number, number, number];
  }

  /** The weights fix the device and dtype; a mismatch would otherwise surface deep inside as a conv error. */
  private checkDevice(method: string, arg: string, t: Tensor): void {
    const w = this.weights.get("post_quant_conv.weight");
    if (t.dtype !== w.dtype || t.device.name !== w.device.name)
      throw new Error(
        `WanVAE.${method}: ${arg} is ${t.dtype} on ${t.device.name} but the weights are ${w.dtype} on ${w.device.name}`,
      );
  }

  private checkLatent(latent: Tensor): [number, number, number, number, number] {
    const s = latent.shape;
    const z = this.config.z_dim;
    if (latent.ndim !== 5 || s[4] !== z || s.slice(0, 4).some((d) => d < 1))
      throw new Error(
        `WanVAE.decode: latent must be [B, F, h, w, ${z}] with every dim positive, got [${s.join(", ")}]`,
      );
    this.checkDevice("decode", "latent", latent);
    return s as [number, number, number, number, number];
  }
}

/**
 * Channels-last video [B, T, H, W, C] → [B, T, H/p, W/p, C·p²], diffusers' patchify:
 * channel c·p² + dw·p + dh holds pixel (p·h + dh, p·w + dw) of channel c.
 */
export function patchify(x: Tensor, p: number): Tensor {
  if (p === 1) return x;
  const [b, t, h, w, c] = x.shape as [number, number, number, number, number];
  return permute(x.reshape([b, t, h / p, p, w / p, p, c]), [0, 1, 2, 4, 6, 5, 3]).reshape([
    b,
    t,
    h / p,
    w / p,
    c * p * p,
  ]);
}

/** patchify's inverse: [B, T, h, w, C·p²] → [B, T, h·p, w·p, C]. */
export function unpatchify(y: Tensor, p: number): Tensor {
  if (p === 1) return y;
  const [b, t, h, w, cp] = y.shape as [number, number, number, number, number];
  const c = cp / (p * p);
  return permute(y.reshape([b, t, h, w, c, p, p]), [0, 1, 2, 6, 3, 5, 4]).reshape([b, t, h * p, w * p, c]);
}

/** Parts along frames, joined; the parts are freed. */
function joinFrames(parts: Tensor[]): Tensor {
  if (parts.length === 1) return parts[0] as Tensor;
  const out = concat(parts, 1);
  for (const p of parts) p.dispose();
  return out;
}

function clampUnit(x: Tensor): Tensor {
  return scope(() => {
    const lo = full([1], -1, { device: x.device, dtype: x.dtype });
    const hi = full([1], 1, { device: x.device, dtype: x.dtype });
    return minimum(maximum(x, lo), hi);
  });
}

/** x [B, F, H, W, C] with zero rows/columns added on each side. */
function padSpatial(x: Tensor, top: number, bottom: number, left: number, right: number): Tensor {
  const [b, f, h, , c] = x.shape as [number, number, number, number, number];
  const opts = { device: x.device, dtype: x.dtype };
  let y = x;
  if (left || right) {
    const parts = [
      ...(left ? [zeros([b, f, h, left, c], opts)] : []),
      y,
      ...(right ? [zeros([b, f, h, right, c], opts)] : []),
    ];
    y = concat(parts, 3);
  }
  if (top || bottom) {
    const w = y.shape[3] as number;
    const parts = [
      ...(top ? [zeros([b, f, top, w, c], opts)] : []),
      y,
      ...(bottom ? [zeros([b, f, bottom, w, c], opts)] : []),
    ];
    y = concat(parts, 2);
  }
  return y;
}

export interface Tile {
  /** Latent rows [y0, y1) and columns [x0, x1). */
  y0: number;
  y1: number;
  x0: number;
  x1: number;
  /** Blend weights over the tile's output pixels, row-major, summing to 1 with its neighbours'. */
  mask: Float32Array;
  maskWidth: number;
}

/** Start/end of tiles along one axis of n latents: size-wide, at least `overlap` shared, the last flush with the end. */
export function tileSpans(n: number, size: number, overlap: number): [number, number][] {
  if (n <= size) return [[0, n]];
  const stride = size - overlap;
  const spans: [number, number][] = [[0, size]];
  let s = 0;
  while (s + size < n) {
    s = Math.min(s + stride, n - size);
    spans.push([s, s + size]);
  }
  return spans;
}

/**
 * Per-pixel weight of each span along one axis (in output pixels): 1 inside, a linear
 * ramp across each overlap with a neighbour, normalised so the weights at every pixel
 * sum to 1.
 */
export function spanWeights(spans: [number, number][], scale: number): Float32Array[] {
  const total = (spans[spans.length - 1] as [number, number])[1] * scale;
  const raw = spans.map(([s, e], k) => {
    const lo = s * scale;
    const hi = e * scale;
    const inLen = k > 0 ? ((spans[k - 1] as [number, number])[1] - s) * scale : 0;
    const outLen = k < spans.length - 1 ? (e - (spans[k + 1] as [number, number])[0]) * scale : 0;
    const wts = new Float32Array(hi - lo);
    for (let p = lo; p < hi; p++) {
      const up = inLen > 0 ? (p - lo + 0.5) / inLen : 1;
      const down = outLen > 0 ? (hi - p - 0.5) / outLen : 1;
      wts[p - lo] = Math.min(1, up, down);
    }
    return wts;
  });
  const sum = new Float64Array(total);
  spans.forEach(([s], k) => {
    const wk = raw[k] as Float32Array;
    for (let i = 0; i < wk.length; i++)
      sum[s * scale + i] = (sum[s * scale + i] as number) + (wk[i] as number);
  });
  return raw.map((wk, k) => {
    const off = (spans[k] as [number, number])[0] * scale;
    return wk.map((v, i) => v / (sum[off + i] as number));
  });
}

/** The tiles covering an h×w latent, with their output-pixel blend masks. */
export function tileGrid(h: number, w: number, opts: WanVaeTileOptions, scale: number): Tile[] {
  const { size, overlap } = opts;
  if (!Number.isInteger(size) || size < 1)
    throw new Error(`WanVAE.decode: tile.size must be a positive integer (latent pixels), got ${size}`);
  if (!Number.isInteger(overlap) || overlap < 0 || overlap >= size)
    throw new Error(`WanVAE.decode: tile.overlap must be an integer in [0, size), got ${overlap}`);
  const ys = tileSpans(h, size, overlap);
  const xs = tileSpans(w, size, overlap);
  const wy = spanWeights(ys, scale);
  const wx = spanWeights(xs, scale);
  const tiles: Tile[] = [];
  ys.forEach(([y0, y1], i) => {
    xs.forEach(([x0, x1], j) => {
      const my = wy[i] as Float32Array;
      const mx = wx[j] as Float32Array;
      const mask = new Float32Array(my.length * mx.length);
      for (let r = 0; r < my.length; r++)
        for (let q = 0; q < mx.length; q++) mask[r * mx.length + q] = (my[r] as number) * (mx[q] as number);
      tiles.push({ y0, y1, x0, x1, mask, maskWidth: mx.length });
    });
  });
  return tiles;
}

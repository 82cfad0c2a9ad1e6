// An animated-GIF encoder with no dependencies: colour quantisation (exact when
// a video has at most `colors` colours, else variance-driven median cut refined
// by k-means), optional ordered or Floyd–Steinberg dithering, changed-rectangle
// frames, and a hand-written LZW coder. GIF is the one format that plays inline
// everywhere (READMEs, issues, chat), so it must work on machines without ffmpeg.

import { VideoIOError } from "./errors.js";
import { checkFrames, type VideoFrames } from "./frames.js";

export type GifDither = "none" | "ordered" | "floyd-steinberg";
export type GifPalette = "global" | "per-frame";

export interface GifOptions {
  /** true (default): loop forever; false: play once; n: play n+1 times (the NETSCAPE2.0 repeat count). */
  loop?: boolean | number;
  /**
   * "global" (default): one palette for the whole video, which keeps colours
   * from shimmering between frames and lets unchanged regions be skipped.
   * "per-frame": a palette per frame, better for videos whose colours change a lot.
   */
  palette?: GifPalette;
  /**
   * "ordered" (default) hides banding without the frame-to-frame "crawl" that
   * error diffusion causes in animations; "floyd-steinberg" looks best on stills;
   * "none" maps each pixel to its nearest colour. Ignored when the palette is exact.
   */
  dither?: GifDither;
  /** Palette size, 2..256 (default 256). */
  colors?: number;
}

/** A palette: `rgb` holds n colours; `exact` means every pixel of the source is in it. */
export interface Palette {
  rgb: Uint8Array;
  n: number;
  exact: boolean;
}

/** Returns the source's own colours when there are at most `max`, so flat art stays lossless; else null. */
function exactPalette(frames: Uint8Array[], max: number): Palette | null {
  const seen = new Map<number, number>();
  for (const f of frames) {
    let last = -1;
    for (let i = 0; i < f.length; i += 3) {
      const key = ((f[i] as number) << 16) | ((f[i + 1] as number) << 8) | (f[i + 2] as number);
      if (key === last) continue; // runs of one colour are the common case in flat art
      last = key;
      if (!seen.has(key)) {
        if (seen.size === max) return null;
        seen.set(key, seen.size);
      }
    }
  }
  const rgb = new Uint8Array(seen.size * 3);
  for (const [key, i] of seen) {
    rgb[i * 3] = key >>> 16;
    rgb[i * 3 + 1] = (key >>> 8) & 0xff;
    rgb[i * 3 + 2] = key & 0xff;
  }
  return { rgb, n: seen.size, exact: true };
}

/**
 * Median cut over a 6-bit-per-channel histogram (each bin carries the mean of
 * its pixels, so nothing is lost to binning when colours are sparse). The box
 * split next is the one with the largest squared error, along its
 * highest-variance channel at the weighted median: this spends palette entries
 * where the picture actually has colour variation.
 */
function medianCutPalette(frames: Uint8Array[], max: number): Palette {
  const BINS = 1 << 18;
  const count = new Uint32Array(BINS);
  const sr = new Float64Array(BINS);
  const sg = new Float64Array(BINS);
  const sb = new Float64Array(BINS);
  let total = 0;
  for (const f of frames) total += f.length / 3;
  // A few million samples pin down a palette as well as every pixel of a long video would.
  const step = Math.max(1, Math.floor(total / 4_000_000)) * 3;
  for (const f of frames) {
    for (let i = 0; i < f.length; i += step) {
      const r = f[i] as number;
      const g = f[i + 1] as number;
      const b = f[i + 2] as number;
      const k = ((r >> 2) << 12) | ((g >> 2) << 6) | (b >> 2);
      count[k] = (count[k] as number) + 1;
      sr[k] = (sr[k] as number) + r;
      sg[k] = (sg[k] as number) + g;
      sb[k] = (sb[k] as number) + b;
    }
  }
  const pts: number[] = [];
  for (let k = 0; k < BINS; k++) if (count[k]) pts.push(k);
  const np = pts.length;
  const pr = new Float64Array(np);
  const pg = new Float64Array(np);
  const pb = new Float64Array(np);
  const pw = new Float64Array(np);
  for (let i = 0; i < np; i++) {
    const k = pts[i] as number;
    const w = count[k] as number;
    pw[i] = w;
    pr[i] = (sr[k] as number) / w;
    pg[i] = (sg[k] as number) / w;
    pb[i] = (sb[k] as number) / w;
  }
  const order = Int32Array.from({ length: np }, (_, i) => i);

  interface Box {
    start: number;
    end: number;
    sse: number;
    axis: number;
    mean: [number, number, number];
  }
  const chans = [pr, pg, pb];
  const stats = (start: number, end: number): Box => {
    let w = 0;
    const s = [0, 0, 0];
    const s2 = [0, 0, 0];
    for (let j = start; j < end; j++) {
      const i = order[j] as number;
      const wi = pw[i] as number;
      w += wi;
      for (let c = 0; c < 3; c++) {
        const v = (chans[c] as Float64Array)[i] as number;
        s[c] = (s[c] as number) + wi * v;
        s2[c] = (s2[c] as number) + wi * v * v;
      }
    }
    const mean: [number, number, number] = [0, 0, 0];
    let sse = 0;
    let axis = 0;
    let best = -1;
    for (let c = 0; c < 3; c++) {
      const m = (s[c] as number) / w;
      mean[c] = m;
      const v = Math.max(0, (s2[c] as number) - w * m * m);
      sse += v;
      if (v > best) {
        best = v;
        axis = c;
      }
    }
    return { start, end, sse: end - start > 1 ? sse : 0, axis, mean };
  };

  const boxes: Box[] = [stats(0, np)];
  while (boxes.length < max) {
    let bi = -1;
    for (let i = 0; i < boxes.length; i++) {
      const b = boxes[i] as Box;
      if (b.sse > 0 && (bi < 0 || b.sse > (boxes[bi] as Box).sse)) bi = i;
    }
    if (bi < 0) break;
    const box = boxes[bi] as Box;
    // Sort the box's points along the axis by packing (value, index) into one
    // float: a native numeric sort of a Float64Array, many times faster than a comparator.
    const ch = chans[box.axis] as Float64Array;
    const seg = new Float64Array(box.end - box.start);
    for (let j = 0; j < seg.length; j++) {
      const i = order[box.start + j] as number;
      seg[j] = Math.round((ch[i] as number) * 256) * 262144 + i;
    }
    seg.sort();
    for (let j = 0; j < seg.length; j++) order[box.start + j] = (seg[j] as number) % 262144;
    let half = 0;
    for (let j = box.start; j < box.end; j++) half += pw[order[j] as number] as number;
    half /= 2;
    let acc = 0;
    let cut = box.start + 1;
    for (let j = box.start; j < box.end - 1; j++) {
      acc += pw[order[j] as number] as number;
      cut = j + 1;
      if (acc >= half) break;
    }
    boxes.splice(bi, 1, stats(box.start, cut), stats(cut, box.end));
  }
  // Median cut's boxes are axis-aligned, so a box mean is rarely the best
  // colour for the pixels that end up nearest to it. A few k-means (Lloyd)
  // passes over the histogram move each entry to the centroid of the pixels
  // it actually wins, cutting the mean error by a fifth or more.
  const k = boxes.length;
  const cen = new Float64Array(k * 3);
  boxes.forEach((b, i) => {
    cen.set(b.mean, i * 3);
  });
  const acc = new Float64Array(k * 4);
  const mapper = new Mapper();
  const pal: Palette = { rgb: new Uint8Array(k * 3), n: k, exact: false };
  for (let iter = 0; iter < 3; iter++) {
    for (let i = 0; i < k * 3; i++) pal.rgb[i] = Math.min(255, Math.max(0, Math.round(cen[i] as number)));
    mapper.setPalette(pal);
    acc.fill(0);
    for (let i = 0; i < np; i++) {
      const r = pr[i] as number;
      const g = pg[i] as number;
      const b = pb[i] as number;
      const best = mapper.map(Math.round(r), Math.round(g), Math.round(b));
      const w = pw[i] as number;
      acc[best * 4] = (acc[best * 4] as number) + w * r;
      acc[best * 4 + 1] = (acc[best * 4 + 1] as number) + w * g;
      acc[best * 4 + 2] = (acc[best * 4 + 2] as number) + w * b;
      acc[best * 4 + 3] = (acc[best * 4 + 3] as number) + w;
    }
    for (let j = 0; j < k; j++) {
      const w = acc[j * 4 + 3] as number;
      if (w > 0) for (let c = 0; c < 3; c++) cen[j * 3 + c] = (acc[j * 4 + c] as number) / w;
    }
  }
  const rgb = new Uint8Array(k * 3);
  for (let i = 0; i < k * 3; i++) rgb[i] = Math.min(255, Math.max(0, Math.round(cen[i] as number)));
  return { rgb, n: k, exact: false };
}

/** A palette of at most `max` colours for `frames`: exact when possible, else median cut. */
export function quantize(frames: Uint8Array[], max = 256): Palette {
  if (!Number.isInteger(max) || max < 2 || max > 256)
    throw new VideoIOError(`gif: 'colors' must be an integer from 2 to 256, got ${max}`);
  return exactPalette(frames, max) ?? medianCutPalette(frames, max);
}

/**
 * Nearest palette entry by squared RGB distance, exactly as a scan of the
 * whole palette would find it, but fast enough for noisy video (where colours
 * rarely repeat): the RGB cube is cut into 8x8x8 cells, and each cell, the
 * first time a pixel lands in it, gets the short list of palette entries that
 * can be nearest to any point inside it (those no farther at their closest
 * than the best entry is at its farthest). A direct-mapped cache in front
 * catches the colours that do repeat.
 */
class Mapper {
  static readonly CACHE_BITS = 18;
  readonly #keys = new Int32Array(1 << Mapper.CACHE_BITS);
  readonly #vals = new Uint8Array(1 << Mapper.CACHE_BITS);
  readonly #cellStart = new Int32Array(32 * 32 * 32);
  readonly #cellLen = new Uint16Array(32 * 32 * 32);
  #pool = new Uint8Array(1 << 16);
  #poolLen = 0;
  readonly #near = new Float64Array(256);
  #pal: Palette = { rgb: new Uint8Array(0), n: 0, exact: false };

  setPalette(p: Palette): void {
    this.#keys.fill(-1);
    this.#cellStart.fill(-1);
    this.#poolLen = 0;
    this.#pal = p;
  }

  #buildCell(cell: number): void {
    const r0 = (cell >> 10) << 3;
    const g0 = ((cell >> 5) & 31) << 3;
    const b0 = (cell & 31) << 3;
    const { rgb, n } = this.#pal;
    const near = this.#near;
    // Squared distance from v to the nearest and farthest point of [lo, lo+7] along one axis.
    const dn = (v: number, lo: number) => (v < lo ? (lo - v) ** 2 : v > lo + 7 ? (v - lo - 7) ** 2 : 0);
    const df = (v: number, lo: number) => Math.max(v - lo, lo + 7 - v) ** 2;
    let best = Number.POSITIVE_INFINITY;
    for (let i = 0; i < n; i++) {
      const r = rgb[i * 3] as number;
      const g = rgb[i * 3 + 1] as number;
      const b = rgb[i * 3 + 2] as number;
      near[i] = dn(r, r0) + dn(g, g0) + dn(b, b0);
      const far = df(r, r0) + df(g, g0) + df(b, b0);
      if (far < best) best = far;
    }
    if (this.#poolLen + n > this.#pool.length) {
      const grown = new Uint8Array(this.#pool.length * 2 + n);
      grown.set(this.#pool.subarray(0, this.#poolLen));
      this.#pool = grown;
    }
    const start = this.#poolLen;
    for (let i = 0; i < n; i++) if ((near[i] as number) <= best) this.#pool[this.#poolLen++] = i;
    this.#cellStart[cell] = start;
    this.#cellLen[cell] = this.#poolLen - start;
  }

  map(r: number, g: number, b: number): number {
    const key = (r << 16) | (g << 8) | b;
    const slot = Math.imul(key, 0x9e3779b1) >>> (32 - Mapper.CACHE_BITS);
    if (this.#keys[slot] === key) return this.#vals[slot] as number;
    const cell = ((r >> 3) << 10) | ((g >> 3) << 5) | (b >> 3);
    if ((this.#cellStart[cell] as number) < 0) this.#buildCell(cell);
    const start = this.#cellStart[cell] as number;
    const end = start + (this.#cellLen[cell] as number);
    const rgb = this.#pal.rgb;
    const pool = this.#pool;
    let best = 0;
    let bestD = Number.POSITIVE_INFINITY;
    for (let k = start; k < end; k++) {
      const i = pool[k] as number;
      const dr = (rgb[i * 3] as number) - r;
      const dg = (rgb[i * 3 + 1] as number) - g;
      const db = (rgb[i * 3 + 2] as number) - b;
      const d = dr * dr + dg * dg + db * db;
      if (d < bestD) {
        bestD = d;
        best = i;
      }
    }
    this.#keys[slot] = key;
    this.#vals[slot] = best;
    return best;
  }
}

// 8x8 Bayer matrix (values 0..63), built by the usual recursive doubling.
const BAYER8 = (() => {
  let m = [0];
  for (let n = 1; n < 8; n *= 2) {
    const next = new Array<number>(4 * n * n);
    for (let y = 0; y < n; y++)
      for (let x = 0; x < n; x++) {
        const v = 4 * (m[y * n + x] as number);
        next[y * 2 * n + x] = v;
        next[y * 2 * n + x + n] = v + 2;
        next[(y + n) * 2 * n + x] = v + 3;
        next[(y + n) * 2 * n + x + n] = v + 1;
      }
    m = next;
  }
  return Uint8Array.from(m);
})();

const clamp255 = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v));

/** Maps one RGB frame to palette indices with the requested dithering. */
function indexFrame(
  frame: Uint8Array,
  width: number,
  height: number,
  pal: Palette,
  mapper: Mapper,
  dither: GifDither,
): Uint8Array {
  const out = new Uint8Array(width * height);
  const mode = pal.exact ? "none" : dither;
  if (mode === "none") {
    for (let p = 0, i = 0; p < out.length; p++, i += 3)
      out[p] = mapper.map(frame[i] as number, frame[i + 1] as number, frame[i + 2] as number);
  } else if (mode === "ordered") {
    // Amplitude of about half the typical gap between palette colours: enough to
    // break up bands, small enough not to add visible noise with 256 colours.
    const spread = Math.min(64, Math.max(4, 255 / Math.cbrt(pal.n) / 2));
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) {
        const p = y * width + x;
        const i = p * 3;
        const d = (((BAYER8[(y & 7) * 8 + (x & 7)] as number) + 0.5) / 64 - 0.5) * spread;
        out[p] = mapper.map(
          clamp255((frame[i] as number) + d),
          clamp255((frame[i + 1] as number) + d),
          clamp255((frame[i + 2] as number) + d),
        );
      }
  } else {
    // Serpentine Floyd–Steinberg: alternating direction avoids the diagonal drift of one-way scans.
    const rowLen = (width + 2) * 3;
    let cur = new Float32Array(rowLen);
    let next = new Float32Array(rowLen);
    const rgb = pal.rgb;
    for (let y = 0; y < height; y++) {
      const ltr = (y & 1) === 0;
      for (let s = 0; s < width; s++) {
        const x = ltr ? s : width - 1 - s;
        const p = y * width + x;
        const e = (x + 1) * 3;
        const r = clamp255((frame[p * 3] as number) + (cur[e] as number));
        const g = clamp255((frame[p * 3 + 1] as number) + (cur[e + 1] as number));
        const b = clamp255((frame[p * 3 + 2] as number) + (cur[e + 2] as number));
        const q = mapper.map(r, g, b);
        out[p] = q;
        const err = [
          r - (rgb[q * 3] as number),
          g - (rgb[q * 3 + 1] as number),
          b - (rgb[q * 3 + 2] as number),
        ];
        const dir = ltr ? 3 : -3;
        for (let c = 0; c < 3; c++) {
          const ec = err[c] as number;
          cur[e + dir + c] = (cur[e + dir + c] as number) + (ec * 7) / 16;
          next[e - dir + c] = (next[e - dir + c] as number) + (ec * 3) / 16;
          next[e + c] = (next[e + c] as number) + (ec * 5) / 16;
          next[e + dir + c] = (next[e + dir + c] as number) + ec / 16;
        }
      }
      [cur, next] = [next, cur];
      next.fill(0);
    }
  }
  return out;
}

/** A growable byte buffer. */
class Bytes {
  buf = new Uint8Array(1 << 16);
  len = 0;
  #reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const b = new Uint8Array(cap);
    b.set(this.buf.subarray(0, this.len));
    this.buf = b;
  }
  byte(v: number): void {
    this.#reserve(1);
    this.buf[this.len++] = v & 0xff;
  }
  u16(v: number): void {
    this.byte(v);
    this.byte(v >> 8);
  }
  bytes(a: ArrayLike<number>): void {
    this.#reserve(a.length);
    this.buf.set(a, this.len);
    this.len += a.length;
  }
  ascii(s: string): void {
    for (let i = 0; i < s.length; i++) this.byte(s.charCodeAt(i));
  }
  result(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}

/**
 * GIF's variable-width LZW, as image data sub-blocks. The dictionary is a flat
 * (prefix code, next index) → code table, reset when it reaches 4096 codes.
 */
function lzwEncode(indices: Uint8Array, minCodeSize: number, out: Bytes): void {
  const clear = 1 << minCodeSize;
  const eoi = clear + 1;
  const table = new Int16Array(4096 * 256).fill(-1);
  const used: number[] = [];
  let next = eoi + 1;
  let size = minCodeSize + 1;
  const packed = new Bytes();
  let acc = 0;
  let nbits = 0;
  const emit = (code: number) => {
    acc |= code << nbits;
    nbits += size;
    while (nbits >= 8) {
      packed.byte(acc & 0xff);
      acc >>>= 8;
      nbits -= 8;
    }
  };
  emit(clear);
  let prefix = indices[0] as number;
  for (let i = 1; i < indices.length; i++) {
    const k = indices[i] as number;
    const key = prefix * 256 + k;
    const code = table[key] as number;
    if (code >= 0) {
      prefix = code;
      continue;
    }
    emit(prefix);
    if (next === 4096) {
      emit(clear);
      for (const u of used) table[u] = -1;
      used.length = 0;
      next = eoi + 1;
      size = minCodeSize + 1;
    } else {
      // The decoder learns each entry one code later than we add it, so the
      // width grows when the entry about to be added no longer fits.
      if (next >= 1 << size) size++;
      table[key] = next++;
      used.push(key);
    }
    prefix = k;
  }
  emit(prefix);
  emit(eoi);
  if (nbits > 0) packed.byte(acc & 0xff);
  const data = packed.result();
  out.byte(minCodeSize);
  for (let i = 0; i < data.length; i += 255) {
    const n = Math.min(255, data.length - i);
    out.byte(n);
    out.bytes(data.subarray(i, i + n));
  }
  out.byte(0);
}

/** log2 of the colour table size GIF needs for n colours, minus one (the header's 3-bit field). */
function tableBits(n: number): number {
  let s = 0;
  while (1 << (s + 1) < n) s++;
  return s;
}

function colorTable(out: Bytes, pal: Palette): void {
  const size = 1 << (tableBits(pal.n) + 1);
  out.bytes(pal.rgb.subarray(0, pal.n * 3));
  for (let i = pal.n; i < size; i++) out.bytes([0, 0, 0]);
}

/** Encodes `video` as an animated GIF's bytes. */
export function encodeGif(video: VideoFrames, opts: GifOptions = {}): Uint8Array {
  checkFrames(video);
  const { width, height, frames, fps } = video;
  if (width > 0xffff || height > 0xffff)
    throw new VideoIOError(`gif: ${width}x${height} exceeds GIF's 65535-pixel limit per side`);
  const dither = opts.dither ?? "ordered";
  if (!["none", "ordered", "floyd-steinberg"].includes(dither))
    throw new VideoIOError(`gif: 'dither' must be 'none', 'ordered' or 'floyd-steinberg', got '${dither}'`);
  const mode = opts.palette ?? "global";
  if (mode !== "global" && mode !== "per-frame")
    throw new VideoIOError(`gif: 'palette' must be 'global' or 'per-frame', got '${mode}'`);
  const loop = opts.loop ?? true;
  const repeat = loop === true ? 0 : loop === false ? -1 : loop;
  if (!Number.isInteger(repeat) || repeat < -1 || repeat > 0xffff)
    throw new VideoIOError(`gif: 'loop' must be true, false or a repeat count 0..65535, got ${loop}`);
  const colors = opts.colors ?? 256;

  const out = new Bytes();
  out.ascii("GIF89a");
  out.u16(width);
  out.u16(height);
  const global = mode === "global" ? quantize(frames, colors) : null;
  // Packed field: global-table flag, colour resolution 8 bits (7), unsorted, table size.
  out.byte(global ? 0x80 | 0x70 | tableBits(global.n) : 0x70);
  out.byte(0); // background colour index
  out.byte(0); // pixel aspect ratio: unspecified (square)
  if (global) colorTable(out, global);
  if (repeat >= 0) {
    out.bytes([0x21, 0xff, 0x0b]);
    out.ascii("NETSCAPE2.0");
    out.bytes([0x03, 0x01]);
    out.u16(repeat);
    out.byte(0);
  }

  const mapper = new Mapper();
  if (global) mapper.setPalette(global);
  let prev: Uint8Array | null = null;
  for (let f = 0; f < frames.length; f++) {
    const pal = global ?? quantize([frames[f] as Uint8Array], colors);
    if (!global) mapper.setPalette(pal);
    const idx = indexFrame(frames[f] as Uint8Array, width, height, pal, mapper, dither);

    // With one palette, equal indices mean equal pixels, so only the rectangle
    // that changed needs storing ("do not dispose" keeps the rest on screen).
    let [x0, y0, x1, y1] = [0, 0, width - 1, height - 1];
    if (global && prev) {
      [x0, y0, x1, y1] = [width, height, -1, -1];
      for (let y = 0; y < height; y++) {
        const row = y * width;
        for (let x = 0; x < width; x++)
          if (idx[row + x] !== prev[row + x]) {
            if (x < x0) x0 = x;
            if (x > x1) x1 = x;
            if (y < y0) y0 = y;
            y1 = y;
          }
      }
      if (x1 < 0) [x0, y0, x1, y1] = [0, 0, 0, 0]; // unchanged: GIF has no empty frame, store one pixel
    }
    prev = idx;
    const w = x1 - x0 + 1;
    const h = y1 - y0 + 1;
    let sub = idx;
    if (w !== width || h !== height) {
      sub = new Uint8Array(w * h);
      for (let y = 0; y < h; y++)
        sub.set(idx.subarray((y0 + y) * width + x0, (y0 + y) * width + x0 + w), y * w);
    }

    // Delays are whole centiseconds: take differences of rounded timestamps so
    // the total duration stays exact, and never go under 2 cs, which browsers
    // would replace with a slow 10 cs.
    const delay = Math.max(2, Math.round(((f + 1) * 100) / fps) - Math.round((f * 100) / fps));
    out.bytes([0x21, 0xf9, 0x04, 1 << 2]);
    out.u16(delay);
    out.bytes([0, 0]);

    out.byte(0x2c);
    out.u16(x0);
    out.u16(y0);
    out.u16(w);
    out.u16(h);
    out.byte(global ? 0 : 0x80 | tableBits(pal.n));
    if (!global) colorTable(out, pal);
    lzwEncode(sub, Math.max(2, tableBits(pal.n) + 1), out);
  }
  out.byte(0x3b);
  return out.result();
}

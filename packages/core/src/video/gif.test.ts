import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, describe, expect, it } from "vitest";
import { VideoIOError } from "./errors.js";
import type { VideoFrames } from "./frames.js";
import { encodeGif, type GifOptions } from "./gif.js";
import { readVideo, writeVideo } from "./io.js";
import { syntheticVideo } from "./test-video.js";

const made: string[] = [];
/** A fresh folder under the OS temp dir, removed after the file's tests. */
async function tmpDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "tessera-video-"));
  made.push(d);
  return d;
}
afterAll(async () => {
  await Promise.all(made.map((d) => rm(d, { recursive: true, force: true })));
});

// --- A minimal GIF decoder, independent of the encoder, so the test checks the file format itself.

interface DecodedGif {
  width: number;
  height: number;
  loop: number | null;
  globalColors: number;
  frames: { rgb: Uint8Array; delay: number; rect: [number, number, number, number]; localColors: number }[];
}

function lzwDecode(data: Uint8Array, minCode: number, npix: number): Uint8Array {
  const out = new Uint8Array(npix);
  let op = 0;
  const clear = 1 << minCode;
  const eoi = clear + 1;
  let size = minCode + 1;
  let next = eoi + 1;
  const prefix = new Int32Array(4096);
  const suffix = new Uint8Array(4096);
  const length = new Int32Array(4096);
  for (let i = 0; i < clear; i++) {
    prefix[i] = -1;
    suffix[i] = i;
    length[i] = 1;
  }
  const first = (c: number) => {
    while ((prefix[c] as number) >= 0) c = prefix[c] as number;
    return suffix[c] as number;
  };
  const emit = (c: number) => {
    const len = length[c] as number;
    if (op + len > npix) throw new Error("LZW data decodes to more pixels than the frame has");
    for (let i = len - 1; i >= 0; i--) {
      out[op + i] = suffix[c] as number;
      c = prefix[c] as number;
    }
    op += len;
  };
  let prev = -1;
  let bit = 0;
  const totalBits = data.length * 8;
  for (;;) {
    if (bit + size > totalBits) throw new Error("LZW data ended without an end-of-information code");
    let code = 0;
    for (let i = 0; i < size; i++, bit++) if (((data[bit >> 3] as number) >> (bit & 7)) & 1) code |= 1 << i;
    if (code === clear) {
      size = minCode + 1;
      next = eoi + 1;
      prev = -1;
      continue;
    }
    if (code === eoi) break;
    if (prev < 0) {
      if (code >= clear) throw new Error(`first code after clear is ${code}`);
      emit(code);
      prev = code;
      continue;
    }
    if (code > next) throw new Error(`LZW code ${code} is beyond the table (${next})`);
    const known = code < next;
    if (known) emit(code);
    else {
      emit(prev);
      out[op++] = first(prev);
    }
    if (next < 4096) {
      prefix[next] = prev;
      suffix[next] = first(known ? code : prev);
      length[next] = (length[prev] as number) + 1;
      next++;
      if (next === 1 << size && size < 12) size++;
    }
    prev = code;
  }
  if (op !== npix) throw new Error(`LZW decoded ${op} pixels, frame has ${npix}`);
  return out;
}

function decodeGif(buf: Uint8Array): DecodedGif {
  let p = 0;
  const u16 = () => {
    const v = (buf[p] as number) | ((buf[p + 1] as number) << 8);
    p += 2;
    return v;
  };
  const ascii = (n: number) => {
    const s = String.fromCharCode(...buf.subarray(p, p + n));
    p += n;
    return s;
  };
  const subBlocks = () => {
    const parts: Uint8Array[] = [];
    for (;;) {
      const n = buf[p++] as number;
      if (n === 0) break;
      parts.push(buf.subarray(p, p + n));
      p += n;
    }
    return parts;
  };
  expect(ascii(6)).toBe("GIF89a");
  const width = u16();
  const height = u16();
  const packed = buf[p++] as number;
  p += 2;
  let gct: Uint8Array | null = null;
  if (packed & 0x80) {
    const n = 2 << (packed & 7);
    gct = buf.subarray(p, p + 3 * n);
    p += 3 * n;
  }
  const canvas = new Uint8Array(width * height * 3);
  const out: DecodedGif = { width, height, loop: null, globalColors: gct ? gct.length / 3 : 0, frames: [] };
  let delay = 0;
  for (;;) {
    const b = buf[p++];
    if (b === 0x3b) break;
    if (b === 0x21) {
      const label = buf[p++];
      if (label === 0xff) {
        const n = buf[p++] as number;
        const id = ascii(n);
        const blocks = subBlocks();
        if (id === "NETSCAPE2.0") {
          const d = blocks[0] as Uint8Array;
          expect(d[0]).toBe(1);
          out.loop = (d[1] as number) | ((d[2] as number) << 8);
        }
      } else if (label === 0xf9) {
        expect(buf[p++]).toBe(4);
        const pk = buf[p++] as number;
        expect((pk >> 2) & 7).toBe(1); // "do not dispose": what the encoder's delta frames rely on
        delay = u16();
        p++;
        expect(buf[p++]).toBe(0);
      } else subBlocks();
    } else if (b === 0x2c) {
      const x = u16();
      const y = u16();
      const w = u16();
      const h = u16();
      const pk = buf[p++] as number;
      expect(pk & 0x40).toBe(0); // not interlaced
      let table = gct;
      let localColors = 0;
      if (pk & 0x80) {
        localColors = 2 << (pk & 7);
        table = buf.subarray(p, p + 3 * localColors);
        p += 3 * localColors;
      }
      if (!table) throw new Error("frame without a colour table");
      expect(x + w).toBeLessThanOrEqual(width);
      expect(y + h).toBeLessThanOrEqual(height);
      const minCode = buf[p++] as number;
      const blocks = subBlocks();
      const data = new Uint8Array(blocks.reduce((a, c) => a + c.length, 0));
      let o = 0;
      for (const c of blocks) {
        data.set(c, o);
        o += c.length;
      }
      const idx = lzwDecode(data, minCode, w * h);
      for (let j = 0; j < h; j++)
        for (let i = 0; i < w; i++) {
          const k = idx[j * w + i] as number;
          const q = ((y + j) * width + x + i) * 3;
          canvas[q] = table[k * 3] as number;
          canvas[q + 1] = table[k * 3 + 1] as number;
          canvas[q + 2] = table[k * 3 + 2] as number;
        }
      out.frames.push({ rgb: canvas.slice(), delay, rect: [x, y, w, h], localColors });
    } else throw new Error(`unexpected block 0x${b?.toString(16)} at ${p - 1}`);
  }
  return out;
}

/** Decodes with sharp (libvips' GIF loader) to RGB frames: a second, independent reader. */
async function sharpFrames(gif: Uint8Array): Promise<{ pages: number; frames: Uint8Array[] }> {
  const { data, info } = await sharp(gif, { animated: true })
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const pages = info.pages ?? 1;
  const ph = info.pageHeight ?? info.height;
  const fb = info.width * ph * 3;
  return {
    pages,
    frames: Array.from({ length: pages }, (_, i) => new Uint8Array(data.subarray(i * fb, (i + 1) * fb))),
  };
}

// --- Synthetic videos.

const video = syntheticVideo;

const gradient = (n = 3) =>
  video(64, 48, n, (x, y, t) => [
    Math.round((x * 255) / 63),
    Math.round((y * 255) / 47),
    (t * 80 + 40) % 256,
  ]);
const blocks = () =>
  video(40, 30, 4, (x, y, t) => {
    const k = (Math.floor(x / 10) + Math.floor(y / 10) + t) % 4;
    return [
      [255, 0, 0],
      [0, 200, 0],
      [10, 20, 250],
      [250, 250, 250],
    ][k] as number[];
  });
const movingSquare = () =>
  video(48, 32, 8, (x, y, t) =>
    x >= 4 * t && x < 4 * t + 8 && y >= 10 && y < 18 ? [255, 220, 0] : [30, 40, 90],
  );

function errors(a: Uint8Array, b: Uint8Array) {
  let max = 0;
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs((a[i] as number) - (b[i] as number));
    sum += d;
    if (d > max) max = d;
  }
  return { max, mean: sum / a.length };
}

/** Error of 8x8 block averages (mean and worst over blocks and channels): what dithering should keep small. */
function blockMeanError(a: Uint8Array, b: Uint8Array, w: number, h: number) {
  let worst = 0;
  let sum = 0;
  let n = 0;
  for (let by = 0; by + 8 <= h; by += 8)
    for (let bx = 0; bx + 8 <= w; bx += 8)
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let y = by; y < by + 8; y++)
          for (let x = bx; x < bx + 8; x++) {
            const i = (y * w + x) * 3 + c;
            s += (a[i] as number) - (b[i] as number);
          }
        const e = Math.abs(s / 64);
        worst = Math.max(worst, e);
        sum += e;
        n++;
      }
  return { worst, mean: sum / n };
}

async function roundTrip(v: VideoFrames, opts: GifOptions = {}) {
  const gif = encodeGif(v, opts);
  const dec = decodeGif(gif);
  const viaSharp = await sharpFrames(gif);
  expect(dec.width).toBe(v.width);
  expect(dec.height).toBe(v.height);
  expect(dec.frames.length).toBe(v.frames.length);
  expect(viaSharp.pages).toBe(v.frames.length);
  // Both decoders must agree exactly: the file means one thing.
  dec.frames.forEach((f, i) => {
    expect(Buffer.compare(f.rgb, viaSharp.frames[i] as Uint8Array)).toBe(0);
  });
  return { gif, dec };
}

describe("GIF encoder", () => {
  it("stores a video with few colours exactly, with a global palette, loop and delays", async () => {
    const v = blocks();
    const { dec } = await roundTrip(v);
    expect(dec.globalColors).toBe(4);
    expect(dec.loop).toBe(0);
    dec.frames.forEach((f, i) => {
      expect(f.localColors).toBe(0);
      expect(errors(f.rgb, v.frames[i] as Uint8Array).max).toBe(0);
    });
    // 16 fps: delays alternate 6/7 cs so that 16 frames last exactly one second.
    const long = { ...v, frames: Array.from({ length: 16 }, (_, i) => v.frames[i % 4] as Uint8Array) };
    const d2 = decodeGif(encodeGif(long));
    expect(d2.frames.reduce((a, f) => a + f.delay, 0)).toBe(100);
    for (const f of d2.frames) expect([6, 7]).toContain(f.delay);
  });

  it("quantises a smooth gradient to 256 colours within quantisation error", async () => {
    // One frame: 3072 colours into 256 leaves cells about 16 levels wide, so a
    // mean error near 16/4 per varying channel (two of three) is the floor.
    const one = gradient(1);
    const { dec } = await roundTrip(one, { dither: "none" });
    expect(dec.globalColors).toBe(256);
    const e1 = errors(dec.frames[0]?.rgb as Uint8Array, one.frames[0] as Uint8Array);
    expect(e1.mean).toBeLessThan(3.5);
    expect(e1.max).toBeLessThanOrEqual(12);
    // Three frames share one palette: three times the colours, coarser cells.
    const v = gradient(3);
    const d3 = (await roundTrip(v, { dither: "none" })).dec;
    d3.frames.forEach((f, i) => {
      const e = errors(f.rgb, v.frames[i] as Uint8Array);
      expect(e.mean).toBeLessThan(6);
      expect(e.max).toBeLessThanOrEqual(32);
    });
  });

  it.each(["ordered", "floyd-steinberg"] as const)(
    "dithers (%s): local average colour beats plain mapping",
    async (dither) => {
      const v = gradient();
      const plain = (await roundTrip(v, { dither: "none" })).dec;
      const { dec } = await roundTrip(v, { dither });
      let plainBias = 0;
      let bias = 0;
      dec.frames.forEach((f, i) => {
        const src = v.frames[i] as Uint8Array;
        expect(errors(f.rgb, src).mean).toBeLessThan(8);
        bias += blockMeanError(f.rgb, src, v.width, v.height).mean;
        plainBias += blockMeanError(plain.frames[i]?.rgb as Uint8Array, src, v.width, v.height).mean;
      });
      // Dithering trades per-pixel error for a truer average over each 8x8 block: that is what hides banding.
      expect(bias).toBeLessThan(0.85 * plainBias);
    },
  );

  it("stores only the changed rectangle of a moving square, and decodes to the full frames", async () => {
    const v = movingSquare();
    const { dec } = await roundTrip(v);
    expect(dec.frames[0]?.rect).toEqual([0, 0, 48, 32]);
    expect(dec.frames[1]?.rect).toEqual([0, 10, 12, 8]); // old square at x 0..7 and new at 4..11
    dec.frames.forEach((f, i) => {
      expect(errors(f.rgb, v.frames[i] as Uint8Array).max).toBe(0);
    });
    // An unchanged frame is stored as one pixel.
    const still = { ...v, frames: [v.frames[0] as Uint8Array, v.frames[0] as Uint8Array] };
    expect(decodeGif(encodeGif(still)).frames[1]?.rect).toEqual([0, 0, 1, 1]);
  });

  it("uses a local palette per frame when asked", async () => {
    const v = video(20, 20, 3, (x, _y, t) => (x < 10 ? [t * 100, 0, 0] : [0, 0, 255 - t * 100]));
    const { dec } = await roundTrip(v, { palette: "per-frame" });
    expect(dec.globalColors).toBe(0);
    dec.frames.forEach((f, i) => {
      expect(f.localColors).toBe(2);
      expect(errors(f.rgb, v.frames[i] as Uint8Array).max).toBe(0);
    });
  });

  it("survives LZW table resets: 256 scattered colours over a large frame decode exactly", async () => {
    let s = 12345;
    const rnd = () => {
      s = (s * 1103515245 + 12345) >>> 0;
      return s >>> 8;
    };
    const pal = Array.from({ length: 256 }, (_, i) => [i, (i * 7) & 255, (i * 13 + 5) & 255]);
    const v = video(300, 200, 2, () => pal[rnd() & 255] as number[]);
    const { dec } = await roundTrip(v);
    expect(dec.globalColors).toBe(256);
    dec.frames.forEach((f, i) => {
      expect(errors(f.rgb, v.frames[i] as Uint8Array).max).toBe(0);
    });
  });

  it("handles a single pixel of a single colour", async () => {
    const v = video(1, 1, 2, () => [12, 34, 56]);
    const { dec } = await roundTrip(v);
    expect(dec.globalColors).toBe(2); // a one-colour table is padded to GIF's minimum of two
    expect([...(dec.frames[1] as { rgb: Uint8Array }).rgb]).toEqual([12, 34, 56]);
  });

  it("honours colors and loop options", async () => {
    const v = gradient(2);
    const { dec } = await roundTrip(v, { colors: 16, dither: "none", loop: 3 });
    expect(dec.globalColors).toBe(16);
    expect(dec.loop).toBe(3);
    const two = decodeGif(encodeGif(v, { colors: 2, loop: false }));
    expect(two.globalColors).toBe(2);
    expect(two.loop).toBeNull();
    expect(() => encodeGif(v, { colors: 1 })).toThrow(VideoIOError);
    expect(() => encodeGif(v, { dither: "bogus" as never })).toThrow(/dither/);
  });

  it("is written by writeVideo and read back by readVideo without ffmpeg", async () => {
    const dir = await tmpDir();
    const v = movingSquare();
    const path = join(dir, "square.gif");
    const r = await writeVideo(path, { ...v, fps: 10 });
    expect(r).toMatchObject({ format: "gif", width: 48, height: 32, frameCount: 8 });
    expect((await readFile(path)).length).toBe(r.bytes);
    const back = await readVideo(path);
    expect(back.width).toBe(48);
    expect(back.height).toBe(32);
    expect(back.frames.length).toBe(8);
    expect(back.fps).toBeCloseTo(10, 5);
    back.frames.forEach((f, i) => {
      expect(errors(f, v.frames[i] as Uint8Array).max).toBe(0);
    });
    const some = await readVideo(path, { maxFrames: 3, width: 24 });
    expect(some.frames.length).toBe(3);
    expect([some.width, some.height]).toEqual([24, 16]);
  });
});

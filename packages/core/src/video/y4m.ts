// YUV4MPEG2 (.y4m): uncompressed YUV frames behind a one-line text header. It is
// the lingua franca of codec tooling (ffmpeg, x264, libvpx, VMAF), needs no
// library to read or write, and so is our lossless-ish interchange format.
//
// We write 4:2:0 ("C420jpeg": chroma sited at the centre of each 2x2 block)
// with BT.601 limited-range ("TV", Y in 16..235) YUV. That is what every y4m
// consumer assumes when a file says nothing else, it is half the size of 4:4:4,
// and it is what an H.264/VP9 encoder would be fed anyway. `chroma: "444"`
// keeps full-resolution chroma when exactness matters more than size.
// The reader also accepts 422, 444, mono and the other 4:2:0 sitings.
import { open } from "node:fs/promises";
import { VideoIOError } from "./errors.js";
import { checkFrames, fpsToRational, type VideoFrames } from "./frames.js";

export type Y4mChroma = "420" | "444";

// BT.601 luma weights.
const KR = 0.299;
const KB = 0.114;
const KG = 1 - KR - KB;
const YS = 219 / 255; // limited-range luma scale
const CS = 224 / 255; // limited-range chroma scale

const clamp8 = (v: number) => (v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v));

/** Planar Y, U, V bytes of one frame (U and V subsampled 2x2 for 4:2:0). */
export function rgbToYuv(rgb: Uint8Array, width: number, height: number, chroma: Y4mChroma): Uint8Array {
  const n = width * height;
  const cw = chroma === "420" ? Math.ceil(width / 2) : width;
  const ch = chroma === "420" ? Math.ceil(height / 2) : height;
  const out = new Uint8Array(n + 2 * cw * ch);
  const cb = new Float32Array(n);
  const cr = new Float32Array(n);
  for (let p = 0, i = 0; p < n; p++, i += 3) {
    const r = rgb[i] as number;
    const g = rgb[i + 1] as number;
    const b = rgb[i + 2] as number;
    const y = KR * r + KG * g + KB * b;
    out[p] = clamp8(16 + YS * y);
    cb[p] = 128 + (CS * (b - y)) / (2 * (1 - KB));
    cr[p] = 128 + (CS * (r - y)) / (2 * (1 - KR));
  }
  const u = n;
  const v = n + cw * ch;
  if (chroma === "444") {
    for (let p = 0; p < n; p++) {
      out[u + p] = clamp8(cb[p] as number);
      out[v + p] = clamp8(cr[p] as number);
    }
    return out;
  }
  // A 2x2 box average is exactly the centre-sited sample C420jpeg declares;
  // the last row/column of an odd size averages only the pixels that exist.
  for (let cy = 0; cy < ch; cy++)
    for (let cx = 0; cx < cw; cx++) {
      let su = 0;
      let sv = 0;
      let k = 0;
      for (let dy = 0; dy < 2; dy++) {
        const y = 2 * cy + dy;
        if (y >= height) continue;
        for (let dx = 0; dx < 2; dx++) {
          const x = 2 * cx + dx;
          if (x >= width) continue;
          su += cb[y * width + x] as number;
          sv += cr[y * width + x] as number;
          k++;
        }
      }
      out[u + cy * cw + cx] = clamp8(su / k);
      out[v + cy * cw + cx] = clamp8(sv / k);
    }
  return out;
}

interface Layout {
  /** chroma plane size */
  cw: number;
  ch: number;
  /** where luma pixel (x, y) sits in chroma coordinates: c = scale*x + offset */
  sx: number;
  ox: number;
  sy: number;
  oy: number;
  mono: boolean;
}

function layout(colorspace: string, width: number, height: number, path: string): Layout {
  const full = { cw: width, ch: height, sx: 1, ox: 0, sy: 1, oy: 0, mono: false };
  switch (colorspace) {
    case "420jpeg":
    case "420":
    case "420paldv":
      return {
        ...full,
        cw: Math.ceil(width / 2),
        ch: Math.ceil(height / 2),
        sx: 0.5,
        ox: -0.25,
        sy: 0.5,
        oy: -0.25,
      };
    case "420mpeg2": // chroma co-sited with the left luma column
      return {
        ...full,
        cw: Math.ceil(width / 2),
        ch: Math.ceil(height / 2),
        sx: 0.5,
        ox: 0,
        sy: 0.5,
        oy: -0.25,
      };
    case "422":
      return { ...full, cw: Math.ceil(width / 2), sx: 0.5, ox: 0 };
    case "444":
      return full;
    case "mono":
      return { ...full, cw: 0, ch: 0, mono: true };
    default:
      throw new VideoIOError(
        `${path}: y4m colourspace 'C${colorspace}' is not supported (8-bit 420jpeg, 420mpeg2, 420paldv, 422, 444 and mono are)`,
        path,
      );
  }
}

/** Converts planar limited-range BT.601 YUV back to RGB, interpolating subsampled chroma bilinearly at its declared siting. */
function yuvToRgb(yuv: Uint8Array, width: number, height: number, lay: Layout): Uint8Array {
  const n = width * height;
  const out = new Uint8Array(n * 3);
  const { cw, ch } = lay;
  const u = n;
  const v = n + cw * ch;
  // Precomputed interpolation taps per column and row.
  const tap = (count: number, scale: number, off: number, limit: number) => {
    const i0 = new Int32Array(count);
    const i1 = new Int32Array(count);
    const t = new Float32Array(count);
    for (let k = 0; k < count; k++) {
      const f = Math.min(Math.max(k * scale + off, 0), limit - 1);
      const a = Math.floor(f);
      i0[k] = a;
      i1[k] = Math.min(a + 1, limit - 1);
      t[k] = f - a;
    }
    return { i0, i1, t };
  };
  const tx = lay.mono ? null : tap(width, lay.sx, lay.ox, cw);
  const ty = lay.mono ? null : tap(height, lay.sy, lay.oy, ch);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * width + x;
      const yn = ((yuv[p] as number) - 16) / YS;
      let pb = 0;
      let pr = 0;
      if (tx && ty) {
        const r0 = (ty.i0[y] as number) * cw;
        const r1 = (ty.i1[y] as number) * cw;
        const c0 = tx.i0[x] as number;
        const c1 = tx.i1[x] as number;
        const fx = tx.t[x] as number;
        const fy = ty.t[y] as number;
        const bil = (base: number) => {
          const a = (yuv[base + r0 + c0] as number) * (1 - fx) + (yuv[base + r0 + c1] as number) * fx;
          const b = (yuv[base + r1 + c0] as number) * (1 - fx) + (yuv[base + r1 + c1] as number) * fx;
          return a * (1 - fy) + b * fy;
        };
        pb = (bil(u) - 128) / CS;
        pr = (bil(v) - 128) / CS;
      }
      const r = yn + 2 * (1 - KR) * pr;
      const b = yn + 2 * (1 - KB) * pb;
      const g = (yn - KR * r - KB * b) / KG;
      out[p * 3] = clamp8(r);
      out[p * 3 + 1] = clamp8(g);
      out[p * 3 + 2] = clamp8(b);
    }
  }
  return out;
}

/** Writes `video` as y4m to `path` (the caller handles atomic replacement). */
export async function writeY4m(path: string, video: VideoFrames, chroma: Y4mChroma = "420"): Promise<void> {
  checkFrames(video);
  if (chroma !== "420" && chroma !== "444")
    throw new VideoIOError(`y4m: 'chroma' must be '420' or '444', got '${chroma}'`, path);
  const { width, height, fps } = video;
  const [num, den] = fpsToRational(fps);
  const cs = chroma === "420" ? "C420jpeg XYSCSS=420JPEG" : "C444 XYSCSS=444";
  const header = `YUV4MPEG2 W${width} H${height} F${num}:${den} Ip A1:1 ${cs} XCOLORRANGE=LIMITED\n`;
  const fh = await open(path, "w");
  try {
    await fh.write(Buffer.from(header, "latin1"));
    const tag = Buffer.from("FRAME\n", "latin1");
    for (const f of video.frames) {
      await fh.write(tag);
      await fh.write(rgbToYuv(f, width, height, chroma));
    }
  } finally {
    await fh.close();
  }
}

export interface Y4mInfo {
  width: number;
  height: number;
  fps: number;
  colorspace: string;
}

/**
 * Reads a y4m file as RGB8: up to `maxFrames` frames, or as many as
 * `maxFrames(fps)` says once the header's frame rate is known.
 */
export async function readY4m(
  path: string,
  maxFrames: number | ((fps: number) => number) = Number.POSITIVE_INFINITY,
): Promise<VideoFrames & Y4mInfo> {
  const fh = await open(path, "r");
  try {
    const size = (await fh.stat()).size;
    // Reads one '\n'-terminated line at `pos`; header lines are short but X-parameters make them unbounded.
    const readLine = async (pos: number): Promise<string | null> => {
      let want = 128;
      for (;;) {
        const buf = Buffer.alloc(Math.min(want, size - pos));
        if (buf.length === 0) return null;
        const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
        const nl = buf.subarray(0, bytesRead).indexOf(0x0a);
        if (nl >= 0) return buf.toString("latin1", 0, nl);
        if (pos + bytesRead >= size || want > 1 << 20) return null;
        want *= 4;
      }
    };
    const header = await readLine(0);
    if (header === null || !header.startsWith("YUV4MPEG2"))
      throw new VideoIOError(`${path}: not a y4m file (it does not start with 'YUV4MPEG2')`, path);
    let width = 0;
    let height = 0;
    let fps = 0;
    let colorspace = "420jpeg";
    let interlace = "p";
    for (const tok of header.split(" ").slice(1)) {
      const [k, v] = [tok[0], tok.slice(1)];
      if (k === "W") width = Number(v);
      else if (k === "H") height = Number(v);
      else if (k === "C") colorspace = v;
      else if (k === "I") interlace = v;
      else if (k === "F") {
        const [a, b] = v.split(":").map(Number);
        fps = (a as number) / (b as number);
      }
    }
    if (!(width > 0 && height > 0 && Number.isInteger(width) && Number.isInteger(height)))
      throw new VideoIOError(`${path}: y4m header has no valid W/H ('${header}')`, path);
    if (!(fps > 0 && Number.isFinite(fps))) fps = 25; // the y4m spec leaves F optional; 25 is ffmpeg's default too
    if (interlace !== "p" && interlace !== "?")
      throw new VideoIOError(`${path}: interlaced y4m (I${interlace}) is not supported`, path);
    const lay = layout(colorspace, width, height, path);
    const frameBytes = width * height + 2 * lay.cw * lay.ch;
    const limit = typeof maxFrames === "function" ? maxFrames(fps) : maxFrames;

    const frames: Uint8Array[] = [];
    let pos = Buffer.byteLength(header, "latin1") + 1;
    while (frames.length < limit && pos < size) {
      const line = await readLine(pos);
      if (line === null || !line.startsWith("FRAME"))
        throw new VideoIOError(`${path}: corrupt y4m: expected 'FRAME' at byte ${pos}`, path);
      pos += line.length + 1;
      if (pos + frameBytes > size)
        throw new VideoIOError(
          `${path}: y4m is truncated: frame ${frames.length} needs ${frameBytes} bytes, ${size - pos} remain`,
          path,
        );
      const data = new Uint8Array(frameBytes);
      await fh.read(data, 0, frameBytes, pos);
      pos += frameBytes;
      frames.push(yuvToRgb(data, width, height, lay));
    }
    if (frames.length === 0) throw new VideoIOError(`${path}: y4m file has no frames`, path);
    return { width, height, fps, frames, colorspace };
  } finally {
    await fh.close();
  }
}

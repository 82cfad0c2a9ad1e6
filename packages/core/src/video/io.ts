// Reading and writing video and images: format dispatch, atomic replacement of
// outputs, and resizing/re-timing of inputs used for conditioning.
import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, extname, join } from "node:path";
import type Sharp from "sharp";

// sharp (libvips) is loaded on first use: importing @tessera/core stays fast, and a
// machine where sharp's prebuilt binary is missing can still generate and write video.
let sharpModule: Promise<typeof Sharp> | undefined;
async function loadSharp(): Promise<typeof Sharp> {
  sharpModule ??= import("sharp").then(
    (m) => m.default,
    (e: unknown) => {
      sharpModule = undefined;
      throw new VideoIOError(
        `reading images needs the 'sharp' package, which failed to load: ${(e as Error).message}; reinstall with \`pnpm install\``,
      );
    },
  );
  return sharpModule;
}

import { VideoIOError } from "./errors.js";
import { type DecodeOptions, type Fit, ffmpegDecode, ffmpegEncode, findFfmpeg } from "./ffmpeg.js";
import { checkFrames, checkImage, type RgbImage, resampleFps, type VideoFrames } from "./frames.js";
import { encodeGif, type GifOptions } from "./gif.js";
import { encodePng } from "./png.js";
import { readY4m, writeY4m, type Y4mChroma } from "./y4m.js";

export type { Fit } from "./ffmpeg.js";

export type VideoFormat = "mp4" | "webm" | "gif" | "png-frames" | "y4m";
const FORMATS: readonly VideoFormat[] = ["mp4", "webm", "gif", "png-frames", "y4m"];

export interface WriteVideoOptions extends GifOptions {
  /** Overrides the format the path's extension implies. */
  format?: VideoFormat;
  /**
   * 0..100, default 75, for .mp4 and .webm: mapped linearly onto x264 CRF 40..10
   * (75 gives CRF 18, "visually lossless") and VP9 CRF 50..15 (75 gives 24).
   * The other formats are lossless or palette-limited and ignore it.
   */
  quality?: number;
  /**
   * .mp4 only: H.264 in 4:2:0 needs even width and height. "pad" (default)
   * repeats the last column/row, so the file is up to one pixel larger than the
   * frames, without the dark edge black padding would smear into the chroma;
   * "error" refuses odd sizes instead.
   */
  oddSize?: "pad" | "error";
  /** .y4m only: "420" (default) or "444"; see y4m.ts for why 4:2:0 is the default. */
  chroma?: Y4mChroma;
}

export interface WriteResult {
  path: string;
  format: VideoFormat;
  /** The size stored in the file (mp4 may be padded to even sizes). */
  width: number;
  height: number;
  frameCount: number;
  /** File size, or the sum of the frame files for a PNG folder. */
  bytes: number;
}

/** Name of the sidecar a PNG frame folder keeps its frame rate in (PNG itself has no notion of time). */
export const FRAME_FOLDER_META = "video.json";
/** What a PNG folder without a sidecar is taken to run at: ffmpeg's image2 default. */
const FOLDER_DEFAULT_FPS = 25;

async function statOrNull(path: string) {
  try {
    return await stat(path);
  } catch {
    return null;
  }
}

const trimSlash = (p: string) => (p.length > 1 ? p.replace(/[/\\]+$/, "") : p);

async function formatOf(path: string, opts: WriteVideoOptions): Promise<VideoFormat> {
  if (opts.format !== undefined) {
    if (!FORMATS.includes(opts.format))
      throw new VideoIOError(`unknown format '${opts.format}'; use one of ${FORMATS.join(", ")}`, path);
    return opts.format;
  }
  if (/[/\\]$/.test(path) || (await statOrNull(path))?.isDirectory()) return "png-frames";
  const ext = extname(path).toLowerCase();
  switch (ext) {
    case ".mp4":
    case ".m4v":
      return "mp4";
    case ".webm":
      return "webm";
    case ".gif":
      return "gif";
    case ".y4m":
      return "y4m";
    case ".png":
      throw new VideoIOError(
        `${path}: writeVideo writes PNG frames into a folder: give a path ending in '/' or format 'png-frames' ` +
          "(writeImage and writeContactSheet write a single .png)",
        path,
      );
    default:
      throw new VideoIOError(
        `${path}: cannot tell the format from '${ext || "(no extension)"}'; use .mp4, .webm, .gif, .y4m, ` +
          "a folder path ending in '/', or opts.format",
        path,
      );
  }
}

/**
 * Runs `work` on a temporary name beside `path`, then renames it into place,
 * so readers never see a half-written file and a failure leaves nothing
 * behind (an earlier file at `path` survives untouched).
 */
async function atomically<T>(path: string, work: (tmp: string) => Promise<T>): Promise<T> {
  const dir = dirname(path);
  const d = await statOrNull(dir);
  if (!d?.isDirectory()) throw new VideoIOError(`${path}: folder '${dir}' does not exist`, path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}-${randomBytes(4).toString("hex")}.tmp`);
  try {
    const r = await work(tmp);
    await rename(tmp, path);
    return r;
  } catch (e) {
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
    if (e instanceof VideoIOError) throw e;
    throw new VideoIOError(`${path}: ${(e as Error).message}`, path, { cause: e });
  }
}

/** Repeats the last row/column up to even sizes (see WriteVideoOptions.oddSize). */
function* padToEven(frames: Uint8Array[], w: number, h: number, W: number, H: number): Generator<Uint8Array> {
  for (const f of frames) {
    if (w === W && h === H) {
      yield f;
      continue;
    }
    const out = new Uint8Array(W * H * 3);
    for (let y = 0; y < H; y++) {
      const src = Math.min(y, h - 1) * w * 3;
      out.set(f.subarray(src, src + w * 3), y * W * 3);
      if (W > w) out.copyWithin(y * W * 3 + w * 3, y * W * 3 + (w - 1) * 3, y * W * 3 + w * 3);
    }
    yield out;
  }
}

function qualityOf(q: number | undefined): number {
  const v = q ?? 75;
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || v > 100)
    throw new VideoIOError(`'quality' must be a number from 0 to 100, got ${q}`);
  return v;
}

// Tag output as BT.709 and convert with that matrix: generated frames are sRGB
// (BT.709 primaries), and untagged files are decoded as BT.601 or BT.709
// depending on their size and the player, which shifts colours.
const COLOUR_TAGS = [
  "-colorspace",
  "bt709",
  "-color_primaries",
  "bt709",
  "-color_trc",
  "bt709",
  "-color_range",
  "tv",
];
const TO_YUV420 =
  "scale=out_color_matrix=bt709:out_range=tv:flags=accurate_rnd+full_chroma_inp,format=yuv420p";

/** Writes a video; the format comes from the path's extension unless opts.format says otherwise. */
export async function writeVideo(
  path: string,
  video: VideoFrames,
  opts: WriteVideoOptions = {},
): Promise<WriteResult> {
  if (typeof path !== "string" || path.length === 0)
    throw new VideoIOError("writeVideo: 'path' must be a non-empty string");
  checkFrames(video);
  const format = await formatOf(path, opts);
  const { width, height, frames, fps } = video;
  const result = (p: string, w: number, h: number, bytes: number): WriteResult => ({
    path: p,
    format,
    width: w,
    height: h,
    frameCount: frames.length,
    bytes,
  });

  if (format === "mp4" || format === "webm") {
    const q = qualityOf(opts.quality);
    const mp4 = format === "mp4";
    let W = width;
    let H = height;
    const oddSize = opts.oddSize ?? "pad";
    if (oddSize !== "pad" && oddSize !== "error")
      throw new VideoIOError(`'oddSize' must be 'pad' or 'error', got '${oddSize}'`, path);
    if (mp4 && (width % 2 || height % 2)) {
      if (oddSize === "error")
        throw new VideoIOError(
          `${path}: H.264 (yuv420p) needs even width and height, got ${width}x${height}; ` +
            "crop or resize the frames, or pass oddSize: 'pad'",
          path,
        );
      W = width + (width % 2);
      H = height + (height % 2);
    }
    const bin = findFfmpeg(mp4 ? "writing .mp4 (H.264)" : "writing .webm (VP9)");
    const outputArgs = mp4
      ? [
          "-vf",
          TO_YUV420,
          "-c:v",
          "libx264",
          "-preset",
          "medium",
          "-crf",
          String(Math.round(40 - 0.3 * q)),
          "-pix_fmt",
          "yuv420p",
          ...COLOUR_TAGS,
          // The index (moov) goes first so browsers can start playing before the whole file arrives.
          "-movflags",
          "+faststart",
          "-f",
          "mp4",
        ]
      : [
          "-vf",
          TO_YUV420,
          "-c:v",
          "libvpx-vp9",
          "-crf",
          String(Math.round(50 - 0.35 * q)),
          "-b:v",
          "0", // constant-quality mode; without it VP9 treats CRF as a cap on a default bitrate
          "-deadline",
          "good",
          "-cpu-used",
          "2",
          "-row-mt",
          "1",
          "-pix_fmt",
          "yuv420p",
          ...COLOUR_TAGS,
          "-f",
          "webm",
        ];
    return atomically(path, async (tmp) => {
      await ffmpegEncode({
        bin,
        width: W,
        height: H,
        fps,
        frames: padToEven(frames, width, height, W, H),
        outputArgs,
        out: tmp,
        purpose: `writing ${path}`,
      });
      return result(path, W, H, (await stat(tmp)).size);
    });
  }

  if (format === "gif") {
    const bytes = encodeGif(video, opts);
    return atomically(path, async (tmp) => {
      await writeFile(tmp, bytes);
      return result(path, width, height, bytes.length);
    });
  }

  if (format === "y4m") {
    return atomically(path, async (tmp) => {
      await writeY4m(tmp, video, opts.chroma ?? "420");
      return result(path, width, height, (await stat(tmp)).size);
    });
  }

  return writePngFolder(trimSlash(path), video, result);
}

const frameName = (i: number) => `frame_${String(i).padStart(5, "0")}.png`;
const FRAME_RE = /^frame_(\d+)\.png$/i;

/**
 * A folder of frame_00000.png, ... plus a small JSON sidecar with the frame rate.
 * A new folder appears whole (built under a temporary name, then renamed). An
 * existing folder gets each file replaced atomically and stale frame files
 * beyond the new count removed, so it never mixes two videos' frames.
 */
async function writePngFolder(
  dir: string,
  video: VideoFrames,
  result: (p: string, w: number, h: number, bytes: number) => WriteResult,
): Promise<WriteResult> {
  const existing = await statOrNull(dir);
  if (existing && !existing.isDirectory())
    throw new VideoIOError(`${dir}: exists and is not a folder; cannot write PNG frames into it`, dir);
  const { width, height, frames, fps } = video;
  const meta = `${JSON.stringify({ fps, width, height, frames: frames.length })}\n`;
  if (!existing) {
    return atomically(dir, async (tmp) => {
      await mkdir(tmp);
      let bytes = 0;
      for (let i = 0; i < frames.length; i++) {
        const png = encodePng({ width, height, data: frames[i] as Uint8Array });
        bytes += png.length;
        await writeFile(join(tmp, frameName(i)), png);
      }
      await writeFile(join(tmp, FRAME_FOLDER_META), meta);
      return result(dir, width, height, bytes);
    });
  }
  let bytes = 0;
  for (let i = 0; i < frames.length; i++) {
    const png = encodePng({ width, height, data: frames[i] as Uint8Array });
    bytes += png.length;
    await atomically(join(dir, frameName(i)), (tmp) => writeFile(tmp, png));
  }
  await atomically(join(dir, FRAME_FOLDER_META), (tmp) => writeFile(tmp, meta));
  for (const name of await readdir(dir)) {
    const m = FRAME_RE.exec(name);
    if (m && Number(m[1]) >= frames.length) await rm(join(dir, name), { force: true });
  }
  return result(dir, width, height, bytes);
}

export interface ReadVideoOptions {
  /** Stop after this many frames (counted after any fps change). */
  maxFrames?: number;
  /** Resize to this width (and/or height; with only one, the aspect ratio is kept). */
  width?: number;
  height?: number;
  /** How to reach width x height when both are given (default "cover": scale and centre-crop). */
  fit?: Fit;
  /**
   * Re-time to this frame rate by dropping/repeating frames, keeping the
   * duration. A PNG folder without a video.json sidecar is instead taken to
   * run at this rate (default 25, like ffmpeg's image2).
   */
  fps?: number;
}

function checkReadOptions(o: ReadVideoOptions & { fit?: Fit }, what: string): void {
  for (const k of ["maxFrames", "width", "height"] as const) {
    const v = o[k];
    if (v !== undefined && !(Number.isInteger(v) && v > 0))
      throw new VideoIOError(`${what}: '${k}' must be a positive integer, got ${v}`);
  }
  if (o.fps !== undefined && !(typeof o.fps === "number" && Number.isFinite(o.fps) && o.fps > 0))
    throw new VideoIOError(`${what}: 'fps' must be a positive number, got ${o.fps}`);
  if (o.fit !== undefined && !["cover", "contain", "fill"].includes(o.fit))
    throw new VideoIOError(`${what}: 'fit' must be 'cover', 'contain' or 'fill', got '${o.fit}'`);
}

async function checkExists(path: string, what: string) {
  if (typeof path !== "string" || path.length === 0)
    throw new VideoIOError(`${what}: 'path' must be a non-empty string`);
  const s = await statOrNull(path);
  if (!s) throw new VideoIOError(`${path}: no such file or folder`, path);
  return s;
}

/** Resizes raw RGB with sharp, the same resampler readImage uses. */
async function resizeRgb(data: Uint8Array, w: number, h: number, o: ReadVideoOptions) {
  const sharp = await loadSharp();
  const img = await sharp(data, { raw: { width: w, height: h, channels: 3 } })
    .resize({
      width: o.width,
      height: o.height,
      fit: o.fit ?? "cover",
      position: "centre",
      background: "#000000",
    })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return {
    data: new Uint8Array(img.data.buffer, img.data.byteOffset, img.data.length),
    width: img.info.width,
    height: img.info.height,
  };
}

/** Applies fps, maxFrames and size options to frames decoded by a built-in reader. */
async function finish(v: VideoFrames, o: ReadVideoOptions): Promise<VideoFrames> {
  let frames = o.fps ? resampleFps(v.frames, v.fps, o.fps) : v.frames;
  if (o.maxFrames !== undefined) frames = frames.slice(0, o.maxFrames);
  let { width, height } = v;
  if (o.width || o.height) {
    const out: Uint8Array[] = [];
    for (const f of frames) {
      const r = await resizeRgb(f, v.width, v.height, o);
      out.push(r.data);
      width = r.width;
      height = r.height;
    }
    frames = out;
  }
  return { width, height, frames, fps: o.fps ?? v.fps };
}

/** How many source frames a built-in reader must decode to satisfy maxFrames after re-timing. */
function sourceLimit(o: ReadVideoOptions, srcFps: number): number {
  if (o.maxFrames === undefined) return Number.POSITIVE_INFINITY;
  return o.fps ? Math.ceil((o.maxFrames * srcFps) / o.fps) + 1 : o.maxFrames;
}

async function decodeStill(
  input: string | Buffer,
  path: string,
  pipeline: (s: Sharp.Sharp) => Sharp.Sharp,
  sharpOpts?: Sharp.SharpOptions,
) {
  const sharp = await loadSharp();
  try {
    const img = await pipeline(sharp(input, sharpOpts))
      .flatten({ background: "#000000" })
      .toColourspace("srgb")
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (img.info.channels !== 3)
      throw new VideoIOError(`${path}: decoded to ${img.info.channels} channels, expected RGB`, path);
    return img;
  } catch (e) {
    if (e instanceof VideoIOError) throw e;
    throw new VideoIOError(`${path}: cannot decode image: ${(e as Error).message}`, path, { cause: e });
  }
}

async function readPngFolder(dir: string, o: ReadVideoOptions): Promise<VideoFrames> {
  const names = await readdir(dir);
  let files = names.filter((n) => FRAME_RE.test(n));
  files.sort((a, b) => Number(FRAME_RE.exec(a)?.[1]) - Number(FRAME_RE.exec(b)?.[1]));
  if (files.length === 0) {
    // Folders made by other tools: take every PNG in natural order (img2 before img10).
    const coll = new Intl.Collator("en", { numeric: true });
    files = names.filter((n) => /\.png$/i.test(n)).sort(coll.compare);
  }
  if (files.length === 0) throw new VideoIOError(`${dir}: folder holds no PNG frames`, dir);
  let fps = o.fps ?? FOLDER_DEFAULT_FPS;
  try {
    const meta = JSON.parse(await readFile(join(dir, FRAME_FOLDER_META), "utf8")) as { fps?: unknown };
    if (typeof meta.fps === "number" && meta.fps > 0) fps = meta.fps;
  } catch {
    // no sidecar: a folder from elsewhere
  }
  const limit = Math.min(files.length, sourceLimit(o, fps));
  const frames: Uint8Array[] = [];
  let width = 0;
  let height = 0;
  for (const name of files.slice(0, limit)) {
    const p = join(dir, name);
    const img = await decodeStill(p, p, (s) => s);
    if (frames.length === 0) [width, height] = [img.info.width, img.info.height];
    else if (img.info.width !== width || img.info.height !== height)
      throw new VideoIOError(
        `${p}: is ${img.info.width}x${img.info.height} but earlier frames are ${width}x${height}`,
        p,
      );
    frames.push(new Uint8Array(img.data.buffer, img.data.byteOffset, img.data.length));
  }
  return finish({ width, height, frames, fps }, o);
}

/** Animated GIF through sharp (libvips composites each frame fully), so reading GIFs needs no ffmpeg. */
async function readGif(path: string, o: ReadVideoOptions): Promise<VideoFrames> {
  const sharp = await loadSharp();
  let meta: Sharp.Metadata;
  try {
    meta = await sharp(path, { animated: true }).metadata();
  } catch (e) {
    throw new VideoIOError(`${path}: cannot decode GIF: ${(e as Error).message}`, path, { cause: e });
  }
  const delays = (meta.delay ?? []).map((d) => (d > 10 ? d : 100)); // 0/1 cs delays play at 100 ms in browsers
  const mean = delays.length ? delays.reduce((a, b) => a + b, 0) / delays.length : 100;
  const fps = Math.round((1000 / mean) * 1000) / 1000;
  const pages = meta.pages ?? 1;
  const limit = Math.min(pages, sourceLimit(o, fps));
  const img = await decodeStill(path, path, (s) => s, { pages: limit >= pages ? -1 : limit });
  const width = img.info.width;
  const height = meta.pageHeight ?? img.info.height;
  const n = Math.round(img.info.height / height);
  const fb = width * height * 3;
  const frames: Uint8Array[] = [];
  for (let i = 0; i < n; i++) frames.push(new Uint8Array(img.data.buffer, img.data.byteOffset + i * fb, fb));
  return finish({ width, height, frames, fps }, o);
}

/**
 * Reads a video as RGB8 frames. .y4m, .gif and PNG frame folders are decoded
 * here without ffmpeg; anything else (.mp4, .webm, .mov, ...) goes through it.
 */
export async function readVideo(path: string, opts: ReadVideoOptions = {}): Promise<VideoFrames> {
  checkReadOptions(opts, "readVideo");
  const s = await checkExists(path, "readVideo");
  if (s.isDirectory()) return readPngFolder(path, opts);
  const ext = extname(path).toLowerCase();
  if (ext === ".y4m") {
    const v = await readY4m(path, (fps) => sourceLimit(opts, fps));
    return finish(v, opts);
  }
  if (ext === ".gif") return readGif(path, opts);
  const bin = findFfmpeg(`reading ${ext || "this"} video`, true);
  const o: DecodeOptions = { ...opts };
  return ffmpegDecode(bin, path, o);
}

export interface ReadImageOptions {
  width?: number;
  height?: number;
  /** With both width and height: "cover" (default, scale and centre-crop), "contain" (letterbox in black) or "fill" (stretch). */
  fit?: Fit;
  /**
   * Refuse an image of more pixels (width × height) than this before decoding it
   * (default: sharp's own limit, 268 megapixels), so that a small file claiming a
   * huge size cannot take the memory its pixels would need.
   */
  maxPixels?: number;
}

/**
 * Reads a still image (PNG, JPEG, WebP, TIFF, GIF's first frame, ...) as RGB8,
 * applying EXIF orientation and flattening transparency onto black.
 */
export async function readImage(path: string, opts: ReadImageOptions = {}): Promise<RgbImage> {
  checkReadOptions(opts, "readImage");
  if (opts.maxPixels !== undefined && !(Number.isInteger(opts.maxPixels) && opts.maxPixels > 0))
    throw new VideoIOError(`readImage: 'maxPixels' must be a positive integer, got ${opts.maxPixels}`);
  const s = await checkExists(path, "readImage");
  if (!s.isFile()) throw new VideoIOError(`${path}: is not a file`, path);
  const sharpOpts: Sharp.SharpOptions = {};
  if (opts.maxPixels !== undefined) sharpOpts.limitInputPixels = opts.maxPixels;
  const img = await decodeStill(
    path,
    path,
    (x) => {
      const r = x.rotate();
      return opts.width || opts.height
        ? r.resize({
            width: opts.width,
            height: opts.height,
            fit: opts.fit ?? "cover",
            position: "centre",
            background: "#000000",
          })
        : r;
    },
    sharpOpts,
  );
  return {
    width: img.info.width,
    height: img.info.height,
    data: new Uint8Array(img.data.buffer, img.data.byteOffset, img.data.length),
  };
}

/** Writes one RGB8 image: .png with our own encoder, .jpg/.jpeg/.webp through sharp. */
export async function writeImage(
  path: string,
  image: RgbImage,
  opts: { quality?: number } = {},
): Promise<void> {
  checkImage(image);
  const ext = extname(path).toLowerCase();
  if (![".png", ".jpg", ".jpeg", ".webp"].includes(ext))
    throw new VideoIOError(
      `${path}: writeImage writes .png, .jpg or .webp, not '${ext || "(no extension)"}'`,
      path,
    );
  const q = Math.round(qualityOf(opts.quality ?? 90)) || 1;
  await atomically(path, async (tmp) => {
    if (ext === ".png") return writeFile(tmp, encodePng(image));
    const sharp = await loadSharp();
    const s = sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } });
    await (ext === ".webp" ? s.webp({ quality: q }) : s.jpeg({ quality: q })).toFile(tmp);
  });
}

export interface ContactSheetOptions {
  /** Frames per row (default 4). */
  columns?: number;
  /** Take every frameStep-th frame, starting with the first (default 1). */
  frameStep?: number;
  /** Pixels between and around tiles (default 2). */
  gap?: number;
  /** RGB of the gaps (default white). */
  background?: [number, number, number];
}

/** Tiles every frameStep-th frame into one image (for READMEs and reports) and writes it (.png, .jpg or .webp). */
export async function writeContactSheet(
  path: string,
  video: VideoFrames,
  opts: ContactSheetOptions = {},
): Promise<RgbImage> {
  checkFrames(video);
  const { columns = 4, frameStep = 1, gap = 2, background = [255, 255, 255] } = opts;
  for (const [k, v, min] of [
    ["columns", columns, 1],
    ["frameStep", frameStep, 1],
    ["gap", gap, 0],
  ] as const)
    if (!Number.isInteger(v) || v < min)
      throw new VideoIOError(`writeContactSheet: '${k}' must be an integer >= ${min}, got ${v}`, path);
  const picked = video.frames.filter((_, i) => i % frameStep === 0);
  const cols = Math.min(columns, picked.length);
  const rows = Math.ceil(picked.length / cols);
  const { width: fw, height: fh } = video;
  const W = cols * fw + (cols + 1) * gap;
  const H = rows * fh + (rows + 1) * gap;
  const data = new Uint8Array(W * H * 3);
  for (let i = 0; i < W * H; i++) data.set(background, i * 3);
  picked.forEach((f, k) => {
    const x0 = gap + (k % cols) * (fw + gap);
    const y0 = gap + Math.floor(k / cols) * (fh + gap);
    for (let y = 0; y < fh; y++) data.set(f.subarray(y * fw * 3, (y + 1) * fw * 3), ((y0 + y) * W + x0) * 3);
  });
  const sheet = { width: W, height: H, data };
  await writeImage(path, sheet);
  return sheet;
}

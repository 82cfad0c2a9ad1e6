// CLIP image preprocessing as transformers' CLIPImageProcessor does it (the PIL-based
// processor that diffusers' Wan image-to-video pipelines load from image_processor/):
// shortest side resized to `size` (the other side truncated), PIL's bicubic
// resampling of 8-bit pixels, a centre crop, ×1/255, (x − mean)/std. The resampler is
// PIL's, to the bit: separable passes (horizontal first) with a filter support widened
// by the downscale factor (antialiasing), coefficients in 22-bit fixed point, and each
// pass rounded to 8 bits, so an image gives the same CLIP input here as in Python.
import { type DeviceLike, Tensor } from "@tessera/native";
import type { RgbImage } from "../../video/frames.js";

export interface ClipImageProcessorConfig {
  doResize: boolean;
  /** The shortest side after resizing. */
  shortestEdge: number;
  /** PIL filter: only bicubic (3) and bilinear (2) are implemented. */
  resample: 2 | 3;
  doCenterCrop: boolean;
  cropHeight: number;
  cropWidth: number;
  doRescale: boolean;
  rescaleFactor: number;
  doNormalize: boolean;
  mean: [number, number, number];
  std: [number, number, number];
}

export const CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

/** CLIPImageProcessor's defaults at `size` (224 for ViT-H/14). */
export function clipImageProcessor(size: number): ClipImageProcessorConfig {
  return {
    doResize: true,
    shortestEdge: size,
    resample: 3,
    doCenterCrop: true,
    cropHeight: size,
    cropWidth: size,
    doRescale: true,
    rescaleFactor: 1 / 255,
    doNormalize: true,
    mean: CLIP_MEAN,
    std: CLIP_STD,
  };
}

/** image_processor/preprocessor_config.json (CLIPImageProcessor fields; absent ones take its defaults). */
export function clipImageProcessorFromJson(
  json: unknown,
  what = "image_processor/preprocessor_config.json",
): ClipImageProcessorConfig {
  if (!json || typeof json !== "object" || Array.isArray(json))
    throw new Error(`${what}: expected a JSON object`);
  const j = json as Record<string, unknown>;
  const d = clipImageProcessor(224);
  const size = j.size;
  let shortest = d.shortestEdge;
  if (typeof size === "number") shortest = size;
  else if (size && typeof size === "object") {
    const s = size as Record<string, unknown>;
    if (typeof s.shortest_edge !== "number")
      throw new Error(
        `${what}: size must give shortest_edge (CLIP resizes the shortest side), got ${JSON.stringify(size)}`,
      );
    shortest = s.shortest_edge;
  }
  let ch = shortest;
  let cw = shortest;
  const crop = j.crop_size;
  if (typeof crop === "number") ch = cw = crop;
  else if (crop && typeof crop === "object") {
    const c = crop as Record<string, unknown>;
    if (typeof c.height !== "number" || typeof c.width !== "number")
      throw new Error(`${what}: crop_size must give height and width, got ${JSON.stringify(crop)}`);
    ch = c.height;
    cw = c.width;
  }
  const resample = j.resample ?? 3;
  if (resample !== 2 && resample !== 3)
    throw new Error(
      `${what}: resample ${JSON.stringify(resample)} is not supported (2 bilinear or 3 bicubic)`,
    );
  const triple = (k: string, def: [number, number, number]): [number, number, number] => {
    const v = j[k];
    if (v === undefined) return def;
    if (!Array.isArray(v) || v.length !== 3 || v.some((x) => typeof x !== "number"))
      throw new Error(`${what}: ${k} must be three numbers, got ${JSON.stringify(v)}`);
    return v as [number, number, number];
  };
  const bool = (k: string) => (typeof j[k] === "boolean" ? (j[k] as boolean) : true);
  for (const [k, v] of [
    ["size", shortest],
    ["crop_size", ch],
    ["crop_size", cw],
  ] as const)
    if (!Number.isInteger(v) || v <= 0) throw new Error(`${what}: ${k} must be positive integers, got ${v}`);
  return {
    doResize: bool("do_resize"),
    shortestEdge: shortest,
    resample,
    doCenterCrop: bool("do_center_crop"),
    cropHeight: ch,
    cropWidth: cw,
    doRescale: bool("do_rescale"),
    rescaleFactor: typeof j.rescale_factor === "number" ? j.rescale_factor : 1 / 255,
    doNormalize: bool("do_normalize"),
    mean: triple("image_mean", CLIP_MEAN),
    std: triple("image_std", CLIP_STD),
  };
}

/** The image's pixels as the encoder takes them: f32 [crop height, crop width, 3], channels-last. */
export function clipPreprocess(image: RgbImage, p: ClipImageProcessorConfig): Float32Array {
  let { data, width: w, height: h } = image;
  if (p.doResize) {
    // transformers' get_resize_output_image_size(default_to_square=False): the long side truncated.
    const [nw, nh] =
      w <= h
        ? [p.shortestEdge, Math.trunc((p.shortestEdge * h) / w)]
        : [Math.trunc((p.shortestEdge * w) / h), p.shortestEdge];
    data = pilResize(data, w, h, nw, nh, p.resample);
    w = nw;
    h = nh;
  }
  let top = 0;
  let left = 0;
  let oh = h;
  let ow = w;
  if (p.doCenterCrop) {
    if (p.cropHeight > h || p.cropWidth > w)
      throw new Error(
        `CLIP preprocessing: the ${w}x${h} image is smaller than the ${p.cropWidth}x${p.cropHeight} crop`,
      );
    top = Math.floor((h - p.cropHeight) / 2);
    left = Math.floor((w - p.cropWidth) / 2);
    oh = p.cropHeight;
    ow = p.cropWidth;
  }
  const f = Math.fround;
  const out = new Float32Array(oh * ow * 3);
  for (let y = 0; y < oh; y++)
    for (let x = 0; x < ow; x++)
      for (let c = 0; c < 3; c++) {
        let v = data[((y + top) * w + x + left) * 3 + c] as number;
        // As numpy does it: rescale in float64 stored as float32, normalise in float32.
        if (p.doRescale) v = f(v * p.rescaleFactor);
        if (p.doNormalize) v = f(f(v - f(p.mean[c] as number)) / f(p.std[c] as number));
        out[(y * ow + x) * 3 + c] = v;
      }
  return out;
}

/** [1, H, W, 3] f32 tensor of one image, preprocessed. */
export function clipPixels(image: RgbImage, p: ClipImageProcessorConfig, device: DeviceLike = "cpu"): Tensor {
  const h = p.doCenterCrop ? p.cropHeight : 0;
  const data = clipPreprocess(image, p);
  const w = h ? p.cropWidth : 0;
  if (!h)
    throw new Error("CLIP preprocessing without a centre crop is not supported (the encoder takes a square)");
  return Tensor.from(data, [1, h, w, 3], { device });
}

// ---- PIL's resampling (Pillow's libImaging/Resample.c), 8 bits per channel ----

const PRECISION_BITS = 32 - 8 - 2;

function bicubic(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

function bilinear(x: number): number {
  if (x < 0) x = -x;
  return x < 1 ? 1 - x : 0;
}

interface Coeffs {
  ksize: number;
  bounds: Int32Array;
  /** Fixed-point coefficients, outSize × ksize. */
  k: Float64Array;
}

function precomputeCoeffs(inSize: number, outSize: number, resample: 2 | 3): Coeffs {
  const [filter, support0] = resample === 3 ? [bicubic, 2] : [bilinear, 1];
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = support0 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const k = new Float64Array(outSize * ksize);
  const pre = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const wv = filter((x + xmin - center + 0.5) * ss);
      pre[x] = wv;
      ww += wv;
    }
    for (let x = 0; x < ksize; x++) {
      let v = x < xmax ? (pre[x] as number) : 0;
      if (x < xmax && ww !== 0) v /= ww;
      // normalize_coeffs_8bpc: round half away from zero to 22-bit fixed point (C's int cast truncates).
      k[xx * ksize + x] =
        v < 0 ? Math.trunc(-0.5 + v * 2 ** PRECISION_BITS) : Math.trunc(0.5 + v * 2 ** PRECISION_BITS);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, k };
}

const clip8 = (ss: number) => Math.min(255, Math.max(0, Math.floor(ss / 2 ** PRECISION_BITS)));

/** PIL's Image.resize of an RGB8 image (w×h → W×H) with BILINEAR (2) or BICUBIC (3). */
export function pilResize(
  src: Uint8Array,
  w: number,
  h: number,
  W: number,
  H: number,
  resample: 2 | 3 = 3,
): Uint8Array {
  let cur = src;
  let cw = w;
  if (W !== w) {
    const { ksize, bounds, k } = precomputeCoeffs(w, W, resample);
    const out = new Uint8Array(W * h * 3);
    for (let y = 0; y < h; y++)
      for (let xx = 0; xx < W; xx++) {
        const xmin = bounds[xx * 2] as number;
        const xmax = bounds[xx * 2 + 1] as number;
        for (let c = 0; c < 3; c++) {
          let ss = 2 ** (PRECISION_BITS - 1);
          for (let x = 0; x < xmax; x++)
            ss += (cur[(y * w + x + xmin) * 3 + c] as number) * (k[xx * ksize + x] as number);
          out[(y * W + xx) * 3 + c] = clip8(ss);
        }
      }
    cur = out;
    cw = W;
  }
  if (H !== h) {
    const { ksize, bounds, k } = precomputeCoeffs(h, H, resample);
    const out = new Uint8Array(cw * H * 3);
    for (let yy = 0; yy < H; yy++) {
      const ymin = bounds[yy * 2] as number;
      const ymax = bounds[yy * 2 + 1] as number;
      for (let x = 0; x < cw; x++)
        for (let c = 0; c < 3; c++) {
          let ss = 2 ** (PRECISION_BITS - 1);
          for (let y = 0; y < ymax; y++)
            ss += (cur[((y + ymin) * cw + x) * 3 + c] as number) * (k[yy * ksize + y] as number);
          out[(yy * cw + x) * 3 + c] = clip8(ss);
        }
    }
    cur = out;
  }
  return cur === src ? src.slice() : cur;
}

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { affine, liveTensorCount, randn, slice, Tensor } from "@tessera/native";
import { beforeAll, describe, expect, it } from "vitest";
import { maxAbsDiff, useTinyVae } from "../../testing/tiny-vae.js";
import { WeightError } from "../../weights/store.js";
import { validateWanVaeConfig, WAN_VAE_TINY, WAN21_VAE, type WanVaeConfig } from "./config.js";
import { interleaveFrames, rmsNormEps } from "./net.js";
import { randomWanVaeWeights, wanVaeParams } from "./params.js";
import { tileGrid, tileSpans, WanVAE } from "./vae.js";

const values = (t: Tensor) => t.toFloat32Array();

function meanAbs(a: Float32Array): number {
  let s = 0;
  for (const v of a) s += Math.abs(v);
  return s / a.length;
}

describe("Wan VAE parameters", () => {
  it("has diffusers AutoencoderKLWan's 194 tensors and 126,892,531 parameters for Wan2.1", () => {
    const p = wanVaeParams(WAN21_VAE);
    expect(p.size).toBe(194);
    let n = 0;
    for (const s of p.values()) n += s.shape.reduce((a, b) => a * b, 1);
    expect(n).toBe(126_892_531);
    const shape = (k: string) => p.get(k)?.shape;
    expect(shape("encoder.conv_in.weight")).toEqual([96, 3, 3, 3, 3]);
    expect(shape("encoder.down_blocks.2.resample.1.weight")).toEqual([96, 96, 3, 3]);
    expect(shape("encoder.down_blocks.3.conv_shortcut.weight")).toEqual([192, 96, 1, 1, 1]);
    expect(shape("encoder.down_blocks.5.time_conv.weight")).toEqual([192, 192, 3, 1, 1]);
    expect(shape("encoder.down_blocks.10.norm2.gamma")).toEqual([384, 1, 1, 1]);
    expect(shape("encoder.mid_block.attentions.0.norm.gamma")).toEqual([384, 1, 1]);
    expect(shape("encoder.mid_block.attentions.0.to_qkv.weight")).toEqual([1152, 384, 1, 1]);
    expect(shape("encoder.conv_out.weight")).toEqual([32, 384, 3, 3, 3]);
    expect(shape("quant_conv.weight")).toEqual([32, 32, 1, 1, 1]);
    expect(shape("post_quant_conv.weight")).toEqual([16, 16, 1, 1, 1]);
    expect(shape("decoder.up_blocks.0.upsamplers.0.time_conv.weight")).toEqual([768, 384, 3, 1, 1]);
    expect(shape("decoder.up_blocks.0.upsamplers.0.resample.1.weight")).toEqual([192, 384, 3, 3]);
    expect(shape("decoder.up_blocks.1.resnets.0.conv_shortcut.weight")).toEqual([384, 192, 1, 1, 1]);
    expect(shape("decoder.up_blocks.2.upsamplers.0.resample.1.weight")).toEqual([96, 192, 3, 3]);
    expect(p.has("decoder.up_blocks.2.upsamplers.0.time_conv.weight")).toBe(false);
    expect(p.has("decoder.up_blocks.3.upsamplers.0.resample.1.weight")).toBe(false);
    expect(shape("decoder.norm_out.gamma")).toEqual([96, 1, 1, 1]);
    expect(shape("decoder.conv_out.weight")).toEqual([3, 96, 3, 3, 3]);
  });

  it("rejects configs it cannot run, naming the field", () => {
    expect(() => validateWanVaeConfig(WAN21_VAE)).not.toThrow();
    expect(() => validateWanVaeConfig({ ...WAN21_VAE, attn_scales: [0.5] })).toThrow(/attn_scales/);
    expect(() => validateWanVaeConfig({ ...WAN21_VAE, temperal_downsample: [true, true] })).toThrow(
      /temperal_downsample must hold 3 booleans/,
    );
    expect(() => validateWanVaeConfig({ ...WAN21_VAE, latents_std: [1, 2] })).toThrow(/latents_std/);
    expect(() => validateWanVaeConfig({ ...WAN21_VAE, patch_size: 2 })).toThrow(
      /in_channels 3 is not a multiple of patch_size² = 4/,
    );
    expect(() => validateWanVaeConfig({ ...WAN21_VAE, base_dim: 0 })).toThrow(/base_dim/);
  });
});

describe("Wan VAE building blocks", () => {
  it("rmsNorm with eps 1e-24/C equals F.normalize(x, dim=C)·√C, zero vectors included", async () => {
    const { rmsNorm } = await import("@tessera/native");
    const c = 6;
    const rows = [
      [1, -2, 3, 0.5, -0.25, 4],
      [1e-3, 2e-3, -1e-3, 0, 0, 5e-4],
      [0, 0, 0, 0, 0, 0],
      [1e4, -3e4, 2e4, 1, 0, -5e3],
    ];
    const x = Tensor.from(rows.flat(), [1, rows.length, c]);
    const y = rmsNorm(x, { eps: rmsNormEps(c) });
    const got = await values(y);
    rows.forEach((r, i) => {
      const norm = Math.sqrt(r.reduce((s, v) => s + v * v, 0));
      r.forEach((v, j) => {
        const want = (v / Math.max(norm, 1e-12)) * Math.sqrt(c);
        expect(got[i * c + j]).toBeCloseTo(want, 5);
      });
    });
    x.dispose();
    y.dispose();
  });

  it("interleaves time_conv's 2C channels into frames as the reference does", async () => {
    // [B=1, F=2, H=1, W=1, 2C=4]: frame f gives frames 2f (channels 0..C) and 2f + 1 (C..2C).
    const x = Tensor.from([0, 1, 2, 3, 10, 11, 12, 13], [1, 2, 1, 1, 4]);
    const y = interleaveFrames(x);
    expect(y.shape).toEqual([1, 4, 1, 1, 2]);
    expect(Array.from(await values(y))).toEqual([0, 1, 2, 3, 10, 11, 12, 13]);
    x.dispose();
    y.dispose();
  });

  it("places tiles flush with the edges, overlapping by at least `overlap`, with masks summing to 1", () => {
    expect(tileSpans(10, 16, 4)).toEqual([[0, 10]]);
    expect(tileSpans(30, 12, 4)).toEqual([
      [0, 12],
      [8, 20],
      [16, 28],
      [18, 30],
    ]);
    const tiles = tileGrid(13, 9, { size: 6, overlap: 2 }, 8);
    const sum = new Float64Array(13 * 8 * 9 * 8);
    for (const t of tiles) {
      const tw = t.maskWidth;
      expect(tw).toBe((t.x1 - t.x0) * 8);
      for (let i = 0; i < t.mask.length; i++) {
        const r = t.y0 * 8 + Math.floor(i / tw);
        const q = t.x0 * 8 + (i % tw);
        sum[r * 72 + q] = (sum[r * 72 + q] as number) + (t.mask[i] as number);
      }
    }
    for (const s of sum) expect(s).toBeCloseTo(1, 5);
    expect(() => tileGrid(8, 8, { size: 4, overlap: 4 }, 8)).toThrow(/overlap/);
  });
});

describe("WanVAE (tiny random config)", () => {
  const cfg = WAN_VAE_TINY;
  const tiny = useTinyVae(cfg, [1, 9, 16, 24, 3]); // latent [1, 3, 2, 3, 4]
  let vae: WanVAE;
  let video: Tensor;
  let latent: Tensor;
  let decoded: Tensor;
  beforeAll(() => {
    ({ vae, video, latent, decoded } = tiny);
  });

  it("maps [B, 1 + 4k, H, W, 3] to [B, 1 + k, H/8, W/8, z] and back", async () => {
    expect(vae.spatialFactor).toBe(8);
    expect(vae.temporalFactor).toBe(4);
    expect(latent.shape).toEqual([1, 3, 2, 3, 4]);
    expect(decoded.shape).toEqual([1, 9, 16, 24, 3]);
    const z = await values(latent);
    const y = await values(decoded);
    expect(z.every(Number.isFinite)).toBe(true);
    expect(y.every((v) => v >= -1 && v <= 1)).toBe(true);
    expect(meanAbs(y)).toBeGreaterThan(1e-3);
    // Batches run independently.
    const two = Tensor.from([...z, ...z], [2, 3, 2, 3, 4]);
    const y2 = vae.decode(two);
    const v2 = await values(y2);
    expect(maxAbsDiff(v2.subarray(0, y.length), y)).toBe(0);
    expect(maxAbsDiff(v2.subarray(y.length), y)).toBe(0);
    two.dispose();
    y2.dispose();
  });

  it("chunked encode equals the whole clip encoded at once", async () => {
    const whole = vae.encodeWhole(video);
    expect(maxAbsDiff(await values(latent), await values(whole))).toBeLessThan(1e-5);
    whole.dispose();
  });

  it("chunked decode equals all latent frames decoded at once", async () => {
    const whole = vae.decodeWhole(latent);
    expect(maxAbsDiff(await values(decoded), await values(whole))).toBeLessThan(1e-5);
    whole.dispose();
  });

  it("is causal: a prefix of the input gives exactly a prefix of the output", async () => {
    const full = await values(decoded);
    const frame = 16 * 24 * 3;
    for (const k of [1, 2]) {
      const part = slice(latent, 1, 0, k);
      const y = vae.decode(part);
      const frames = 1 + 4 * (k - 1);
      expect(y.shape[1]).toBe(frames);
      expect(maxAbsDiff(await values(y), full.subarray(0, frames * frame))).toBe(0);
      part.dispose();
      y.dispose();
    }
    const zFull = await values(latent);
    const clip = slice(video, 1, 0, 5);
    const z = vae.encode(clip);
    expect(z.shape).toEqual([1, 2, 2, 3, 4]);
    expect(maxAbsDiff(await values(z), zFull.subarray(0, 2 * 2 * 3 * 4))).toBe(0);
    clip.dispose();
    z.dispose();
  });

  it("tiled decode: one tile is exact; several are each tile's own decode, blended", async () => {
    const y = await values(decoded);
    const one = vae.decode(latent, { tile: { size: 3, overlap: 1 } });
    expect(maxAbsDiff(await values(one), y)).toBe(0);
    one.dispose();

    const [h, w] = [8, 10];
    const big = randn([1, 2, h, w, 4], { seed: 4 });
    const opts = { size: 6, overlap: 3 };
    const tiled = vae.decode(big, { tile: opts });
    expect(tiled.shape).toEqual([1, 5, 64, 80, 3]);
    const t = await values(tiled);
    // The same, assembled here: each tile decoded alone, weighted by its mask, summed.
    const want = new Float64Array(t.length);
    const [H, W] = [h * 8, w * 8];
    for (const tile of tileGrid(h, w, opts, 8)) {
      const rows = slice(big, 2, tile.y0, tile.y1);
      const part = slice(rows, 3, tile.x0, tile.x1);
      rows.dispose();
      const dec = vae.decode(part);
      const d = await values(dec);
      const [th, tw] = [(tile.y1 - tile.y0) * 8, (tile.x1 - tile.x0) * 8];
      for (let f = 0; f < 5; f++)
        for (let r = 0; r < th; r++)
          for (let q = 0; q < tw; q++)
            for (let c = 0; c < 3; c++) {
              const o = ((f * H + tile.y0 * 8 + r) * W + tile.x0 * 8 + q) * 3 + c;
              want[o] =
                (want[o] as number) +
                (d[((f * th + r) * tw + q) * 3 + c] as number) * (tile.mask[r * tw + q] as number);
            }
      part.dispose();
      dec.dispose();
    }
    expect(maxAbsDiff(t, Float32Array.from(want))).toBeLessThan(1e-5);
    // Tiles see less context (the mid-block attention spans the whole frame), so the
    // result moves, but stays nearer the untiled decode than an unrelated one would be.
    const whole = vae.decode(big);
    const ref = await values(whole);
    const diff = Float32Array.from(t, (v, i) => v - (ref[i] as number));
    expect(meanAbs(diff)).toBeLessThan(0.5 * meanAbs(ref));
    for (const x of [big, tiled, whole]) x.dispose();
  });

  it("keeps memory flat: per latent frame, only the new output part stays alive", () => {
    const z = randn([1, 6, 2, 3, 4], { seed: 5 });
    const live: number[] = [];
    const calls: [number, number][] = [];
    const y = vae.decode(z, {
      onChunk: (i, n) => {
        calls.push([i, n]);
        live.push(liveTensorCount());
      },
    });
    expect(calls).toEqual([0, 1, 2, 3, 4, 5].map((i) => [i, 6]));
    // From the second chunk on, every cache slot is filled: the count grows by the one output part.
    for (let i = 2; i < live.length; i++) expect((live[i] as number) - (live[i - 1] as number)).toBe(1);
    expect(y.shape).toEqual([1, 21, 16, 24, 3]);
    z.dispose();
    y.dispose();
  });

  it("decodeStreaming: decode()'s output, with the device's memory flat per latent frame", async () => {
    const z = randn([1, 6, 2, 3, 4], { seed: 5 });
    const cpu = z.device;
    const queued = vae.decode(z);
    const inUse: number[] = [];
    const y = await vae.decodeStreaming(z, { onChunk: () => inUse.push(cpu.memoryStats().inUse) });
    expect(maxAbsDiff(await values(y), await values(queued))).toBe(0);
    // decode() queues every frame's intermediates before the executor frees any; streaming
    // holds one frame's: from the second frame on, memory grows by about one output part.
    const part = 4 * 16 * 24 * 3 * 4;
    for (let i = 2; i < inUse.length; i++)
      expect((inUse[i] as number) - (inUse[i - 1] as number)).toBeLessThanOrEqual(4 * part);
    for (const t of [z, queued, y]) t.dispose();
  });

  it("frees everything it made", () => {
    const n = liveTensorCount();
    const z = vae.encode(video);
    const y = vae.decode(z, { tile: { size: 2, overlap: 1 } });
    const zw = vae.encodeWhole(video);
    const yw = vae.decodeWhole(z);
    expect(liveTensorCount()).toBe(n + 4);
    for (const t of [z, y, zw, yw]) t.dispose();
    expect(liveTensorCount()).toBe(n);
  });

  it("rejects inputs of the wrong shape with clear errors", () => {
    const n = liveTensorCount();
    const bad = [
      [[1, 8, 16, 24, 3], /T must be 1 \+ 4k/],
      [[1, 9, 12, 24, 3], /multiples of 8, got 12x24/],
      [[1, 9, 16, 24, 4], /\[B, T, H, W, 3\]/],
      [[9, 16, 24, 3], /\[B, T, H, W, 3\]/],
    ] as const;
    for (const [shape, msg] of bad) {
      const x = Tensor.empty(shape);
      expect(() => vae.encode(x)).toThrow(msg);
      x.dispose();
    }
    const z = Tensor.empty([1, 2, 2, 3, 5]);
    expect(() => vae.decode(z)).toThrow(/\[B, F, h, w, 4\]/);
    z.dispose();
    expect(() => vae.decode(latent, { tile: { size: 0, overlap: 0 } })).toThrow(/tile\.size/);
    const half = Tensor.empty([1, 2, 2, 3, 4], { dtype: "bf16" });
    expect(() => vae.decode(half)).toThrow(/latent is bf16 on cpu but the weights are f32 on cpu/);
    half.dispose();
    expect(liveTensorCount()).toBe(n);
  });

  it("rejects weights that do not match the config, naming the tensor", () => {
    const other = randomWanVaeWeights({ ...cfg, z_dim: 2, latents_mean: [0, 0], latents_std: [1, 1] });
    expect(() => new WanVAE(cfg, other)).toThrow(WeightError);
    expect(() => new WanVAE(cfg, other)).toThrow(/'encoder\.conv_out\.weight' has shape \[4, 32, 3, 3, 3\]/);
    other.dispose();
    const w = randomWanVaeWeights(cfg);
    w.set("decoder.extra.weight", Tensor.from([1], [1]));
    expect(() => new WanVAE(cfg, w)).toThrow(/unexpected tensor\(s\): decoder\.extra\.weight/);
    w.dispose();
  });
});

describe("WanVAE against diffusers' AutoencoderKLWan", () => {
  // golden/wan-vae-golden.json holds diffusers' outputs for these weights and inputs
  // (golden/make_golden.py); TESSERA_WAN_VAE_GOLDEN_DUMP=dir writes what it needs.
  const cfg: WanVaeConfig = WAN_VAE_TINY;
  const golden = JSON.parse(
    readFileSync(new URL("./golden/wan-vae-golden.json", import.meta.url), "utf8"),
  ) as {
    encode: { shape: number[]; values: number[] };
    decode: { shape: number[]; stride: number; values: number[] };
  };

  it("matches the reference encode and decode (3 latent frames: the zero-cache chunk included)", async () => {
    const n = liveTensorCount();
    const weights = randomWanVaeWeights(cfg, { seed: 5 });
    const vae = new WanVAE(cfg, weights);
    const r = randn([1, 9, 16, 16, 3], { seed: 7 });
    const video = affine(r, 0.5, 0);
    const latent = randn([1, 3, 2, 2, cfg.z_dim], { seed: 9 });
    const dumpDir = process.env.TESSERA_WAN_VAE_GOLDEN_DUMP;
    if (dumpDir) await dumpGoldenInputs(dumpDir, cfg, weights, { video, latent }, golden.decode.stride);
    const z = vae.encode(video);
    const y = vae.decode(latent);
    expect(z.shape).toEqual(golden.encode.shape);
    expect(y.shape).toEqual(golden.decode.shape);
    const zv = await values(z);
    const yv = await values(y);
    const ys = Float32Array.from(
      { length: golden.decode.values.length },
      (_, i) => yv[i * golden.decode.stride] as number,
    );
    expect(maxAbsDiff(zv, Float32Array.from(golden.encode.values))).toBeLessThan(2e-5);
    expect(maxAbsDiff(ys, Float32Array.from(golden.decode.values))).toBeLessThan(2e-5);
    for (const t of [r, video, latent, z, y]) t.dispose();
    weights.dispose();
    expect(liveTensorCount()).toBe(n);
  });
});

async function dumpGoldenInputs(
  dir: string,
  cfg: WanVaeConfig,
  weights: ReturnType<typeof randomWanVaeWeights>,
  inputs: Record<string, Tensor>,
  decodeStride: number,
): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const list: { name: string; shape: number[] }[] = [];
  const bufs: Buffer[] = [];
  for (const name of wanVaeParams(cfg).keys()) {
    const t = weights.get(name);
    list.push({ name, shape: t.shape });
    bufs.push(Buffer.from((await values(t)).buffer));
  }
  writeFileSync(`${dir}/weights.bin`, Buffer.concat(bufs));
  const tensors: Record<string, number[]> = {};
  for (const [name, t] of Object.entries(inputs)) {
    tensors[name] = t.shape;
    writeFileSync(`${dir}/${name}.bin`, Buffer.from((await values(t)).buffer));
  }
  writeFileSync(`${dir}/meta.json`, JSON.stringify({ config: cfg, weights: list, tensors, decodeStride }));
}

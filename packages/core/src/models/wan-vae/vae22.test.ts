// The Wan2.2 form of the VAE (residual blocks, patchify 2): tensor names and counts,
// the shortcuts' channel regrouping, chunked = whole-clip runs, causality and tiling.
// Its numbers against the reference are checked by the golden fixtures (golden/).
import { randn, type Tensor } from "@tessera/native";
import { beforeAll, describe, expect, it } from "vitest";
import { maxAbsDiff, useTinyVae } from "../../testing/tiny-vae.js";
import { validateWanVaeConfig, WAN22_VAE, WAN22_VAE_TINY } from "./config.js";
import { avgDown3d, dupUp3d } from "./net.js";
import { wanVaeParams } from "./params.js";
import { patchify, unpatchify, type WanVAE } from "./vae.js";

const values = (t: Tensor) => t.toFloat32Array();

describe("Wan2.2 VAE parameters", () => {
  it("has the diffusers names and shapes of Wan2.2-TI2V-5B's vae", () => {
    const p = wanVaeParams(WAN22_VAE);
    let n = 0;
    for (const s of p.values()) n += s.shape.reduce((a, b) => a * b, 1);
    // 2.8 GB in f32, as Wan2.2's published VAE; training/check_upstream.py compares the
    // names and shapes with diffusers' own module on a tiny config.
    expect(p.size).toBe(196);
    expect(n).toBe(704_688_668);
    const shape = (k: string) => p.get(k)?.shape;
    expect(shape("encoder.conv_in.weight")).toEqual([160, 12, 3, 3, 3]);
    expect(shape("encoder.down_blocks.0.resnets.0.conv1.weight")).toEqual([160, 160, 3, 3, 3]);
    expect(shape("encoder.down_blocks.0.downsampler.resample.1.weight")).toEqual([160, 160, 3, 3]);
    expect(p.has("encoder.down_blocks.0.downsampler.time_conv.weight")).toBe(false);
    expect(shape("encoder.down_blocks.1.resnets.0.conv_shortcut.weight")).toEqual([320, 160, 1, 1, 1]);
    expect(shape("encoder.down_blocks.1.downsampler.time_conv.weight")).toEqual([320, 320, 3, 1, 1]);
    expect(p.has("encoder.down_blocks.3.downsampler.resample.1.weight")).toBe(false);
    expect(shape("encoder.conv_out.weight")).toEqual([96, 640, 3, 3, 3]);
    expect(shape("quant_conv.weight")).toEqual([96, 96, 1, 1, 1]);
    expect(shape("post_quant_conv.weight")).toEqual([48, 48, 1, 1, 1]);
    expect(shape("decoder.conv_in.weight")).toEqual([1024, 48, 3, 3, 3]);
    expect(shape("decoder.mid_block.attentions.0.to_qkv.weight")).toEqual([3072, 1024, 1, 1]);
    expect(shape("decoder.up_blocks.0.upsampler.time_conv.weight")).toEqual([2048, 1024, 3, 1, 1]);
    expect(shape("decoder.up_blocks.0.upsampler.resample.1.weight")).toEqual([1024, 1024, 3, 3]);
    expect(shape("decoder.up_blocks.2.resnets.0.conv_shortcut.weight")).toEqual([512, 1024, 1, 1, 1]);
    expect(p.has("decoder.up_blocks.2.upsampler.time_conv.weight")).toBe(false);
    expect(shape("decoder.up_blocks.3.resnets.2.conv2.weight")).toEqual([256, 256, 3, 3, 3]);
    expect(p.has("decoder.up_blocks.3.upsampler.resample.1.weight")).toBe(false);
    expect(shape("decoder.conv_out.weight")).toEqual([12, 256, 3, 3, 3]);
  });

  it("accepts the published config and rejects shortcuts that cannot regroup", () => {
    expect(() => validateWanVaeConfig(WAN22_VAE)).not.toThrow();
    expect(() =>
      validateWanVaeConfig({ ...WAN22_VAE, decoder_base_dim: 100, dim_mult: [1, 3, 4, 4] }),
    ).toThrow(/shortcut cannot map/);
    expect(() => validateWanVaeConfig({ ...WAN22_VAE, in_channels: 3 })).toThrow(/in_channels 3/);
  });
});

describe("Wan2.2 VAE shortcuts and patchify", () => {
  it("patchify puts pixel (2h + dh, 2w + dw) of channel c at channel 4c + 2dw + dh; unpatchify inverts it", async () => {
    const x = randn([1, 2, 4, 6, 3], { seed: 3 });
    const p = patchify(x, 2);
    expect(p.shape).toEqual([1, 2, 2, 3, 12]);
    const xs = await values(x);
    const ps = await values(p);
    const at = (t: number, h: number, w: number, c: number) => xs[((t * 4 + h) * 6 + w) * 3 + c];
    expect(ps[((1 * 2 + 1) * 3 + 2) * 12 + 4 * 2 + 2 * 1 + 0]).toBe(at(1, 2, 5, 2));
    expect(ps[((0 * 2 + 0) * 3 + 1) * 12 + 4 * 1 + 2 * 0 + 1]).toBe(at(0, 1, 2, 1));
    const back = unpatchify(p, 2);
    expect(maxAbsDiff(await values(back), xs)).toBe(0);
    for (const t of [x, p, back]) t.dispose();
  });

  it("AvgDown3D averages channel groups of (dt, dh, dw) blocks, zero-padding time in front", async () => {
    // cin 2, cout 4, ft 2, fs 2: factor 8, groups of 4 = (c, dt) over the 2×2 pixels.
    const x = randn([1, 3, 2, 2, 2], { seed: 4 });
    const y = avgDown3d(x, { kind: "avgdown", cin: 2, cout: 4, ft: 2, fs: 2 });
    expect(y.shape).toEqual([1, 2, 1, 1, 4]);
    const xs = await values(x);
    const ys = await values(y);
    const at = (t: number, h: number, w: number, c: number) =>
      t < 0 ? 0 : (xs[((t * 2 + h) * 2 + w) * 2 + c] as number);
    for (let tt = 0; tt < 2; tt++)
      for (let o = 0; o < 4; o++) {
        const c = o >> 1;
        const dt = o & 1;
        let s = 0;
        for (let dh = 0; dh < 2; dh++) for (let dw = 0; dw < 2; dw++) s += at(2 * tt + dt - 1, dh, dw, c);
        expect(ys[tt * 4 + o]).toBeCloseTo(s / 4, 6);
      }
    x.dispose();
    y.dispose();
  });

  it("DupUp3D repeats channels over (dt, dh, dw) blocks and drops the first chunk's leading frame", async () => {
    // cin 4, cout 2, ft 1, fs 2: r = 2, output channel o at (dh, dw) is input 2o + dh.
    const x = randn([1, 1, 1, 1, 4], { seed: 5 });
    const y = dupUp3d(x, { kind: "dupup", cin: 4, cout: 2, ft: 1, fs: 2 }, false);
    expect(y.shape).toEqual([1, 1, 2, 2, 2]);
    const xs = await values(x);
    const ys = await values(y);
    for (let dh = 0; dh < 2; dh++)
      for (let dw = 0; dw < 2; dw++)
        for (let o = 0; o < 2; o++) expect(ys[(dh * 2 + dw) * 2 + o]).toBe(xs[2 * o + dh]);
    const z = randn([1, 2, 1, 1, 3], { seed: 6 });
    const first = dupUp3d(z, { kind: "dupup", cin: 3, cout: 3, ft: 2, fs: 2 }, true);
    expect(first.shape).toEqual([1, 3, 2, 2, 3]);
    for (const t of [x, y, z, first]) t.dispose();
  });
});

describe("WanVAE, Wan2.2 form (tiny random config)", () => {
  const tiny = useTinyVae(WAN22_VAE_TINY, [1, 9, 32, 48, 3]); // latent [1, 3, 2, 3, 8]
  let vae: WanVAE;
  let video: Tensor;
  let latent: Tensor;
  let decoded: Tensor;
  beforeAll(() => {
    ({ vae, video, latent, decoded } = tiny);
  });

  it("maps [B, 1 + 4k, H, W, 3] to [B, 1 + k, H/16, W/16, z] and back", async () => {
    expect(vae.spatialFactor).toBe(16);
    expect(vae.temporalFactor).toBe(4);
    expect(latent.shape).toEqual([1, 3, 2, 3, 8]);
    expect(decoded.shape).toEqual([1, 9, 32, 48, 3]);
    expect((await values(latent)).every(Number.isFinite)).toBe(true);
    expect((await values(decoded)).every((v) => v >= -1 && v <= 1)).toBe(true);
  });

  it("chunked encode and decode equal the whole clip at once", async () => {
    const we = vae.encodeWhole(video);
    expect(maxAbsDiff(await values(latent), await values(we))).toBeLessThan(1e-5);
    const wd = vae.decodeWhole(latent);
    expect(maxAbsDiff(await values(decoded), await values(wd))).toBeLessThan(1e-5);
    we.dispose();
    wd.dispose();
  });

  it("is causal: a prefix of the latents decodes to a prefix of the video", async () => {
    const { slice } = await import("@tessera/native");
    const head = slice(latent, 1, 0, 2);
    const part = vae.decode(head);
    expect(part.shape).toEqual([1, 5, 32, 48, 3]);
    const full = slice(decoded, 1, 0, 5);
    expect(maxAbsDiff(await values(part), await values(full))).toBeLessThan(1e-5);
    for (const t of [head, part, full]) t.dispose();
  });

  it("decodes in tiles: one tile covering the frame is the untiled decode", async () => {
    const one = vae.decode(latent, { tile: { size: 4, overlap: 1 } });
    expect(maxAbsDiff(await values(one), await values(decoded))).toBeLessThan(1e-6);
    const many = vae.decode(latent, { tile: { size: 2, overlap: 1 } });
    expect(many.shape).toEqual(decoded.shape);
    one.dispose();
    many.dispose();
  });
});

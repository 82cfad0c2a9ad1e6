// The Wan2.2 TI2V trait of WanPipeline (ti2v.ts) on the tiny TI2V member: defaults,
// the folder flag, and image-to-video holding the first latent frame clean with its
// tokens at timestep 0. The numbers against the reference loop are the golden
// pipeline fixture's (golden/).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { liveTensorCount, slice, type Tensor } from "@tessera/native";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testImage } from "../testing/test-image.js";
import {
  pixelsToTensor,
  randomWanComponents,
  readModelFolder,
  WanPipeline,
  writeRandomWanModel,
} from "./index.js";
import { stepTime } from "./ti2v.js";

async function values(t: Tensor): Promise<number[]> {
  return Array.from(await t.toFloat32Array());
}

const small = { width: 32, height: 32, frames: 9, steps: 3 };

describe("stepTime", () => {
  it("gives known token frames timestep 0 only with per-token timesteps", () => {
    expect(stepTime(900, false, 1, 3, 1)).toBe(900);
    expect(stepTime(900, true, 0, 3, 1)).toBe(900);
    expect(stepTime(900, true, 1, 3, 1)).toEqual([0, 900, 900]);
    expect(() => stepTime(900, true, 1, 3, 2)).toThrow(/whole token frames/);
  });
});

describe("WanPipeline with the TI2V trait (tiny random TI2V model)", () => {
  let pipe: WanPipeline;
  let base = 0;
  beforeAll(() => {
    base = liveTensorCount();
    pipe = new WanPipeline(randomWanComponents({ config: "tiny-ti2v", seed: 7 }));
  });
  afterAll(() => {
    pipe.dispose();
    expect(liveTensorCount()).toBe(base);
  });

  it("defaults to TI2V-5B's 1280×704, 121 frames at 24 fps unless the folder says otherwise", () => {
    const c = randomWanComponents({ config: "tiny-ti2v", seed: 1 });
    const p = new WanPipeline({ ...c, defaults: {} });
    expect(p.expandTimesteps).toBe(true);
    expect(p.defaults).toMatchObject({ width: 1280, height: 704, frames: 121, fps: 24 });
    expect(p.limits.sideMultiple).toBe(32);
    p.dispose();
    expect(pipe.defaults.width).toBe(128);
  });

  it("text-to-video: [1, 1 + (T − 1)/4, H/16, W/16, 8] latents and a video of the asked size", async () => {
    const r = await pipe.generate({ prompt: "a red ball", seed: 3, ...small });
    expect(r.latents.shape).toEqual([1, 3, 2, 2, 8]);
    expect(r.video.shape).toEqual([1, 9, 32, 32, 3]);
    expect((await values(r.latents)).every(Number.isFinite)).toBe(true);
    r.video.dispose();
    r.latents.dispose();
  });

  it("image-to-video holds the first latent frame at the clean encoded image, unlike the noised rule", async () => {
    const image = { width: 32, height: 32, data: testImage(32, 32) };
    const r = await pipe.generate({ prompt: "a red ball", image, seed: 8, ...small });
    const px = pixelsToTensor([image.data], 32, 32, 32, 32, { device: "cpu", dtype: "f32" });
    const enc = pipe.vae.encode(px);
    const first = slice(r.latents, 1, 0, 1);
    expect(await values(first)).toEqual(await values(enc));
    // The same weights under the other models' rule (noised known frame, every token at t)
    // generate other frames.
    const plain = new WanPipeline({
      ...randomWanComponents({ config: "tiny-ti2v", seed: 7 }),
      expandTimesteps: false,
    });
    const q = await plain.generate({ prompt: "a red ball", image, seed: 8, ...small });
    const ra = slice(r.latents, 1, 1, 3);
    const qa = slice(q.latents, 1, 1, 3);
    const a = await values(ra);
    const b = await values(qa);
    expect(a.some((v, i) => Math.abs(v - (b[i] as number)) > 1e-4)).toBe(true);
    for (const t of [px, enc, first, ra, qa, r.video, r.latents, q.video, q.latents]) t.dispose();
    plain.dispose();
  });

  it("extension holds the clip's encoded tail clean (two known latent frames at timestep 0)", async () => {
    const frames = Array.from({ length: 13 }, () => testImage(32, 32));
    const video = { width: 32, height: 32, frames, fps: 8 };
    const r = await pipe.generate({
      prompt: "a dog",
      seed: 12,
      video,
      extend: true,
      contextFrames: 5,
      ...small,
      frames: 13,
    });
    const tail = pixelsToTensor(frames.slice(8), 32, 32, 32, 32, { device: "cpu", dtype: "f32" });
    const enc = pipe.vae.encode(tail);
    const head = slice(r.latents, 1, 0, 2);
    expect(await values(head)).toEqual(await values(enc));
    for (const t of [tail, enc, head, r.video, r.latents]) t.dispose();
  });

  it("writes and reads a TI2V folder: expand_timesteps in model_index.json turns the trait on", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tessera-ti2v-"));
    try {
      await writeRandomWanModel(dir, { config: "tiny-ti2v", seed: 2 });
      const info = await readModelFolder(dir);
      expect(info.expandTimesteps).toBe(true);
      expect(info.vae.is_residual).toBe(true);
      expect(info.vae.patch_size).toBe(2);
      const loaded = await WanPipeline.load(dir);
      expect(loaded.expandTimesteps).toBe(true);
      expect(loaded.vae.spatialFactor).toBe(16);
      loaded.dispose();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

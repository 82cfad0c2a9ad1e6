// The bundled demo model (models/tessera-world): it loads, fits its size budget,
// the engine's sampler equals the trainer's on the exported weights, and the
// conditioning modes (image-to-video, extension, looping) work with it.
import { statSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { slice } from "@tessera/native";
import { maxAbsError } from "@tessera/native/testing";
import { afterAll, beforeAll, describe, expect, onTestFinished, test } from "vitest";
import { parseCaption } from "../caption/caption.js";
import { framesFromTensor } from "../video/tensor.js";
import { decodeToF32Host, SafetensorsFile } from "../weights/safetensors.js";
import { worldClip } from "../world/export.js";
import { scoreClip } from "../world/score.js";
import { DEMO_MODEL_DIR, hasDemoModel } from "./demo-model.js";
import { readModelFolder } from "./load.js";
import { WanPipeline } from "./wan.js";

const FIXTURE = new URL("../../test-fixtures/demo-model/sampler.safetensors", import.meta.url).pathname;

async function folderBytes(dir: string): Promise<number> {
  let n = 0;
  for (const e of await readdir(dir, { withFileTypes: true }))
    n += e.isDirectory() ? await folderBytes(join(dir, e.name)) : statSync(join(dir, e.name)).size;
  return n;
}

async function f32(file: SafetensorsFile, name: string): Promise<Float32Array> {
  return decodeToF32Host(await file.readBytes(name), file.info(name), name);
}

// Mean absolute difference of two RGB8 frames, in 0..255.
function frameDiff(a: Uint8Array, b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs((a[i] as number) - (b[i] as number));
  return s / a.length;
}

describe.runIf(hasDemoModel())("bundled demo model", () => {
  let pipe: WanPipeline;
  beforeAll(async () => {
    pipe = await WanPipeline.load(DEMO_MODEL_DIR);
  });
  afterAll(() => pipe?.dispose());

  test("is a tessera-world model folder under 25 MB", async () => {
    const info = await readModelFolder(DEMO_MODEL_DIR);
    expect(info.captionStyle).toBe("tessera-world");
    expect(info.textLength).toBe(48);
    expect(info.defaults).toMatchObject({ width: 128, height: 128, frames: 17 });
    expect(await folderBytes(DEMO_MODEL_DIR)).toBeLessThan(25e6);
  });

  test("the engine's sampler equals the trainer's on the exported weights", async () => {
    const fx = await SafetensorsFile.open(FIXTURE);
    onTestFinished(() => fx.close());
    const meta = fx.metadata;
    const r = await pipe.generate({
      prompt: meta.prompt as string,
      seed: Number(meta.seed),
      steps: Number(meta.steps),
      guidance: Number(meta.guidance),
      scheduler: "euler",
      rewrite: false,
    });
    try {
      const want = await f32(fx, "latents");
      const got = await r.latents.toTypedArray();
      expect(r.latents.shape).toEqual(fx.info("latents").shape);
      // float32 engine vs the float64 reference over 8 guided steps.
      expect(maxAbsError(got as Float32Array, want)).toBeLessThan(
        2e-3 * maxAbsError(want, new Float32Array(want.length)),
      );
      const picks = JSON.parse(meta.frame_indices as string) as number[];
      const frames = await f32(fx, "frames");
      const per = frames.length / picks.length;
      for (const [k, t] of picks.entries()) {
        const f = slice(r.video, 1, t, t + 1);
        const px = (await f.toTypedArray()) as Float32Array;
        f.dispose();
        expect(maxAbsError(px, frames.subarray(k * per, (k + 1) * per))).toBeLessThan(1e-2);
      }
    } finally {
      r.video.dispose();
      r.latents.dispose();
    }
  });

  test("rewrites free text onto its captions and draws what they say", async () => {
    const r = await pipe.generate({ prompt: "red ball going right", seed: 1 });
    try {
      expect(r.prompt).toBe("a red circle moves to the right on the left on a black background");
      expect(r.rewrite?.filledDefaults).toEqual(["objects[0].position", "background"]);
      const video = await framesFromTensor(r.video);
      const s = scoreClip(video, parseCaption(r.prompt));
      expect(s.perAttribute.background).toBe(1);
      expect(s.perAttribute.colour).toBe(1);
    } finally {
      r.video.dispose();
      r.latents.dispose();
    }
  });

  test("image-to-video starts from the image and keeps its object", async () => {
    const clip = worldClip(11, 3, "train");
    const first = clip.video.frames[0] as Uint8Array;
    const r = await pipe.generate({
      prompt: clip.caption,
      image: { width: 128, height: 128, data: first },
      seed: 2,
    });
    try {
      const video = await framesFromTensor(r.video);
      expect(video.frames.length).toBe(17);
      // The first frame is the image through the VAE (a few levels of blur at edges).
      expect(frameDiff(video.frames[0] as Uint8Array, first)).toBeLessThan(6);
      const s = scoreClip(video, parseCaption(clip.caption));
      expect(s.perAttribute.background).toBe(1);
      expect(s.perAttribute.colour).toBeGreaterThan(0);
    } finally {
      r.video.dispose();
      r.latents.dispose();
    }
  });

  test("extension re-creates the end of the clip it continues", async () => {
    const clip = worldClip(11, 5, "train");
    const r = await pipe.generate({ prompt: clip.caption, video: clip.video, extend: true, seed: 3 });
    try {
      expect(r.contextFrames).toBeGreaterThan(0);
      const video = await framesFromTensor(r.video);
      const n = clip.video.frames.length;
      for (let i = 0; i < r.contextFrames; i++)
        expect(
          frameDiff(video.frames[i] as Uint8Array, clip.video.frames[n - r.contextFrames + i] as Uint8Array),
        ).toBeLessThan(8);
    } finally {
      r.video.dispose();
      r.latents.dispose();
    }
  });

  test("interpolation starts on the first image and ends on the last", async () => {
    const clip = worldClip(11, 8, "train");
    const first = clip.video.frames[0] as Uint8Array;
    const last = clip.video.frames[16] as Uint8Array;
    const r = await pipe.generate({
      prompt: clip.caption,
      image: { width: 128, height: 128, data: first },
      endImage: { width: 128, height: 128, data: last },
      seed: 5,
    });
    try {
      const video = await framesFromTensor(r.video);
      expect(frameDiff(video.frames[0] as Uint8Array, first)).toBeLessThan(6);
      // The last latent frame holds the end image as a still: its last pixel frame shows it.
      expect(frameDiff(video.frames[16] as Uint8Array, last)).toBeLessThan(8);
    } finally {
      r.video.dispose();
      r.latents.dispose();
    }
  });

  test("a loop ends on the latent frame it began with", async () => {
    const r = await pipe.generate({
      prompt: "a green square bounces on a blue background",
      loop: true,
      seed: 4,
    });
    try {
      const f = r.latents.shape[1] as number;
      const a = slice(r.latents, 1, 0, 1);
      const b = slice(r.latents, 1, f - 1, f);
      expect(
        maxAbsError((await a.toTypedArray()) as Float32Array, (await b.toTypedArray()) as Float32Array),
      ).toBe(0);
      a.dispose();
      b.dispose();
      const video = await framesFromTensor(r.video);
      const s = scoreClip(video, parseCaption(r.prompt));
      expect(s.perAttribute.background).toBe(1);
    } finally {
      r.video.dispose();
      r.latents.dispose();
    }
  });
});

test.skipIf(hasDemoModel())("bundled demo model: skipped, models/tessera-world is missing", () => {});

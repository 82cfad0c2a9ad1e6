import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { concat, liveTensorCount, randn, slice, type Tensor } from "@tessera/native";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testImage } from "../testing/test-image.js";
import {
  AbortError,
  GenerateOptionError,
  type GenerateProgress,
  guidedVelocity,
  pixelsToTensor,
  randomWanComponents,
  readModelFolder,
  TextStateCache,
  WanPipeline,
  writeRandomWanModel,
} from "./index.js";

async function values(t: Tensor): Promise<number[]> {
  return Array.from(await t.toFloat32Array());
}

function maxAbsDiff(a: number[], b: number[]): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

const small = { width: 32, height: 32, frames: 9, steps: 4 };

describe("WanPipeline on tiny random models", () => {
  let pipe: WanPipeline;
  let base = 0;
  beforeAll(() => {
    base = liveTensorCount();
    pipe = new WanPipeline(randomWanComponents({ seed: 7 }));
  });
  afterAll(() => {
    pipe.dispose();
    expect(liveTensorCount()).toBe(base);
  });

  const dispose = (r: { video: Tensor; latents: Tensor }) => {
    r.video.dispose();
    r.latents.dispose();
  };

  it("generates a video of the requested size, deterministic per seed", async () => {
    const a = await pipe.generate({ prompt: "a red ball", seed: 1, ...small });
    expect(a.video.shape).toEqual([1, 9, 32, 32, 3]);
    expect(a.latents.shape).toEqual([1, 3, 4, 4, 4]);
    expect(a.seed).toBe(1);
    const b = await pipe.generate({ prompt: "a red ball", seed: 1, ...small });
    const c = await pipe.generate({ prompt: "a red ball", seed: 2, ...small });
    const va = await values(a.video);
    expect(va.every((x) => Number.isFinite(x) && x >= -1 && x <= 1)).toBe(true);
    expect(await values(b.video)).toEqual(va);
    expect(await values(b.latents)).toEqual(await values(a.latents));
    expect(maxAbsDiff(await values(c.latents), await values(a.latents))).toBeGreaterThan(1e-3);
    // The prompt matters too (the random text path is live).
    const d = await pipe.generate({ prompt: "a blue cat", seed: 1, ...small });
    expect(maxAbsDiff(await values(d.latents), await values(a.latents))).toBeGreaterThan(1e-5);
    for (const r of [a, b, c, d]) dispose(r);
  });

  it("reuses cached text states for repeated prompts", async () => {
    pipe.clearTextCache();
    const a = await pipe.generate({ prompt: "a  small   dog ", negativePrompt: "dark", seed: 3, ...small });
    expect(a.textCacheHits).toBe(0);
    // Whitespace is normalised before the cache lookup, as Wan cleans prompts.
    const b = await pipe.generate({ prompt: "a small dog", negativePrompt: "dark", seed: 3, ...small });
    expect(b.textCacheHits).toBe(2);
    expect(b.timings.text).toBeLessThan(a.timings.text + 5);
    expect(await values(b.latents)).toEqual(await values(a.latents));
    dispose(a);
    dispose(b);
    expect(pipe.textCacheSize).toBe(2);
  });

  it("runs classifier-free guidance as one batch of two equal to two separate branches", async () => {
    const cond = await pipe.encodeText("a red ball");
    const uncond = await pipe.encodeText("");
    const ctx = concat([cond, uncond], 0);
    const x = randn([1, 3, 4, 4, 4], { seed: 9 });
    const g = 5;
    const batched = guidedVelocity(pipe.transformer, x, 937, ctx, g);
    const vc = guidedVelocity(pipe.transformer, x, 937, cond, 1);
    const vu = guidedVelocity(pipe.transformer, x, 937, uncond, 1);
    const [c, u, b] = [await values(vc), await values(vu), await values(batched)];
    const combined = c.map((cv, i) => (u[i] as number) + g * (cv - (u[i] as number)));
    expect(maxAbsDiff(b, combined)).toBeLessThan(1e-4);
    // Guidance 1 is the conditional branch alone.
    const one = guidedVelocity(pipe.transformer, x, 937, ctx, 1);
    expect(maxAbsDiff(await values(one), c)).toBeLessThan(1e-5);
    for (const t of [cond, uncond, ctx, x, batched, vc, vu, one]) t.dispose();
  });

  it("at guidance 1 runs the conditional branch only and ignores the negative prompt", async () => {
    const a = await pipe.generate({
      prompt: "a red ball",
      negativePrompt: "x",
      guidance: 1,
      seed: 4,
      ...small,
    });
    const b = await pipe.generate({
      prompt: "a red ball",
      negativePrompt: "y",
      guidance: 1,
      seed: 4,
      ...small,
    });
    expect(await values(a.latents)).toEqual(await values(b.latents));
    dispose(a);
    dispose(b);
  });

  it("reports progress once per step", async () => {
    const seen: GenerateProgress[] = [];
    const r = await pipe.generate({
      prompt: "a cat",
      seed: 5,
      ...small,
      steps: 6,
      onProgress: (p) => seen.push(p),
    });
    expect(seen.map((p) => p.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(seen.every((p) => p.total === 6)).toBe(true);
    expect(seen.at(-1)?.eta).toBe(0);
    expect(seen.at(-1)?.sigma).toBe(0);
    for (let i = 1; i < seen.length; i++)
      expect((seen[i] as GenerateProgress).elapsed).toBeGreaterThanOrEqual(
        (seen[i - 1] as GenerateProgress).elapsed,
      );
    expect(r.stepsRun).toBe(6);
    dispose(r);
  });

  it("aborts between steps, throws AbortError and frees every tensor it made", async () => {
    pipe.clearTextCache();
    const before = liveTensorCount();
    const ac = new AbortController();
    const steps: number[] = [];
    const run = pipe.generate({
      prompt: "a bird flying",
      seed: 6,
      ...small,
      steps: 8,
      signal: ac.signal,
      onProgress: (p) => {
        steps.push(p.step);
        if (p.step === 3) ac.abort();
      },
    });
    await expect(run).rejects.toBeInstanceOf(AbortError);
    expect(steps).toEqual([1, 2, 3]);
    // Only the cached text states (prompt and negative prompt) outlive the run.
    expect(liveTensorCount()).toBe(before + pipe.textCacheSize);
    pipe.clearTextCache();
    expect(liveTensorCount()).toBe(before);
    // An already-aborted signal stops before any work.
    await expect(pipe.generate({ prompt: "x", ...small, signal: AbortSignal.abort() })).rejects.toThrow(
      AbortError,
    );
    expect(liveTensorCount()).toBe(before);
  });

  it("image-to-video keeps the first latent frame equal to the encoded image", async () => {
    const image = { width: 48, height: 40, data: testImage(48, 40) };
    const r = await pipe.generate({ prompt: "a red ball", image, seed: 8, ...small, steps: 5 });
    const px = pixelsToTensor([image.data], 48, 40, 32, 32, { device: "cpu", dtype: "f32" });
    const enc = pipe.vae.encode(px);
    const first = slice(r.latents, 1, 0, 1);
    expect(await values(first)).toEqual(await values(enc));
    // The rest is generated, not copied.
    const second = slice(r.latents, 1, 1, 2);
    expect(maxAbsDiff(await values(second), await values(enc))).toBeGreaterThan(1e-3);
    for (const t of [px, enc, first, second]) t.dispose();
    dispose(r);
  });

  it("video-to-video at strength 1 starts from the text-to-video noise; lower strength runs fewer steps", async () => {
    const frames = Array.from({ length: 9 }, (_, i) => testImage(32, 32, i));
    const video = { width: 32, height: 32, frames, fps: 8 };
    const t2v = await pipe.generate({ prompt: "a dog", seed: 11, ...small });
    const v2v = await pipe.generate({ prompt: "a dog", seed: 11, video, strength: 1, ...small });
    expect(await values(v2v.latents)).toEqual(await values(t2v.latents));
    const seen: number[] = [];
    const part = await pipe.generate({
      prompt: "a dog",
      seed: 11,
      video,
      strength: 0.5,
      ...small,
      steps: 10,
      onProgress: (p) => seen.push(p.total),
    });
    expect(part.stepsRun).toBe(5);
    expect(seen).toEqual([5, 5, 5, 5, 5]);
    // The input shows through: closer to the encoded clip than a text-to-video sample is.
    const px = pixelsToTensor(frames, 32, 32, 32, 32, { device: "cpu", dtype: "f32" });
    const encoded = pipe.vae.encode(px);
    const enc = await values(encoded);
    const dist = (a: number[]) => Math.sqrt(a.reduce((s, x, i) => s + (x - (enc[i] as number)) ** 2, 0));
    expect(dist(await values(part.latents))).toBeLessThan(dist(await values(t2v.latents)));
    px.dispose();
    encoded.dispose();
    for (const r of [t2v, v2v, part]) dispose(r);
  });

  it("extends a clip: the output starts with the clip's encoded tail", async () => {
    const frames = Array.from({ length: 13 }, (_, i) => testImage(32, 32, i * 2));
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
    expect(r.contextFrames).toBe(5);
    const tail = pixelsToTensor(frames.slice(8), 32, 32, 32, 32, { device: "cpu", dtype: "f32" });
    const enc = pipe.vae.encode(tail);
    const head = slice(r.latents, 1, 0, 2);
    expect(await values(head)).toEqual(await values(enc));
    for (const t of [tail, enc, head]) t.dispose();
    dispose(r);
  });

  it("loops: the last latent frame equals the first", async () => {
    const r = await pipe.generate({ prompt: "a sun", seed: 13, loop: true, ...small });
    const first = slice(r.latents, 1, 0, 1);
    const last = slice(r.latents, 1, 2, 3);
    expect(await values(last)).toEqual(await values(first));
    for (const t of [first, last]) t.dispose();
    dispose(r);
  });

  it("samples with the Euler scheduler too", async () => {
    const a = await pipe.generate({ prompt: "a sun", seed: 13, scheduler: "euler", ...small });
    const b = await pipe.generate({ prompt: "a sun", seed: 13, scheduler: "unipc", ...small });
    expect(maxAbsDiff(await values(a.latents), await values(b.latents))).toBeGreaterThan(1e-4);
    dispose(a);
    dispose(b);
  });

  it("rejects bad options before allocating anything, naming the option", async () => {
    const before = liveTensorCount();
    const image = { width: 8, height: 8, data: testImage(8, 8) };
    const video = { width: 32, height: 32, frames: [testImage(32, 32)], fps: 8 };
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ width: 40 }, "width", /multiple of 16/],
      [{ height: 0 }, "height", /height/],
      [{ width: 8192 }, "width", /4096/],
      [{ frames: 10 }, "frames", /1 \+ 4k/],
      [{ frames: 0 }, "frames", /frames/],
      [{ steps: 0 }, "steps", /steps/],
      [{ steps: 2.5 }, "steps", /integer/],
      [{ guidance: -1 }, "guidance", /guidance/],
      [{ shift: 0 }, "shift", /shift/],
      [{ scheduler: "ddim" }, "scheduler", /unipc/],
      [{ seed: -1 }, "seed", /seed/],
      [{ strength: 0.5 }, "strength", /needs a video/],
      [{ video, strength: 0 }, "strength", /\(0, 1\]/],
      [{ video, frames: 9 }, "video", /1 frames/],
      [{ extend: true }, "extend", /needs a video/],
      [{ image, video }, "image", /not both/],
      [{ frames: 1, loop: true }, "loop", /loop/],
      [{ endImage: image, video }, "endImage", /cannot be combined with video/],
      [{ endImage: image, loop: true }, "endImage", /give one/],
      [{ endImage: image, frames: 1 }, "endImage", /at least 5/],
      [
        { video: { ...video, frames: Array(9).fill(testImage(32, 32)) }, strength: 0.05, steps: 10 },
        "strength",
        /no step/,
      ],
    ];
    for (const [opts, field, msg] of cases) {
      const err = await pipe.generate({ prompt: "x", ...small, ...opts }).catch((e) => e);
      expect(err, JSON.stringify(opts)).toBeInstanceOf(GenerateOptionError);
      expect((err as GenerateOptionError).field).toBe(field);
      expect((err as Error).message).toMatch(msg);
    }
    expect(liveTensorCount()).toBe(before);
  });
});

describe("model folders", () => {
  let dir = "";
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tessera-model-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("writes a random tiny model in the diffusers layout that loads and matches the in-memory model", async () => {
    const before = liveTensorCount();
    await writeRandomWanModel(dir, { seed: 21 });
    expect((await readdir(dir)).sort()).toEqual(
      [
        "model_index.json",
        "scheduler",
        "tessera.json",
        "text_encoder",
        "tokenizer",
        "transformer",
        "vae",
      ].sort(),
    );
    const info = await readModelFolder(dir);
    expect(info.scheduler).toEqual({ name: "unipc", shift: 5, numTrainTimesteps: 1000 });
    expect(info.transformer.in_channels).toBe(info.vae.z_dim);
    const loaded = await WanPipeline.load(dir, { device: "cpu" });
    const mem = new WanPipeline(randomWanComponents({ seed: 21 }));
    expect(loaded.defaults.width).toBe(mem.defaults.width);
    const a = await loaded.generate({ prompt: "a red ball", seed: 1, ...small });
    const b = await mem.generate({ prompt: "a red ball", seed: 1, ...small });
    expect(await values(a.video)).toEqual(await values(b.video));
    for (const t of [a.video, a.latents, b.video, b.latents]) t.dispose();
    loaded.dispose();
    mem.dispose();
    expect(liveTensorCount()).toBe(before);
  });

  it("explains what is wrong with a folder that is not a model", async () => {
    await expect(WanPipeline.load(join(dir, "nope"))).rejects.toThrow(/no such model folder/);
    await expect(WanPipeline.load(join(dir, "vae"))).rejects.toThrow(/model_index\.json/);
    await expect(WanPipeline.load(dir, { device: "cpu", dtype: "bf16" })).rejects.toThrow(/f32 on the CPU/);
  });
});

describe("TextStateCache", () => {
  it("evicts the least recently used unpinned entry and frees it", async () => {
    const before = liveTensorCount();
    const cache = new TextStateCache(2);
    const make = (s: number) => () => randn([2], { seed: s });
    for (const k of ["a", "b"]) {
      await cache.acquire(k, make(1));
      cache.release(k);
    }
    await cache.acquire("a", make(9)); // touch a
    cache.release("a");
    await cache.acquire("c", make(3)); // evicts b
    expect(cache.size).toBe(2);
    expect((await cache.acquire("b", make(4))).hit).toBe(false);
    // c and b are pinned: a goes, and the cache may not shrink below its pins.
    expect(cache.size).toBe(2);
    cache.release("c");
    cache.release("b");
    cache.clear();
    expect(liveTensorCount()).toBe(before);
  });
});

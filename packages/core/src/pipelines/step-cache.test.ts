// generate({ stepCache }) on a tiny random model: off by default and at threshold 0
// the same video as before, a large threshold skips steps, options are checked, and
// nothing leaks (also when aborted).
import { liveTensorCount, type Tensor } from "@tessera/native";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runRanks } from "../parallel/comm.js";
import { generateParallel } from "../parallel/generate.js";
import { AbortError, GenerateOptionError, randomWanComponents, WanPipeline } from "./index.js";

async function values(t: Tensor): Promise<number[]> {
  return Array.from(await t.toFloat32Array());
}

const small = { width: 32, height: 32, frames: 9, steps: 6 };

describe("generate with step caching", () => {
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

  it("is off by default; false and threshold 0 give the same video, every step in full", async () => {
    const before = liveTensorCount() - pipe.textCacheSize;
    const a = await pipe.generate({ prompt: "a red ball", seed: 1, ...small });
    expect(a.fullSteps).toBe(6);
    expect(a.stepsRun).toBe(6);
    const off = await pipe.generate({ prompt: "a red ball", seed: 1, ...small, stepCache: false });
    const zero = await pipe.generate({ prompt: "a red ball", seed: 1, ...small, stepCache: 0 });
    expect(zero.fullSteps).toBe(6);
    const va = await values(a.latents);
    expect(await values(off.latents)).toEqual(va);
    expect(await values(zero.latents)).toEqual(va);
    expect(await values(zero.video)).toEqual(await values(a.video));
    for (const r of [a, off, zero]) dispose(r);
    expect(liveTensorCount()).toBe(before + pipe.textCacheSize);
  });

  it("skips steps under a large threshold and still makes a valid video (first and last steps in full)", async () => {
    const before = liveTensorCount() - pipe.textCacheSize;
    const ref = await pipe.generate({ prompt: "a red ball", seed: 2, ...small });
    const fast = await pipe.generate({ prompt: "a red ball", seed: 2, ...small, stepCache: 10 });
    // Step 0 has nothing to compare with and the last is forced; every other step reuses.
    expect(fast.fullSteps).toBe(2);
    expect(fast.stepsRun).toBe(6);
    expect(fast.video.shape).toEqual(ref.video.shape);
    const v = await values(fast.video);
    expect(v.every((x) => Number.isFinite(x) && x >= -1 && x <= 1)).toBe(true);
    expect(await values(fast.latents)).not.toEqual(await values(ref.latents));
    // With guidance 1 (one branch, batch 1) and for video-to-video too.
    const one = await pipe.generate({ prompt: "a red ball", seed: 2, ...small, guidance: 1, stepCache: 10 });
    expect(one.fullSteps).toBe(2);
    const v2v = await pipe.generate({
      prompt: "a red ball",
      seed: 2,
      ...small,
      video: ref.video,
      strength: 0.7,
      stepCache: 10,
    });
    expect(v2v.stepsRun).toBe(4);
    expect(v2v.fullSteps).toBe(2);
    for (const r of [ref, fast, one, v2v]) dispose(r);
    expect(liveTensorCount()).toBe(before + pipe.textCacheSize);
  });

  it("frees every tensor when aborted mid-run", async () => {
    const before = liveTensorCount() - pipe.textCacheSize;
    const ac = new AbortController();
    await expect(
      pipe.generate({
        prompt: "a red ball",
        seed: 3,
        ...small,
        stepCache: 10,
        signal: ac.signal,
        onProgress: (p) => {
          if (p.step === 3) ac.abort();
        },
      }),
    ).rejects.toThrow(AbortError);
    expect(liveTensorCount()).toBe(before + pipe.textCacheSize);
  });

  it("checks the option, naming stepCache", async () => {
    for (const bad of [-0.1, Number.NaN, Number.POSITIVE_INFINITY, 11, true, "0.1", null]) {
      const err = (() => {
        try {
          pipe.resolve({ prompt: "x", ...small, stepCache: bad as never });
        } catch (e) {
          return e;
        }
        return null;
      })();
      expect(err, String(bad)).toBeInstanceOf(GenerateOptionError);
      expect((err as GenerateOptionError).field).toBe("stepCache");
      expect((err as Error).message).toMatch(/stepCache/);
    }
    expect(pipe.resolve({ prompt: "x", ...small }).stepCache).toBe(false);
    expect(pipe.resolve({ prompt: "x", ...small, stepCache: false }).stepCache).toBe(false);
    expect(pipe.resolve({ prompt: "x", ...small, stepCache: 0.1 }).stepCache).toBe(0.1);
    await expect(pipe.generate({ prompt: "x", ...small, stepCache: -1 })).rejects.toThrow(
      GenerateOptionError,
    );
    // Multi-GPU generation does not cache steps: it says so rather than ignoring the option.
    await expect(
      runRanks(1, (comm) => generateParallel(pipe, comm, { prompt: "x", seed: 1, ...small, stepCache: 0.1 })),
    ).rejects.toThrow(/stepCache/);
  });
});

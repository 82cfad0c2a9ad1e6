// generate({ stepCache }) on a tiny random model: off by default and at threshold 0
// the same video as before, a large threshold skips steps, options are checked, and
// nothing leaks (also when aborted).
import { liveTensorCount, type Tensor } from "@tessera/native";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runRanks } from "../parallel/comm.js";
import { AbortError, GenerateOptionError, randomWanComponents, WanPipeline } from "./index.js";
import { generateParallel } from "./parallel-generate.js";

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
  });

  it("runs per rank under a parallel plan: every rank takes one device's decisions and gives its video", async () => {
    const before = liveTensorCount() - pipe.textCacheSize;
    const relErr = (a: number[], b: number[]) => {
      let num = 0;
      let den = 0;
      for (let i = 0; i < b.length; i++) {
        num = Math.max(num, Math.abs((a[i] as number) - (b[i] as number)));
        den = Math.max(den, Math.abs(b[i] as number));
      }
      return num / den;
    };
    // Threshold 1.2 reuses some middle steps and not others (its decisions hold from
    // 0.9 to 1.5 on this model and size), 10 every middle step. Guidance 5 splits the
    // branches over 2 ranks (cfg), guidance 1 the tokens (Ulysses); ring splits the
    // tokens, and on 4 ranks pads this run's 18 tokens to 24 (the last rank holds only
    // padding, which the cache's sums must leave out). 1 rank is one device.
    for (const [guidance, stepCache, fullSteps] of [
      [5, 1.2, 4],
      [5, 10, 2],
      [1, 1.2, 4],
    ] as const) {
      const run = { prompt: "a red ball", seed: 4, ...small, height: 48, guidance, stepCache };
      const ref = await pipe.generate(run);
      expect(ref.fullSteps).toBe(fullSteps);
      const want = await values(ref.latents);
      const wantVideo = await values(ref.video);
      for (const [n, strategy] of [
        [1, "auto"],
        [2, "auto"],
        [2, "ring"],
        [4, "auto"],
      ] as const) {
        const outs = await runRanks(n, (comm) => generateParallel(pipe, comm, { ...run, strategy }));
        for (const o of outs) {
          const what = `guidance ${guidance}, stepCache ${stepCache}, ${n} rank(s), ${strategy}`;
          expect(o.fullSteps, what).toBe(fullSteps);
          expect(relErr(await values(o.latents), want), what).toBeLessThan(1e-4);
          expect(relErr(await values(o.video), wantVideo), what).toBeLessThan(1e-4);
        }
        for (const o of outs) dispose(o);
      }
      dispose(ref);
    }
    expect(liveTensorCount()).toBe(before + pipe.textCacheSize);
  });
});

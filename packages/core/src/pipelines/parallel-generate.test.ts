import { liveTensorCount, randn, type Tensor } from "@tessera/native";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collectiveComm } from "../parallel/collective.js";
import { InProcessGroup, runRanks } from "../parallel/comm.js";
import { type ParallelStrategy, parallelPlan, pickStrategy } from "../parallel/plan.js";
import { maxRelErr } from "../testing/compare.js";
import { randomWanComponents } from "./model-folder.js";
import type { GenerateOptions } from "./options.js";
import { generateParallel } from "./parallel-generate.js";
import { type GenerateResult, WanPipeline } from "./wan.js";

function dispose(r: GenerateResult): void {
  r.video.dispose();
  r.latents.dispose();
}

describe("pickStrategy", () => {
  it("takes cfg for 2 ranks with guidance, else Ulysses where the heads divide, else ring", () => {
    expect(pickStrategy(2, 5, 12)).toBe("cfg");
    expect(pickStrategy(2, 1, 12)).toBe("ulysses");
    expect(pickStrategy(4, 5, 12)).toBe("ulysses");
    expect(pickStrategy(8, 5, 12)).toBe("ring");
    expect(pickStrategy(8, 5, 40)).toBe("ulysses");
  });
});

describe("multi-rank text-to-video (tiny random model, in-process ranks)", () => {
  let before = 0;
  let pipe: WanPipeline;
  let ref: GenerateResult;
  // 48x32 → a 6x4 latent (4 rows: one per rank at 4 ranks); 5 frames → 2 latent frames.
  const opts = {
    prompt: "a red ball bounces",
    width: 48,
    height: 32,
    frames: 5,
    steps: 3,
    guidance: 5,
    seed: 7,
  };

  beforeAll(async () => {
    before = liveTensorCount();
    pipe = new WanPipeline(randomWanComponents({ seed: 3 }));
    ref = await pipe.generate(opts);
  });

  afterAll(() => {
    dispose(ref);
    pipe.dispose();
    expect(liveTensorCount()).toBe(before);
  });

  const cases: [number, ParallelStrategy | "auto"][] = [
    [1, "auto"],
    [2, "auto"],
    [2, "ulysses"],
    [2, "ring"],
    [4, "auto"],
  ];
  for (const [n, strategy] of cases)
    it(`${n} rank(s), strategy ${strategy}: the same video as one device`, async () => {
      const outs = await runRanks(n, (comm) => generateParallel(pipe, comm, { ...opts, strategy }));
      for (const o of outs) {
        expect(o.video.shape).toEqual(ref.video.shape);
        expect(await maxRelErr(o.latents, ref.latents)).toBeLessThan(1e-4);
        expect(await maxRelErr(o.video, ref.video)).toBeLessThan(1e-4);
        expect(o.seed).toBe(7);
        expect(o.stepsRun).toBe(3);
      }
      for (const o of outs) dispose(o);
    });

  it("the same through NCCL's layout code (2 ranks, Ulysses), with progress on every rank", async () => {
    const steps: number[][] = [[], []];
    const outs = await runRanks(
      2,
      (comm) =>
        generateParallel(pipe, comm, {
          ...opts,
          strategy: "ulysses",
          onProgress: (p) => steps[comm.rank]?.push(p.step),
        }),
      collectiveComm,
    );
    for (const o of outs) expect(await maxRelErr(o.video, ref.video)).toBeLessThan(1e-4);
    expect(steps).toEqual([
      [1, 2, 3],
      [1, 2, 3],
    ]);
    for (const o of outs) dispose(o);
  });

  it("needs a seed and a strategy that fits", async () => {
    const { seed: _, ...noSeed } = opts;
    await expect(runRanks(2, (comm) => generateParallel(pipe, comm, noSeed))).rejects.toThrow(/pass a seed/);
    await expect(
      runRanks(4, (comm) => generateParallel(pipe, comm, { ...opts, strategy: "cfg" })),
    ).rejects.toThrow(/cfg strategy needs 2 ranks/);
    await expect(
      runRanks(2, (comm) => generateParallel(pipe, comm, { ...opts, guidance: 1, strategy: "cfg" })),
    ).rejects.toThrow(/cfg strategy needs 2 ranks and guidance > 1, got 2 rank\(s\) and guidance 1/);
    // 3 ranks do not divide the tiny model's heads; ring attention takes any count.
    const heads = pipe.transformer.config.num_attention_heads;
    if (heads % 3 !== 0)
      await expect(
        runRanks(3, (comm) => generateParallel(pipe, comm, { ...opts, strategy: "ulysses" })),
      ).rejects.toThrow(
        new RegExp(`${heads} attention heads are not divisible by 3 ranks; use the ring strategy`),
      );
    // 8 ranks cannot split the decode of a 4-row latent.
    await expect(
      runRanks(8, (comm) => generateParallel(pipe, comm, { ...opts, strategy: "ring" })),
    ).rejects.toThrow(/splits 4 latent rows .* over 8 ranks/);
  });

  it("through the plan directly: the same video, and one rank is the single-device plan", async () => {
    const outs = await runRanks(2, (comm) => pipe.generate(opts, parallelPlan(comm, { strategy: "ring" })));
    for (const o of outs) expect(await maxRelErr(o.video, ref.video)).toBeLessThan(1e-4);
    for (const o of outs) dispose(o);
    const [one] = await runRanks(1, async (comm) => {
      expect(parallelPlan(comm).comm).toBeNull();
      return pipe.generate(opts, parallelPlan(comm));
    });
    expect(await maxRelErr((one as GenerateResult).video, ref.video)).toBe(0);
    dispose(one as GenerateResult);
    expect(() => parallelPlan(new InProcessGroup(2).comm(0), { strategy: "tree" as never })).toThrow(
      /unknown strategy 'tree'/,
    );
  });
});

describe("multi-rank image-to-video, extension, video-to-video, loop and end image (tiny random model)", () => {
  let before = 0;
  let pipe: WanPipeline;
  let image: Tensor;
  let clip: Tensor;
  // 9 frames → 3 latent frames: one known (the image), one free, one held by the loop or the end image.
  const opts = {
    prompt: "a red ball bounces",
    width: 48,
    height: 32,
    frames: 9,
    steps: 3,
    guidance: 5,
    seed: 11,
  };

  beforeAll(() => {
    before = liveTensorCount();
    pipe = new WanPipeline(randomWanComponents({ seed: 3 }));
    image = randn([1, 1, 32, 48, 3], { seed: 5 });
    clip = randn([1, 9, 32, 48, 3], { seed: 6 });
  });

  afterAll(() => {
    image.dispose();
    clip.dispose();
    pipe.dispose();
    expect(liveTensorCount()).toBe(before);
  });

  const runs: [string, () => Partial<GenerateOptions>][] = [
    ["image-to-video", () => ({ image })],
    ["a loop", () => ({ loop: true })],
    ["image-to-video looped", () => ({ image, loop: true })],
    ["image to an end image", () => ({ image, endImage: image })],
    ["an extension", () => ({ video: clip, extend: true })],
    ["video-to-video", () => ({ video: clip, strength: 0.7 })],
  ];
  // The tiny model's 2 heads: auto is cfg on 2 ranks; 4 ranks pad 18 tokens to 24.
  for (const [label, extra] of runs)
    for (const [n, strategy] of [
      [2, "auto"],
      [2, "ulysses"],
      [4, "ring"],
    ] as const)
      it(`${label} over ${n} ranks (${strategy}) equals one device`, async () => {
        const run = { ...opts, ...extra() };
        const ref = await pipe.generate(run);
        const outs = await runRanks(n, (comm) => generateParallel(pipe, comm, { ...run, strategy }));
        for (const o of outs) {
          expect(o.video.shape).toEqual(ref.video.shape);
          expect(await maxRelErr(o.latents, ref.latents)).toBeLessThan(1e-4);
          expect(await maxRelErr(o.video, ref.video)).toBeLessThan(1e-4);
        }
        for (const o of [...outs, ref]) dispose(o);
      });
});

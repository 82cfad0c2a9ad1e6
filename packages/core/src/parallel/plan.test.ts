// The parallel plan: what planRun makes of a request, and the step cache's gather
// (each rank holding a share of the batch or of the tokens must measure the whole).
import { concat, full, liveTensorCount, randn, scope, slice, type Tensor } from "@tessera/native";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { WAN_TINY } from "../models/wan/config.js";
import { StepCache } from "../models/wan/step-cache.js";
import type { TokenGrid } from "../models/wan/transformer.js";
import { InProcessGroup, runRanks } from "./comm.js";
import { parallelPlan, planRun, SINGLE_DEVICE, stepCacheOptions, stepSplit } from "./plan.js";
import { tokenRun } from "./sequence.js";

let before = 0;
beforeEach(() => {
  before = liveTensorCount();
});
afterEach(() => {
  expect(liveTensorCount()).toBe(before);
});

const facts = { guidance: 5, heads: 4, latentRows: 8, seeded: true };

describe("planRun", () => {
  it("makes one device of the single-device plan and of one rank", () => {
    const trivial = { comm: null, guidance: "batch", tokens: "whole", vae: "whole" };
    expect(planRun(SINGLE_DEVICE, { ...facts, seeded: false })).toEqual(trivial);
    expect(planRun(parallelPlan(new InProcessGroup(1).comm(0)), facts)).toEqual(trivial);
    expect(stepSplit(planRun(SINGLE_DEVICE, facts), WAN_TINY)).toBeNull();
    expect(stepCacheOptions(planRun(SINGLE_DEVICE, facts), [1, 1, 1])).toEqual({});
  });

  it("splits what the strategy says, picking per run for auto", () => {
    const two = new InProcessGroup(2).comm(0);
    const four = new InProcessGroup(4).comm(1);
    expect(planRun(parallelPlan(two), facts)).toMatchObject({
      guidance: "ranks",
      tokens: "whole",
      vae: "rows",
    });
    expect(planRun(parallelPlan(two), { ...facts, guidance: 1 })).toMatchObject({
      guidance: "batch",
      tokens: "ulysses",
    });
    expect(planRun(parallelPlan(four, { strategy: "ring", vae: "whole" }), facts)).toMatchObject({
      guidance: "batch",
      tokens: "ring",
      vae: "whole",
    });
    expect(planRun(parallelPlan(four), { ...facts, heads: 6 })).toMatchObject({ tokens: "ring" });
  });

  it("says what does not fit", () => {
    const three = new InProcessGroup(3).comm(0);
    expect(() => planRun(parallelPlan(three), { ...facts, seeded: false })).toThrow(
      /over 3 ranks: pass a seed: every rank must draw the same noise/,
    );
    expect(() => planRun(parallelPlan(three, { strategy: "cfg" }), facts)).toThrow(
      /the cfg strategy needs 2 ranks and guidance > 1, got 3 rank\(s\) and guidance 5/,
    );
    expect(() => planRun(parallelPlan(three, { strategy: "ulysses" }), facts)).toThrow(
      /4 attention heads are not divisible by 3 ranks; use the ring strategy/,
    );
    expect(() => planRun(parallelPlan(three, { strategy: "ring" }), { ...facts, latentRows: 2 })).toThrow(
      /splits 2 latent rows \(the height \/ 8\) over 3 ranks/,
    );
    expect(
      planRun(parallelPlan(three, { strategy: "ring", vae: "whole" }), { ...facts, latentRows: 2 }).vae,
    ).toBe("whole");
  });
});

describe("the step cache under a plan", () => {
  async function distances(cache: StepCache, steps: Tensor[]): Promise<number[]> {
    for (const r of steps) await cache.observe(r);
    cache.dispose();
    return cache.distances;
  }

  it("measures the whole batch and the whole video on every rank, padding left out", async () => {
    const grid: TokenGrid = [3, 1, 2]; // 6 tokens; 4 ranks pad to 8 (2 each, the last only padding)
    const steps = (b: number) => [randn([b, 6, 8], { seed: 1 }), randn([b, 6, 8], { seed: 2 })];
    const whole = await distances(new StepCache(1), steps(2));
    expect(whole[1]).toBeGreaterThan(0);

    // Tokens split over 4 ranks (ring plan): each rank's share, then padding rows, which
    // (as after the transformer's first block) are not zero and must not count.
    const tokenDistances = await runRanks(4, async (comm) => {
      const run = planRun(parallelPlan(comm, { strategy: "ring", vae: "whole" }), facts);
      const share = tokenRun(grid, 4, comm.rank);
      const shares = steps(2).map((r) => {
        const s0 = Math.min(share.start, share.real);
        const e0 = Math.min(share.start + share.perRank, share.real);
        const mine = scope(() => {
          const pad = full([2, share.perRank - (e0 - s0), 8], 7 + comm.rank);
          return e0 > s0 ? concat([slice(r, 1, s0, e0), pad], 1) : pad;
        });
        r.dispose();
        return mine;
      });
      return distances(new StepCache(1, stepCacheOptions(run, grid)), shares);
    });
    for (const d of tokenDistances) {
      expect(Number.isNaN(d[0] as number)).toBe(true);
      expect(d[1]).toBeCloseTo(whole[1] as number, 5);
    }

    // Branches split over 2 ranks (cfg plan): rank r holds sample r.
    const branchDistances = await runRanks(2, async (comm) => {
      const run = planRun(parallelPlan(comm, { strategy: "cfg" }), facts);
      const mine = steps(2).map((r) => {
        const s = slice(r, 0, comm.rank, comm.rank + 1);
        r.dispose();
        return s;
      });
      return distances(new StepCache(1, stepCacheOptions(run, grid)), mine);
    });
    for (const d of branchDistances) expect(d[1]).toBeCloseTo(whole[1] as number, 5);

    // Without the gather, each rank measures only its share: not the whole's distance.
    const alone = await runRanks(2, async (comm) => {
      const mine = steps(2).map((r) => {
        const s = slice(r, 0, comm.rank, comm.rank + 1);
        r.dispose();
        return s;
      });
      return distances(new StepCache(1), mine);
    });
    expect(alone.map((d) => d[1])).not.toEqual([whole[1], whole[1]]);
  });
});

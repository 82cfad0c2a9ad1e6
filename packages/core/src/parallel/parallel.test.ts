import { full, liveTensorCount, randn, type Tensor } from "@tessera/native";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { WAN_TINY, type WanTransformerConfig } from "../models/wan/config.js";
import { randomWanTransformerWeights } from "../models/wan/params.js";
import { WanTransformer } from "../models/wan/transformer.js";
import { cfgParallelVelocity } from "../pipelines/parallel-generate.js";
import { guidedVelocity } from "../pipelines/wan.js";
import { maxRelErr as relErr } from "../testing/compare.js";
import { collectiveComm } from "./collective.js";
import { CommError, InProcessGroup, runRanks } from "./comm.js";
import { ringSelfAttention, sequenceSplit, tokenRun, ulyssesSelfAttention } from "./sequence.js";

// Four heads so that 2 and 4 ranks both divide them.
const CFG: WanTransformerConfig = { ...WAN_TINY, num_attention_heads: 4, attention_head_dim: 12 };

let before = 0;
beforeEach(() => {
  before = liveTensorCount();
});
afterEach(() => {
  expect(liveTensorCount()).toBe(before);
});

describe("InProcessGroup", () => {
  it("all-to-all, all-gather and ring shift move the right slices", async () => {
    for (const n of [1, 2, 3]) {
      const outs = await runRanks(n, async (comm) => {
        // Rank r holds rows r*2..r*2+1 of a [2n, 3n] matrix with value 100*row + col.
        const rows = Array.from({ length: 2 * 3 * n }, (_, i) => {
          const row = comm.rank * 2 + Math.floor(i / (3 * n));
          return 100 * row + (i % (3 * n));
        });
        const { Tensor } = await import("@tessera/native");
        const x = Tensor.from(rows, [2, 3 * n]);
        const a2a = await comm.allToAll(x, { splitDim: 1, concatDim: 0 }); // [2n, 3]: all rows, my cols
        const ag = await comm.allGather(x, 0); // [2n, 3n]
        const ring = await comm.ringShift(x);
        await comm.barrier();
        const res = {
          a2a: Array.from(await a2a.toFloat32Array()),
          a2aShape: a2a.shape,
          ag: Array.from(await ag.toFloat32Array()),
          ring: Array.from(await ring.toFloat32Array()),
        };
        for (const t of [x, a2a, ag, ring]) t.dispose();
        return res;
      });
      for (let r = 0; r < n; r++) {
        const o = outs[r] as (typeof outs)[number];
        expect(o.a2aShape).toEqual([2 * n, 3]);
        const want: number[] = [];
        for (let row = 0; row < 2 * n; row++) for (let c = 0; c < 3; c++) want.push(100 * row + r * 3 + c);
        expect(o.a2a).toEqual(want);
        const all: number[] = [];
        for (let row = 0; row < 2 * n; row++) for (let c = 0; c < 3 * n; c++) all.push(100 * row + c);
        expect(o.ag).toEqual(all);
        const from = (r - 1 + n) % n;
        expect(o.ring).toEqual(all.slice(from * 2 * 3 * n, (from + 1) * 2 * 3 * n));
      }
    }
  });

  it("rejects non-divisible splits and mismatched shapes, and aborts the other ranks", async () => {
    await expect(
      runRanks(2, async (comm) => {
        const x = full([3, 4], 1);
        try {
          return await comm.allToAll(x, { splitDim: 0, concatDim: 1 });
        } finally {
          x.dispose();
        }
      }),
    ).rejects.toThrow(/dim 0 of \[3, 4\] \(3\) is not divisible by the world size 2/);
    await expect(
      runRanks(2, async (comm) => {
        const x = full([2, comm.rank + 2], 1);
        try {
          return await comm.allToAll(x, { splitDim: 0, concatDim: 1 });
        } finally {
          x.dispose();
        }
      }),
    ).rejects.toThrow(CommError);
    // A rank that fails before a collective releases the ranks waiting in it.
    await expect(
      runRanks(3, async (comm) => {
        if (comm.rank === 1) throw new Error("rank 1 failed");
        await comm.barrier();
        return 0;
      }),
    ).rejects.toThrow("rank 1 failed");
    expect(() => new InProcessGroup(0)).toThrow(/positive integer/);
  });
});

describe("self-attention over token shards", () => {
  for (const n of [2, 4])
    it(`ring and Ulysses attention over ${n} ranks equal full attention with 3D RoPE`, async () => {
      const grid: [number, number, number] = [4, 3, 2];
      const len = 24;
      // Large logits, so the online softmax's running max matters.
      const q = randn([2, len, 4, 12], { seed: 11 });
      const k = randn([2, len, 4, 12], { seed: 12 });
      const v = randn([2, len, 4, 12], { seed: 13 });
      const { attention, affine, slice } = await import("@tessera/native");
      const q3 = affine(q, 3, 0);
      const ref = attention(q3, k, v, { grid, rope: true });
      for (const mode of ["ring", "ulysses"] as const) {
        const outs = await runRanks(n, async (comm) => {
          const lr = len / n;
          const [ql, kl, vl] = [q3, k, v].map((t) => slice(t, 1, comm.rank * lr, (comm.rank + 1) * lr)) as [
            Tensor,
            Tensor,
            Tensor,
          ];
          const o =
            mode === "ring"
              ? await ringSelfAttention(comm, ql, kl, vl, {
                  localGrid: [grid[0] / n, grid[1], grid[2]],
                  frameOffset: (comm.rank * grid[0]) / n,
                })
              : await ulyssesSelfAttention(comm, ql, kl, vl, grid);
          const all = await comm.allGather(o, 1);
          for (const t of [ql, kl, vl, o]) t.dispose();
          return all;
        });
        for (const o of outs) expect(await relErr(o, ref)).toBeLessThan(1e-5);
        for (const o of outs) o.dispose();
      }
      for (const t of [q, k, v, q3, ref]) t.dispose();
    });
});

describe("tokenRun", () => {
  it("gives every rank the same run of tokens, padding with whole frames at the end", () => {
    // 3 frames of 2x3 tokens: 18 tokens; 4 ranks pad to 4 frames (24 tokens, 6 each).
    expect([0, 1, 2, 3].map((r) => tokenRun([3, 2, 3], 4, r))).toEqual(
      [0, 6, 12, 18].map((start) => ({ start, perRank: 6, real: 18, paddedFrames: 4 })),
    );
    // 2 ranks divide 18 tokens: no padding.
    expect(tokenRun([3, 2, 3], 2, 1)).toEqual({ start: 9, perRank: 9, real: 18, paddedFrames: 3 });
    // Wan2.1 at 832x480x81 on 8 ranks: 21 frames of 30x52 tokens divide without padding.
    expect(tokenRun([21, 30, 52], 8, 7)).toEqual({
      start: 7 * 4095,
      perRank: 4095,
      real: 32760,
      paddedFrames: 21,
    });
  });
});

describe("sequence-parallel Wan transformer (tokens split)", () => {
  async function compare(
    n: number,
    shape: [number, number, number],
    mode: "ulysses" | "ring",
    batch = 1,
    comm?: typeof collectiveComm,
  ): Promise<number> {
    const weights = randomWanTransformerWeights(CFG, { seed: 5 });
    const model = new WanTransformer(CFG, weights);
    const latents = randn([batch, shape[0], shape[1], shape[2], 16], { seed: 1 });
    const context = randn([batch, 7, CFG.text_dim], { seed: 2 });
    const timesteps = full([batch], 700);
    const ref = model.forward({ latents, timesteps, context });
    const outs = await runRanks(
      n,
      (c) => model.forwardSplit({ latents, timesteps, context }, sequenceSplit(c, CFG, mode)),
      comm,
    );
    let err = 0;
    for (const o of outs) err = Math.max(err, await relErr(o, ref));
    for (const t of [...outs, ref, latents, context, timesteps]) t.dispose();
    weights.dispose();
    return err;
  }

  for (const n of [2, 4])
    for (const mode of ["ulysses", "ring"] as const)
      it(`${mode} over ${n} ranks, 4 frames: equals the one-device forward`, async () => {
        expect(await compare(n, [4, 4, 6], mode)).toBeLessThan(1e-5);
      });

  // 3 frames of a 2x3 token grid: 18 tokens; 4 ranks pad one whole frame (24 tokens, 6 each),
  // so the last rank holds only padding.
  for (const [n, mode, shape] of [
    [2, "ulysses", [3, 4, 6]],
    [2, "ring", [3, 4, 6]],
    [4, "ulysses", [3, 4, 6]],
    [4, "ring", [3, 4, 6]],
    [3, "ring", [3, 4, 6]],
    [3, "ring", [2, 4, 6]],
    [4, "ulysses", [1, 4, 6]],
  ] as const)
    it(`${mode} over ${n} ranks, latents ${shape.join("x")}: equals the one-device forward`, async () => {
      expect(await compare(n, [...shape], mode)).toBeLessThan(1e-5);
    });

  it("both guidance branches as a batch, through NCCL's layout code", async () => {
    expect(await compare(4, [3, 4, 6], "ulysses", 2, collectiveComm)).toBeLessThan(1e-5);
    expect(await compare(2, [3, 4, 6], "ring", 2, collectiveComm)).toBeLessThan(1e-5);
  });

  it("rejects heads not divisible by the world size for Ulysses", () => {
    const group = new InProcessGroup(3);
    expect(() => sequenceSplit(group.comm(0), CFG, "ulysses")).toThrow(
      /4 attention heads are not divisible by the world size 3/,
    );
    expect(() => sequenceSplit(group.comm(0), CFG, "ring")).not.toThrow();
  });
});

describe("guidance-parallel velocity", () => {
  it("equals the batch-of-two guidance", async () => {
    const weights = randomWanTransformerWeights(CFG, { seed: 7 });
    const model = new WanTransformer(CFG, weights);
    const latents = randn([1, 2, 4, 6, 16], { seed: 3 });
    const cond = randn([1, 7, CFG.text_dim], { seed: 4 });
    const uncond = randn([1, 7, CFG.text_dim], { seed: 5 });
    const { concat } = await import("@tessera/native");
    const both = concat([cond, uncond], 0);
    const ref = guidedVelocity(model, latents, 600, both, 5);
    const outs = await runRanks(2, (comm) =>
      cfgParallelVelocity(comm, model, latents, 600, comm.rank === 0 ? cond : uncond, 5),
    );
    for (const o of outs) expect(await relErr(o, ref)).toBeLessThan(1e-5);
    await expect(
      runRanks(3, (comm) => cfgParallelVelocity(comm, model, latents, 600, cond, 5)),
    ).rejects.toThrow(/needs a world of 2 ranks/);
    for (const t of [...outs, ref, latents, cond, uncond, both]) t.dispose();
    weights.dispose();
  });
});

// The NCCL layout code (CollectiveCommunicator) over in-process raw collectives:
// every collective must equal the in-process group's, and the parallel models must
// equal one device through it.
import { full, liveTensorCount, randn, Tensor } from "@tessera/native";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { WAN_TINY, type WanTransformerConfig } from "../models/wan/config.js";
import { randomWanTransformerWeights } from "../models/wan/params.js";
import { WanTransformer } from "../models/wan/transformer.js";
import { CollectiveCommunicator, collectiveComm, inProcessRaw } from "./collective.js";
import { CommError, type Communicator, InProcessGroup, runRanks } from "./comm.js";
import { sequenceSplit } from "./sequence.js";

const CFG: WanTransformerConfig = { ...WAN_TINY, num_attention_heads: 4, attention_head_dim: 12 };

let before = 0;
beforeEach(() => {
  before = liveTensorCount();
});
afterEach(() => {
  expect(liveTensorCount()).toBe(before);
});

async function values(t: Tensor): Promise<number[]> {
  const v = Array.from(await t.toFloat32Array());
  t.dispose();
  return v;
}

/** Rank r's tensor of `shape` with value 1000·r + flat index. */
function rankTensor(shape: number[], r: number): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return Tensor.from(
    Array.from({ length: n }, (_, i) => 1000 * r + i),
    shape,
  );
}

describe("in-process allReduce", () => {
  it("sums, maxes, mins and averages in rank order on every rank", async () => {
    const outs = await runRanks(3, async (comm) => {
      const x = Tensor.from([comm.rank, 0 - comm.rank, 2 * comm.rank + 1], [3]);
      const res: Record<string, number[]> = {};
      for (const op of ["sum", "max", "min", "avg"] as const)
        res[op] = await values(await comm.allReduce(x, op));
      x.dispose();
      return res;
    });
    for (const o of outs) {
      expect(o.sum).toEqual([3, -3, 9]);
      expect(o.max).toEqual([2, 0, 5]);
      expect(o.min).toEqual([0, -2, 1]);
      expect(o.avg?.map((v) => Math.round(v * 1e6) / 1e6)).toEqual([1, -1, 3]);
    }
  });
});

describe("CollectiveCommunicator (NCCL's layout) equals the in-process group", () => {
  // Each case: a collective run through both communicators on the same inputs.
  async function both<T>(n: number, fn: (comm: Communicator) => Promise<T>): Promise<[T[], T[]]> {
    const a = await runRanks(n, fn);
    const b = await runRanks(n, fn, collectiveComm);
    return [a, b];
  }

  for (const n of [1, 2, 3, 4])
    it(`all-to-all over every pair of dims, ${n} rank(s)`, async () => {
      const shape = [2, 12, 2 * n, 5];
      const [ref, got] = await both(n, async (comm) => {
        const res: number[][] = [];
        for (const sd of [1, 2])
          for (const cd of [0, 1, 2, 3]) {
            const x = rankTensor(shape, comm.rank);
            const y = await comm.allToAll(x, { splitDim: sd, concatDim: cd });
            res.push([...y.shape, ...(await values(y))]);
            x.dispose();
          }
        return res;
      });
      expect(got).toEqual(ref);
    });

  it("all-gather with shards of unequal length (and an empty one), any dim", async () => {
    const [ref, got] = await both(4, async (comm) => {
      const res: number[][] = [];
      for (const d of [0, 1, 2]) {
        const shape = [2, 3, 4];
        shape[d] = [3, 1, 0, 2][comm.rank] as number;
        const x = rankTensor(shape, comm.rank);
        const y = await comm.allGather(x, d);
        res.push([...y.shape, ...(await values(y))]);
        x.dispose();
      }
      return res;
    });
    expect(got).toEqual(ref);
  });

  it("ring shift, all-reduce and barrier", async () => {
    const [ref, got] = await both(3, async (comm) => {
      const x = rankTensor([2, 3], comm.rank);
      const r1 = await values(await comm.ringShift(x));
      const r2 = await values(await comm.ringShift(x, -1));
      const s = await values(await comm.allReduce(x, "sum"));
      const m = await values(await comm.allReduce(x, "max"));
      await comm.barrier();
      x.dispose();
      return [r1, r2, s, m];
    });
    expect(got).toEqual(ref);
  });

  it("a shape mismatch in all-gather is an error on every rank, not a hang", async () => {
    const group = new InProcessGroup(2);
    const comms = [0, 1].map((r) => new CollectiveCommunicator(inProcessRaw(group, r)));
    const xs = [full([2, 3], 1), full([2, 4], 1)];
    const res = await Promise.allSettled(comms.map((c, r) => c.allGather(xs[r] as Tensor, 0)));
    for (const r of res) {
      expect(r.status).toBe("rejected");
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(CommError);
      expect(String((r as PromiseRejectedResult).reason)).toMatch(/all dims but 0 must agree/);
    }
    for (const x of xs) x.dispose();
  });
});

describe("the sequence-parallel transformer through NCCL's layout", () => {
  for (const [n, mode, frames] of [
    [2, "ulysses", 4],
    [4, "ulysses", 3],
    [2, "ring", 3],
    [4, "ring", 4],
  ] as const)
    it(`${mode} over ${n} ranks, ${frames} frames, equals the one-device forward`, async () => {
      const weights = randomWanTransformerWeights(CFG, { seed: 5 });
      const model = new WanTransformer(CFG, weights);
      const latents = randn([1, frames, 4, 6, 16], { seed: 1 });
      const context = randn([1, 7, CFG.text_dim], { seed: 2 });
      const timesteps = full([1], 700);
      const ref = model.forward({ latents, timesteps, context });
      const outs = await runRanks(
        n,
        (comm) => model.forwardSplit({ latents, timesteps, context }, sequenceSplit(comm, CFG, mode)),
        collectiveComm,
      );
      const want = await ref.toFloat32Array();
      for (const o of outs) {
        expect(o.shape).toEqual(ref.shape);
        const got = await o.toFloat32Array();
        let num = 0;
        let den = 0;
        for (let i = 0; i < want.length; i++) {
          num = Math.max(num, Math.abs((got[i] as number) - (want[i] as number)));
          den = Math.max(den, Math.abs(want[i] as number));
        }
        expect(num / den).toBeLessThan(1e-5);
      }
      for (const t of [...outs, ref, latents, context, timesteps]) t.dispose();
      weights.dispose();
    });
});

import { concat, cudaStatus, Device, liveTensorCount, randn, type Tensor } from "@tessera/native";
import { describe, expect, it } from "vitest";
import { guidedVelocity, randomWanComponents, StepGraph, WanPipeline } from "./index.js";

const CUDA = cudaStatus().available;
const SKIP = CUDA ? "" : " [SKIPPED: no CUDA device]";
const small = { width: 32, height: 32, frames: 9, steps: 4 };

async function values(t: Tensor): Promise<number[]> {
  return Array.from(await t.toFloat32Array());
}

describe("the denoising step as a CUDA graph", () => {
  it("is off on the CPU, where the pipeline runs every step eagerly", async () => {
    const pipe = new WanPipeline(randomWanComponents({ seed: 3 }));
    const r = await pipe.generate({ prompt: "a red ball", seed: 1, ...small });
    expect(r.stepGraph).toEqual({ state: "off", replays: 0 });
    r.video.dispose();
    r.latents.dispose();
    pipe.dispose();
  });

  it("rejects a cudaGraph option that is not a boolean", async () => {
    const pipe = new WanPipeline(randomWanComponents({ seed: 3 }));
    await expect(pipe.generate({ prompt: "x", cudaGraph: "yes" as unknown as boolean })).rejects.toThrow(
      /cudaGraph must be true or false/,
    );
    pipe.dispose();
  });

  it.skipIf(!CUDA)(
    `replays steps bit for bit like eager calls, with fresh inputs each time${SKIP}`,
    async () => {
      const dev = Device.cuda(0);
      const base = liveTensorCount();
      const c = randomWanComponents({ seed: 5, device: dev, dtype: "bf16" });
      const pipe = new WanPipeline(c);
      const cond = await pipe.encodeText("a blue square");
      const uncond = await pipe.encodeText("");
      const ctx = concat([cond, uncond], 0);
      const graph = new StepGraph(pipe.transformer);
      const replayed: boolean[] = [];
      for (const [i, t] of [999, 750, 400, 120].entries()) {
        const x = randn([1, 3, 4, 4, 4], { seed: 10 + i, device: dev });
        const got = await graph.velocity(x, t, ctx, 5, "bf16");
        replayed.push(got.replayed);
        const want = guidedVelocity(pipe.transformer, x, t, ctx, 5, "bf16");
        expect(await values(got.v)).toEqual(await values(want));
        for (const y of [x, got.v, want]) y.dispose();
      }
      expect(replayed).toEqual([false, true, true, true]);
      expect(graph.failure()).toBeNull();
      graph.dispose();
      for (const y of [cond, uncond, ctx]) y.dispose();
      pipe.dispose();
      expect(liveTensorCount()).toBe(base);
    },
  );

  it.skipIf(!CUDA)(`replays the one-branch step of guidance 1 like eager calls${SKIP}`, async () => {
    const dev = Device.cuda(0);
    const pipe = new WanPipeline(randomWanComponents({ seed: 7, device: dev, dtype: "bf16" }));
    const cond = await pipe.encodeText("a blue square");
    const graph = new StepGraph(pipe.transformer);
    const replayed: boolean[] = [];
    for (const [i, t] of [1000, 750, 500, 250].entries()) {
      const x = randn([1, 3, 4, 4, 4], { seed: 20 + i, device: dev });
      const got = await graph.velocity(x, t, cond, 1, "bf16");
      replayed.push(got.replayed);
      const want = guidedVelocity(pipe.transformer, x, t, cond, 1, "bf16");
      expect(await values(got.v)).toEqual(await values(want));
      for (const y of [x, got.v, want]) y.dispose();
    }
    expect(replayed).toEqual([false, true, true, true]);
    graph.dispose();
    cond.dispose();
    // A whole 4-step run at guidance 1: the graph replays, and gives the eager video.
    const opts = {
      prompt: "a red ball",
      seed: 4,
      guidance: 1,
      ...small,
      steps: undefined,
      sigmas: [1, 0.75, 0.5, 0.25],
    };
    const on = await pipe.generate(opts);
    const off = await pipe.generate({ ...opts, cudaGraph: false });
    expect(on.stepGraph).toEqual({ state: "replayed", replays: 3 });
    expect(await values(on.latents)).toEqual(await values(off.latents));
    for (const r of [on, off]) {
      r.video.dispose();
      r.latents.dispose();
    }
    pipe.dispose();
  });

  it.skipIf(!CUDA)(
    `gives the same video with and without the graph in a whole generation${SKIP}`,
    async () => {
      const dev = Device.cuda(0);
      const pipe = new WanPipeline(randomWanComponents({ seed: 6, device: dev, dtype: "bf16" }));
      const on = await pipe.generate({ prompt: "a red ball", seed: 4, guidance: 4, ...small });
      const off = await pipe.generate({
        prompt: "a red ball",
        seed: 4,
        guidance: 4,
        ...small,
        cudaGraph: false,
      });
      expect(on.stepGraph).toEqual({ state: "replayed", replays: small.steps - 1 });
      expect(off.stepGraph).toEqual({ state: "off", replays: 0 });
      expect(await values(on.latents)).toEqual(await values(off.latents));
      // The graph's memory is handed back when the generation ends.
      const inUse = dev.memoryStats().inUse;
      for (const r of [on, off]) {
        r.video.dispose();
        r.latents.dispose();
      }
      expect(dev.memoryStats().inUse).toBeLessThan(inUse);
      pipe.dispose();
    },
  );
});

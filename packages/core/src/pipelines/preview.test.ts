import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEMO_MODEL_DIR, hasDemoModel } from "./demo-model.js";
import {
  checkLatentRgbProjection,
  fitLatentRgbProjection,
  LatentPreviewer,
  latentGridTargets,
  latentRgbProjectionFor,
  projectLatents,
  WAN21_LATENT_RGB,
} from "./preview.js";
import { WanPipeline } from "./wan.js";

describe("latent → RGB projection", () => {
  it("projects channels-last latents per cell, with the bias, clamped to RGB8", () => {
    const p = {
      weights: [
        [1, 0, 0],
        [0, 1, 0],
        [0, 0, -1],
      ],
      bias: [0, 0, 0] as [number, number, number],
    };
    // One frame of 1×2 cells, 3 channels.
    const z = Float32Array.from([1, 0, 0, -0.5, 2, 0.2]);
    const got = projectLatents(z, [1, 1, 2, 3], p);
    expect(got.width).toBe(2);
    expect(got.height).toBe(1);
    expect([...(got.frames[0] as Uint8Array)]).toEqual([255, 128, 128, 64, 255, 102]);
  });

  it("fits a known map back from latents and their colours", () => {
    const truth = {
      weights: [
        [0.5, -0.2, 0.1],
        [0.1, 0.4, -0.3],
        [-0.2, 0.1, 0.6],
        [0, 0, 0.2],
      ],
      bias: [0.1, -0.05, 0.02] as [number, number, number],
    };
    let s = 1;
    const rnd = () => {
      s = (s * 16807) % 2147483647;
      return s / 2147483647 - 0.5;
    };
    const cells = 500;
    const latents = Float32Array.from({ length: cells * 4 }, rnd);
    const targets = new Float32Array(cells * 3);
    for (let i = 0; i < cells; i++)
      for (let c = 0; c < 3; c++) {
        let v = truth.bias[c] as number;
        for (let k = 0; k < 4; k++) v += (latents[i * 4 + k] as number) * (truth.weights[k]?.[c] as number);
        targets[i * 3 + c] = v;
      }
    const fit = fitLatentRgbProjection([{ latents, targets }], 4, 0);
    for (let k = 0; k < 4; k++)
      for (let c = 0; c < 3; c++) expect(fit.weights[k]?.[c]).toBeCloseTo(truth.weights[k]?.[c] as number, 3);
    for (let c = 0; c < 3; c++) expect(fit.bias[c]).toBeCloseTo(truth.bias[c] as number, 3);
  });

  it("averages each latent cell's pixels, grouping frames as the causal VAE does", () => {
    // 5 frames of 2×2 pixels, sf 2, tf 4: latent frame 0 is frame 0, latent frame 1 is frames 1–4.
    const frames = [0, 40, 80, 120, 160].map((v) => new Uint8Array(12).fill(v));
    const t = latentGridTargets(frames, 2, 2, 2, 4);
    expect(t.length).toBe(2 * 3);
    expect(t[0]).toBeCloseTo(-1, 5);
    expect(t[3]).toBeCloseTo(100 / 127.5 - 1, 5);
  });

  it("uses the model's own map, else Wan2.1's for a z16 VAE, and checks maps read from files", () => {
    expect(WAN21_LATENT_RGB.weights.length).toBe(16);
    expect(latentRgbProjectionFor(undefined, 16)).toBe(WAN21_LATENT_RGB);
    expect(latentRgbProjectionFor(undefined, 48)).toBeNull();
    expect(() => checkLatentRgbProjection({ weights: [[1, 2, 3]], bias: [0, 0, 0] }, 16, "x")).toThrow(
      /16 rows/,
    );
    expect(() => checkLatentRgbProjection({ weights: [] }, 0, "x")).toThrow(/bias/);
  });

  it("spaces previews so that they cost at most their share of the time", async () => {
    const p = new LatentPreviewer(WAN21_LATENT_RGB, { maxShare: 0.02 });
    expect(p.due()).toBe(true);
    const slow = {
      shape: [1, 1, 1, 1, 16],
      async toFloat32Array() {
        await new Promise((r) => setTimeout(r, 20));
        return new Float32Array(16);
      },
      dispose() {},
    };
    const got = await p.frames(slow as never);
    const after = performance.now();
    expect(got?.frames).toHaveLength(1);
    expect(p.spentMs).toBeGreaterThanOrEqual(15);
    expect(p.due(after + 10)).toBe(false);
    expect(p.due(after + 50 * p.spentMs + 1)).toBe(true);
  });

  it("never fails a generation: an error stops the run's previews instead", async () => {
    const p = new LatentPreviewer(WAN21_LATENT_RGB);
    const broken = {
      shape: [1, 1, 1, 1, 16],
      toFloat32Array: () => Promise.reject(new Error("device lost")),
      dispose() {},
    };
    expect(await p.frames(broken as never)).toBeUndefined();
    expect(p.failure).toBe("device lost");
    expect(p.due(Number.POSITIVE_INFINITY)).toBe(false);
  });
});

describe.skipIf(!hasDemoModel())("live previews from the demo model", () => {
  let pipe: WanPipeline;
  beforeAll(async () => {
    pipe = await WanPipeline.load(DEMO_MODEL_DIR, {});
  });
  afterAll(() => pipe?.dispose());

  it("hands small RGB frames of the denoised estimate to onProgress", async () => {
    expect(pipe.previewProjection).not.toBeNull();
    const previews: { step: number; width: number; height: number; frames: number; mean: number }[] = [];
    const r = await pipe.generate({
      prompt: "a red ball moving right",
      steps: 12,
      seed: 3,
      preview: true,
      onProgress: (p) => {
        if (!p.preview) return;
        const f = p.preview.frames[0] as Uint8Array;
        previews.push({
          step: p.step,
          width: p.preview.width,
          height: p.preview.height,
          frames: p.preview.frames.length,
          mean: f.reduce((a, b) => a + b, 0) / f.length,
        });
      },
    });
    try {
      expect(previews.length).toBeGreaterThan(0);
      // 128×128, 17 frames: latents of 16×16, 5 latent frames.
      expect(previews[0]).toMatchObject({ width: 16, height: 16, frames: 5 });
      // The last estimate is the result: the preview of it looks like the decoded video (same mean colour, roughly).
      const video = await r.video.toFloat32Array();
      const first = video.subarray(0, 128 * 128 * 3);
      const videoMean = first.reduce((a, b) => a + (b + 1) * 127.5, 0) / first.length;
      expect(Math.abs((previews.at(-1)?.mean as number) - videoMean)).toBeLessThan(40);
    } finally {
      r.video.dispose();
      r.latents.dispose();
    }
  }, 60_000);

  it("sends no preview when it is off", async () => {
    const seen: boolean[] = [];
    const r = await pipe.generate({
      prompt: "a blue square",
      steps: 2,
      seed: 1,
      onProgress: (p) => seen.push(p.preview !== undefined),
    });
    r.video.dispose();
    r.latents.dispose();
    expect(seen).toEqual([false, false]);
  }, 60_000);
});

// A tiny random WanVAE for a describe block: one clip (randn × 0.5) encoded and decoded
// once in beforeAll, everything freed in afterAll with a check that nothing leaked. The
// Wan2.1 and Wan2.2 VAE tests (vae.test.ts, vae22.test.ts) run their checks on it.
import { affine, liveTensorCount, randn, type Tensor } from "@tessera/native";
import { afterAll, beforeAll, expect } from "vitest";
import type { WanVaeConfig } from "../models/wan-vae/config.js";
import { randomWanVaeWeights } from "../models/wan-vae/params.js";
import { WanVAE } from "../models/wan-vae/vae.js";

export interface TinyVae {
  vae: WanVAE;
  /** The clip, [1, frames, H, W, 3]. */
  video: Tensor;
  latent: Tensor;
  /** vae.decode(latent). */
  decoded: Tensor;
}

/** Registers the hooks; the returned object's fields are set once beforeAll has run. */
export function useTinyVae(cfg: WanVaeConfig, videoShape: number[]): TinyVae {
  const s = {} as TinyVae;
  let weights: ReturnType<typeof randomWanVaeWeights>;
  let before = 0;
  beforeAll(() => {
    before = liveTensorCount();
    weights = randomWanVaeWeights(cfg, { seed: 1 });
    s.vae = new WanVAE(cfg, weights);
    const r = randn(videoShape, { seed: 2 });
    s.video = affine(r, 0.5, 0);
    r.dispose();
    s.latent = s.vae.encode(s.video);
    s.decoded = s.vae.decode(s.latent);
  });
  afterAll(() => {
    for (const t of [s.video, s.latent, s.decoded]) t.dispose();
    weights.dispose();
    expect(liveTensorCount()).toBe(before);
  });
  return s;
}

/** The largest elementwise |a − b| (the lengths must agree). */
export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

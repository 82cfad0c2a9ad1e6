import { liveTensorCount, randn, type Tensor } from "@tessera/native";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WAN_VAE_TINY } from "../models/wan-vae/config.js";
import { randomWanVaeWeights } from "../models/wan-vae/params.js";
import { WanVAE } from "../models/wan-vae/vae.js";
import { maxRelErr } from "../testing/compare.js";
import { collectiveComm } from "./collective.js";
import { runRanks } from "./comm.js";
import { decodeSpatialParallel, rowBand } from "./vae.js";

describe("rowBand", () => {
  it("splits rows as evenly as they go, the extra rows first", () => {
    expect([0, 1, 2, 3].map((r) => rowBand(10, 4, r))).toEqual([
      { start: 0, end: 3 },
      { start: 3, end: 6 },
      { start: 6, end: 8 },
      { start: 8, end: 10 },
    ]);
    expect(rowBand(60, 8, 7)).toEqual({ start: 53, end: 60 });
    expect(() => rowBand(3, 4, 0)).toThrow(/3 latent rows cannot be split over 4 ranks/);
  });
});

describe("spatial-parallel VAE decode (tiny random Wan VAE)", () => {
  let before = 0;
  let weights: ReturnType<typeof randomWanVaeWeights>;
  let vae: WanVAE;
  let latent: Tensor; // [1, 3, 7, 5, 4]: 3 latent frames (9 video frames), 7 rows split unevenly
  let ref: Tensor;

  beforeAll(() => {
    before = liveTensorCount();
    weights = randomWanVaeWeights(WAN_VAE_TINY, { seed: 1 });
    vae = new WanVAE(WAN_VAE_TINY, weights);
    latent = randn([1, 3, 7, 5, 4], { seed: 3 });
    ref = vae.decode(latent);
  });

  afterAll(() => {
    for (const t of [latent, ref]) t.dispose();
    weights.dispose();
    expect(liveTensorCount()).toBe(before);
  });

  for (const n of [1, 2, 3, 4])
    it(`over ${n} in-process rank(s) equals the one-device decode`, async () => {
      const outs = await runRanks(n, (comm) => decodeSpatialParallel(vae, latent, comm));
      expect(ref.shape).toEqual([1, 9, 56, 40, 3]);
      for (const o of outs) expect(await maxRelErr(o, ref)).toBeLessThan(1e-5);
      for (const o of outs) o.dispose();
    });

  it("through NCCL's layout code (2 ranks), and band by band", async () => {
    const outs = await runRanks(2, (comm) => decodeSpatialParallel(vae, latent, comm), collectiveComm);
    for (const o of outs) expect(await maxRelErr(o, ref)).toBeLessThan(1e-5);
    for (const o of outs) o.dispose();
    const chunks: number[] = [];
    const bands = await runRanks(2, (comm) =>
      decodeSpatialParallel(vae, latent, comm, {
        gather: "band",
        onChunk: (i) => {
          if (comm.rank === 0) chunks.push(i);
        },
      }),
    );
    expect(bands.map((b) => b.shape)).toEqual([
      [1, 9, 32, 40, 3],
      [1, 9, 24, 40, 3],
    ]);
    expect(chunks).toEqual([0, 1, 2]);
    for (const b of bands) b.dispose();
  });

  it("rejects more ranks than latent rows", async () => {
    await expect(runRanks(8, (comm) => decodeSpatialParallel(vae, latent, comm))).rejects.toThrow(
      /7 latent rows cannot be split over 8 ranks/,
    );
  });
});

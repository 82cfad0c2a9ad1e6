// The spatial-parallel decode (row bands with halos) of the Wan2.2 VAE form: the residual
// blocks' shortcuts are per pixel and unpatchify per band, so a split decode must equal
// the one-device one.
import { liveTensorCount, randn } from "@tessera/native";
import { describe, expect, it } from "vitest";
import { WAN22_VAE_TINY } from "../models/wan-vae/config.js";
import { randomWanVaeWeights } from "../models/wan-vae/params.js";
import { WanVAE } from "../models/wan-vae/vae.js";
import { maxRelErr } from "../testing/compare.js";
import { runRanks } from "./comm.js";
import { decodeSpatialParallel } from "./vae.js";

describe("spatial-parallel decode of the Wan2.2 VAE (tiny)", () => {
  it("over 3 in-process ranks equals the one-device decode", async () => {
    const before = liveTensorCount();
    const weights = randomWanVaeWeights(WAN22_VAE_TINY, { seed: 1 });
    const vae = new WanVAE(WAN22_VAE_TINY, weights);
    const latent = randn([1, 2, 5, 3, 8], { seed: 3 });
    const ref = vae.decode(latent);
    expect(ref.shape).toEqual([1, 5, 80, 48, 3]);
    const outs = await runRanks(3, (comm) => decodeSpatialParallel(vae, latent, comm));
    for (const o of outs) expect(await maxRelErr(o, ref)).toBeLessThan(1e-5);
    for (const t of [...outs, latent, ref]) t.dispose();
    weights.dispose();
    expect(liveTensorCount()).toBe(before);
  });
});

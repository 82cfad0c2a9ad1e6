import { describe, expect, it } from "vitest";
import { UMT5_XXL, umt5ParameterCount } from "../models/t5/config.js";
import { WAN22_TI2V_5B } from "../models/wan/config.js";
import { WAN22_VAE } from "../models/wan-vae/config.js";
import { estimateMemory } from "./memory-estimate.js";

const GiB = 2 ** 30;

describe("estimateMemory for Wan2.2 TI2V-5B", () => {
  it("counts its 5B transformer, umT5-XXL and the 0.7B Wan2.2 VAE, at 1280x704, 121 frames on a GPU", () => {
    const e = estimateMemory({
      transformer: WAN22_TI2V_5B,
      vae: WAN22_VAE,
      textParams: umt5ParameterCount(UMT5_XXL),
      dtype: "bf16",
      device: "cuda",
      width: 1280,
      height: 704,
      frames: 121,
    });
    // 5.0B + 5.7B parameters in bf16 and the VAE's 0.7B in f32: about 22.5 GiB.
    expect(e.weights / GiB).toBeGreaterThan(21);
    expect(e.weights / GiB).toBeLessThan(24);
    // 27,280 tokens, both guidance branches: a few GiB per layer's activations.
    expect(e.denoise / GiB).toBeGreaterThan(2);
    expect(e.denoise / GiB).toBeLessThan(6);
    // The decoder works on 352x640 positions (patchify 2), 256 channels wide at its last stage.
    expect(e.decode / GiB).toBeGreaterThan(3);
    expect(e.decode / GiB).toBeLessThan(10);
    expect(e.total / GiB).toBeLessThan(40);
  });
});

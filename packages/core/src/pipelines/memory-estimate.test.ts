import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { UMT5_XXL, umt5ParameterCount } from "../models/t5/config.js";
import { WAN21_T2V_1_3B } from "../models/wan/config.js";
import { WAN21_VAE } from "../models/wan-vae/config.js";
import { DEMO_MODEL_DIR } from "./demo-model.js";
import { readModelFolder } from "./load.js";
import { estimateMemory, estimatePipelineMemory } from "./memory-estimate.js";
import { randomModelConfigs } from "./model-folder.js";

const GiB = 2 ** 30;

describe("estimateMemory", () => {
  const wan = {
    transformer: WAN21_T2V_1_3B,
    vae: WAN21_VAE,
    textParams: umt5ParameterCount(UMT5_XXL),
  };

  it("gives Wan2.1 1.3B at 832x480, 81 frames in bf16 on a GPU the size people run it in", () => {
    const e = estimateMemory({ ...wan, dtype: "bf16", device: "cuda", width: 832, height: 480, frames: 81 });
    // 1.3B + 5.7B (umT5-XXL) parameters in bf16 are ~13 GiB; it runs on 24 GB cards.
    expect(e.weights / GiB).toBeGreaterThan(12);
    expect(e.total / GiB).toBeGreaterThan(14);
    expect(e.total / GiB).toBeLessThan(24);
    expect(e.total).toBe(e.weights + e.runtime + Math.max(e.denoise, e.decode));
  });

  it("gives Wan2.1 T2V-14B (create-model's wan2.1-t2v-14b) in bf16 on a GPU within an 80 GB card", () => {
    const c = randomModelConfigs("wan2.1-t2v-14b");
    const at = (width: number, height: number) =>
      estimateMemory({
        transformer: c.transformer,
        vae: c.vae,
        textParams: umt5ParameterCount(c.textEncoder),
        dtype: "bf16",
        device: "cuda",
        width,
        height,
        frames: 81,
      });
    const e = at(832, 480);
    // 14B + 5.7B (umT5-XXL) parameters in bf16 are ~37 GiB; both branches of 32760 tokens on top.
    expect(e.weights / GiB).toBeGreaterThan(35);
    expect(e.weights / GiB).toBeLessThan(40);
    expect(e.total / GiB).toBeGreaterThan(40);
    expect(e.total / GiB).toBeLessThan(50);
    expect(at(1280, 720).total / GiB).toBeLessThan(78);
  });

  it("grows with frames and size, and counts both branches only with guidance", () => {
    const at = (width: number, height: number, frames: number, guidance = 5) =>
      estimateMemory({ ...wan, dtype: "f32", device: "cpu", width, height, frames, guidance });
    expect(at(832, 480, 81).total).toBeGreaterThan(at(832, 480, 41).total);
    expect(at(832, 480, 81).total).toBeGreaterThan(at(416, 240, 81).total);
    expect(at(832, 480, 81, 1).denoise).toBeLessThan(at(832, 480, 81, 5).denoise);
    const e = at(832, 480, 81);
    expect(e.total).toBe(e.weights + e.runtime + e.denoise + e.decode);
  });

  it("is above the demo model's measured peak on the CPU, and not far above", async () => {
    const info = await readModelFolder(DEMO_MODEL_DIR);
    const e = estimateMemory({
      transformer: info.transformer,
      vae: info.vae,
      textParams: umt5ParameterCount(info.textEncoder),
      dtype: "f32",
      device: "cpu",
      width: 128,
      height: 128,
      frames: 41,
      guidance: 3,
    });
    // A fresh process, so that the high-water mark is this generation's alone.
    const index = fileURLToPath(new URL("../../dist/index.js", import.meta.url));
    const script = `
      import { readFileSync } from "node:fs";
      const core = await import(${JSON.stringify(index)});
      const p = await core.WanPipeline.load(${JSON.stringify(DEMO_MODEL_DIR)}, {});
      const est = core.estimatePipelineMemory(p, { width: 128, height: 128, frames: 41, guidance: 3 });
      const r = await p.generate({ prompt: "red ball going right", frames: 41, steps: 1 });
      await r.video.toFloat32Array();
      const hwm = /VmHWM:\\s+(\\d+)/.exec(readFileSync("/proc/self/status", "utf8"))[1];
      console.log(JSON.stringify({ hwm: Number(hwm) * 1024, total: est.total }));`;
    const out = JSON.parse(
      execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" }),
    ) as { hwm: number; total: number };
    expect(out.total).toBe(e.total);
    expect(e.total).toBeGreaterThan(out.hwm);
    expect(e.total).toBeLessThan(1.6 * out.hwm);
  }, 60_000);

  it("reads a loaded pipeline's dtype and device", () => {
    const p = {
      transformer: { config: WAN21_T2V_1_3B },
      vae: { config: WAN21_VAE },
      textEncoder: { config: UMT5_XXL },
      dtype: "bf16" as const,
      device: { kind: "cuda" as const },
    };
    expect(estimatePipelineMemory(p, { width: 832, height: 480, frames: 81 })).toEqual(
      estimateMemory({ ...wan, dtype: "bf16", device: "cuda", width: 832, height: 480, frames: 81 }),
    );
  });
});

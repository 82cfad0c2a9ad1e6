// Weight offload on the CPU: the blocks wait in "page-locked" host memory (ordinary
// host tensors here) and are copied through a ring of two slots, so the ring's logic
// runs as on a GPU and must not change a bit of the video.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Device, liveTensorCount, Tensor } from "@tessera/native";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BlockOffload } from "../models/wan/block-offload.js";
import { WAN21_T2V_14B } from "../models/wan/config.js";
import { WAN21_VAE } from "../models/wan-vae/config.js";
import { writeSyntheticLora } from "../weights/lora/synthetic.js";
import {
  blockParameterCount,
  chooseOffload,
  estimateMemory,
  parseByteSize,
  randomModelConfigs,
  randomWanComponents,
  readModelFolder,
  WanPipeline,
  wanLoraTarget,
  writeRandomWanModel,
} from "./index.js";

const small = { prompt: "a red ball", width: 32, height: 32, frames: 5, steps: 5, seed: 3, guidance: 4 };

describe("weight offload (tiny, CPU)", () => {
  let dir = "";
  let dir2 = "";
  let base = 0;
  let resident: WanPipeline;
  let offloaded: WanPipeline;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tessera-offload-"));
    await writeRandomWanModel(dir, { config: "tiny", seed: 5 });
    dir2 = await mkdtemp(join(tmpdir(), "tessera-offload-a14b-"));
    await writeRandomWanModel(dir2, { config: "tiny-a14b", seed: 6 });
    base = liveTensorCount();
    resident = await WanPipeline.load(dir, { offload: false });
    offloaded = await WanPipeline.load(dir, { offload: true });
  });
  afterAll(async () => {
    resident.dispose();
    offloaded.dispose();
    expect(liveTensorCount()).toBe(base);
    await rm(dir, { recursive: true, force: true });
    await rm(dir2, { recursive: true, force: true });
  });

  async function same(opts: Record<string, unknown>): Promise<void> {
    const a = await resident.generate({ ...small, ...opts });
    const b = await offloaded.generate({ ...small, ...opts });
    try {
      expect(Buffer.from((await b.latents.toFloat32Array()).buffer)).toEqual(
        Buffer.from((await a.latents.toFloat32Array()).buffer),
      );
      expect(Buffer.from((await b.video.toFloat32Array()).buffer)).toEqual(
        Buffer.from((await a.video.toFloat32Array()).buffer),
      );
    } finally {
      for (const r of [a, b]) {
        r.video.dispose();
        r.latents.dispose();
      }
    }
  }

  it("keeps the blocks in host memory and the rest on the device", () => {
    expect(resident.offload).toBe(false);
    expect(offloaded.offload).toBe(true);
    const w = offloaded.transformer.weights;
    expect(w.get("patch_embedding.weight").device.name).toBe("cpu");
    const off = offloaded.transformer.offload;
    expect(off?.numLayers).toBe(offloaded.transformer.config.num_layers);
    expect(off?.blockBytes).toBe(blockParameterCount(offloaded.transformer.config) * 4);
  });

  it("gives the resident run's video bit for bit, with guidance", async () => {
    await same({});
  });

  it("gives the resident run's video bit for bit with one branch (guidance 1)", async () => {
    await same({ guidance: 1 });
  });

  it("gives the resident run's video bit for bit with the step cache (steps skipped and run)", async () => {
    await same({ stepCache: 0.05, steps: 8 });
    await same({ stepCache: 10, steps: 6 });
  });

  it("reports graphs off with the reason only on a CUDA device (the CPU never captures)", async () => {
    const r = await offloaded.generate({ ...small, steps: 2 });
    try {
      expect(r.stepGraph.state).toBe("off");
      expect(r.stepGraph.reason).toBeUndefined();
    } finally {
      r.video.dispose();
      r.latents.dispose();
    }
  });

  it("offloads both experts of a two-expert model (no swap) with the same video", async () => {
    const a = await WanPipeline.load(dir2, { expertSwap: "never" });
    const b = await WanPipeline.load(dir2, { offload: true, expertSwap: "always" });
    try {
      expect(b.offload).toBe(true);
      expect(b.expertSwap).toBe(false);
      expect(b.transformer2?.offload).not.toBeNull();
      const ra = await a.generate(small);
      const rb = await b.generate(small);
      expect(Buffer.from((await rb.video.toFloat32Array()).buffer)).toEqual(
        Buffer.from((await ra.video.toFloat32Array()).buffer),
      );
      for (const r of [ra, rb]) {
        r.video.dispose();
        r.latents.dispose();
      }
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  it("chooses offload automatically when the estimate exceeds maxGpuMemory, and not otherwise", async () => {
    const info = await readModelFolder(dir);
    const est = estimateMemory({
      transformer: info.transformer,
      vae: info.vae,
      textParams: 0,
      dtype: "f32",
      device: "cpu",
      width: info.defaults.width ?? 832,
      height: info.defaults.height ?? 480,
      frames: info.defaults.frames ?? 81,
    });
    const under = await WanPipeline.load(dir, { maxGpuMemory: Math.floor(est.total / 2) });
    const over = await WanPipeline.load(dir, { maxGpuMemory: "1TiB" });
    const forcedOff = await WanPipeline.load(dir, { maxGpuMemory: 1, offload: false });
    try {
      expect(under.offload).toBe(true);
      expect(over.offload).toBe(false);
      expect(forcedOff.offload).toBe(false);
    } finally {
      under.dispose();
      over.dispose();
      forcedOff.dispose();
    }
    const noCap = await WanPipeline.load(dir);
    expect(noCap.offload).toBe(false);
    noCap.dispose();
  });

  it("refuses a bad maxGpuMemory, naming it", async () => {
    await expect(WanPipeline.load(dir, { maxGpuMemory: "lots" })).rejects.toThrow(/maxGpuMemory .*'lots'/);
  });
});

// More blocks than the ring's two slots: blocks cycle through the slots every step
// (an odd count also puts the last block and block 0 in the same slot in turn).
describe.each([3, 4])("weight offload with %i blocks (ring refilled each step)", (layers) => {
  const configs = () => {
    const c = randomModelConfigs("tiny");
    return { ...c, transformer: { ...c.transformer, num_layers: layers } };
  };
  let base = 0;
  let resident: WanPipeline;
  let offloaded: WanPipeline;
  beforeAll(async () => {
    base = liveTensorCount();
    resident = new WanPipeline(randomWanComponents({ config: configs(), seed: 9 }));
    const c = randomWanComponents({ config: configs(), seed: 9 });
    const off = new BlockOffload(c.transformer.weights, layers, Device.cpu);
    await off.adopt();
    c.transformer.offload = off;
    offloaded = new WanPipeline(c);
  });
  afterAll(() => {
    resident.dispose();
    offloaded.dispose();
    expect(liveTensorCount()).toBe(base);
  });

  it.each([
    ["guidance", {}],
    ["one branch", { guidance: 1 }],
    ["the step cache", { stepCache: 0.05, steps: 8 }],
    ["the step cache, every step reused", { stepCache: 10, steps: 6 }],
  ])("gives the resident video bit for bit with %s", async (_, opts) => {
    const before = offloaded.transformer.offload?.copies ?? 0;
    const a = await resident.generate({ ...small, ...opts });
    const b = await offloaded.generate({ ...small, ...opts });
    try {
      expect(Buffer.from((await b.video.toFloat32Array()).buffer)).toEqual(
        Buffer.from((await a.video.toFloat32Array()).buffer),
      );
      expect(b.fullSteps).toBe(a.fullSteps);
      if ((opts as { stepCache?: number }).stepCache === 10) expect(a.fullSteps).toBe(2); // the first and last only: the rest reused
    } finally {
      for (const r of [a, b]) {
        r.video.dispose();
        r.latents.dispose();
      }
    }
    // At least one block copied per step; with every step in full, every block every step.
    const copies = (offloaded.transformer.offload?.copies ?? 0) - before;
    if (!("stepCache" in opts)) expect(copies).toBeGreaterThanOrEqual(small.steps * layers);
    else expect(copies).toBeGreaterThan(0);
  });

  it("merges a LoRA into the host copies, refilling the slots: the resident video, bit for bit", async () => {
    const file = join(tmpdir(), `tessera-offload-lora-${layers}-${process.pid}.safetensors`);
    await writeSyntheticLora(file, wanLoraTarget(resident.transformer.config), {
      naming: "diffusers",
      targets: ["blocks.0.attn1.to_q.weight", "blocks.2.ffn.net.0.proj.weight", "proj_out.weight"],
      seed: 4,
      std: 0.5,
    });
    try {
      // A run first, so that the slots hold blocks from before the merge.
      const warm = await offloaded.generate(small);
      warm.video.dispose();
      warm.latents.dispose();
      const loras = [{ path: file, strength: 0.8 }];
      const a = await resident.generate({ ...small, loras });
      const b = await offloaded.generate({ ...small, loras });
      const plain = await offloaded.generate(small);
      try {
        const va = Buffer.from((await a.video.toFloat32Array()).buffer);
        expect(Buffer.from((await b.video.toFloat32Array()).buffer)).toEqual(va);
        expect(Buffer.from((await plain.video.toFloat32Array()).buffer)).not.toEqual(va);
      } finally {
        for (const r of [a, b, plain]) {
          r.video.dispose();
          r.latents.dispose();
        }
      }
    } finally {
      await rm(file, { force: true });
    }
  });

  it("refuses a model whose blocks differ", () => {
    const c = randomWanComponents({ config: configs(), seed: 1 });
    try {
      const w = c.transformer.weights;
      w.set("blocks.1.ffn.net.2.bias", Tensor.from(new Float32Array(3), [3]));
      expect(() => new BlockOffload(w, layers, Device.cpu)).toThrow(/block 1's weights differ/);
    } finally {
      c.transformer.weights.dispose();
      c.transformer2?.weights.dispose();
      c.vae.weights.dispose();
      c.textEncoder.weights.dispose();
    }
  });
});

describe("the offload choice and its estimate", () => {
  it("parses sizes in binary and decimal units", () => {
    expect(parseByteSize("24GiB")).toBe(24 * 2 ** 30);
    expect(parseByteSize("24G")).toBe(24 * 2 ** 30);
    expect(parseByteSize("24GB")).toBe(24e9);
    expect(parseByteSize("512 MiB")).toBe(512 * 2 ** 20);
    expect(parseByteSize("1.5g")).toBe(1.5 * 2 ** 30);
    expect(parseByteSize(4096)).toBe(4096);
    for (const bad of ["", "GiB", "-1GiB", "0", "24XB", "1e9"])
      expect(() => parseByteSize(bad, "--max-gpu-memory")).toThrow(/--max-gpu-memory must be a size/);
  });

  it("offloads when forced, never when refused, and in auto only above the cap", () => {
    expect(chooseOffload(true, null, 1)).toBe(true);
    expect(chooseOffload(false, 10, 100)).toBe(false);
    expect(chooseOffload(undefined, 10, 100)).toBe(true);
    expect(chooseOffload(undefined, 100, 100)).toBe(false);
    expect(chooseOffload(undefined, null, 1e15)).toBe(false);
  });

  it("Wan2.1-14B at 480p: resident over a 24 GiB cap, offloaded under it (text encoder elsewhere)", () => {
    const at = (offload: boolean) =>
      estimateMemory({
        transformer: WAN21_T2V_14B,
        vae: WAN21_VAE,
        textParams: 0,
        dtype: "bf16",
        device: "cuda",
        width: 832,
        height: 480,
        frames: 81,
        offload,
      });
    const cap = parseByteSize("24GiB");
    const res = at(false);
    const off = at(true);
    expect(chooseOffload(undefined, cap, res.total)).toBe(true);
    expect(off.total).toBeLessThan(cap);
    const t = WAN21_T2V_14B;
    expect(res.weights - off.weights).toBe((t.num_layers - 2) * blockParameterCount(t) * 2);
    expect(off.hostWeights).toBe(t.num_layers * blockParameterCount(t) * 2);
  });
});

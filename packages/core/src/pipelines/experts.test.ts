// Two experts in the one loop: diffusers' hand-over rule, the per-expert guidance
// and LoRAs, and the idle expert's swap through host memory (on the CPU the copies
// are plain memcpys, so the swap logic runs here and must not change a bit).
import { mkdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { liveTensorCount, type Tensor } from "@tessera/native";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parameterCount, WAN21_T2V_14B } from "../models/wan/config.js";
import { runRanks } from "../parallel/comm.js";
import { maxRelErr } from "../testing/compare.js";
import { writeSyntheticLora } from "../weights/lora/synthetic.js";
import { expertAt, expertGuidance } from "./experts.js";
import {
  estimateMemory,
  GenerateOptionError,
  randomModelConfigs,
  randomWanComponents,
  readModelFolder,
  WanPipeline,
  type WanPipelineComponents,
  wanLoraTarget,
  writeRandomWanModel,
} from "./index.js";
import { generateParallel } from "./parallel-generate.js";

const small = { prompt: "a red ball", width: 32, height: 32, frames: 5, steps: 6, seed: 3, guidance: 4 };

async function values(t: Tensor): Promise<Float32Array> {
  return t.toFloat32Array();
}

function twoExpert(opts: { swap?: boolean; sameExperts?: boolean } = {}): WanPipelineComponents {
  const c = randomWanComponents({ config: "tiny-a14b", seed: 1 });
  if (opts.sameExperts) {
    // The second expert with the first's weights: the run must equal one expert's.
    c.transformer2?.weights.dispose();
    const other = randomWanComponents({ config: "tiny", seed: 1 });
    other.vae.weights.dispose();
    other.textEncoder.weights.dispose();
    c.transformer2 = other.transformer;
  }
  return { ...c, expertSwap: opts.swap === true };
}

describe("the two-expert schedule", () => {
  it("hands over below boundary_ratio × num_train_timesteps, as diffusers (t >= boundary: the first)", () => {
    expect(expertAt(875, 875)).toBe(0);
    expect(expertAt(874.99, 875)).toBe(1);
    expect(expertAt(999, 875)).toBe(0);
    expect(expertAt(10, null)).toBe(0);
    expect(expertGuidance(3, true)).toBe(3);
    expect(expertGuidance(1, true)).toBe(1);
    expect(expertGuidance(0.5, true)).toBe(1);
    expect(expertGuidance(0.5, false)).toBe(0.5);
  });
});

describe("WanPipeline with two experts (tiny, CPU)", () => {
  let base = 0;
  let pipe: WanPipeline;
  beforeAll(() => {
    base = liveTensorCount();
    pipe = new WanPipeline(twoExpert());
  });
  afterAll(() => {
    pipe.dispose();
    expect(liveTensorCount()).toBe(base);
  });

  it("runs the first expert above the boundary and the second below, each step once", async () => {
    const r = await pipe.generate(small);
    try {
      expect(pipe.boundary).toBe(875);
      expect(r.experts?.boundary).toBe(875);
      const [a, b] = r.experts?.steps ?? [0, 0];
      expect(a + b).toBe(6);
      expect(a).toBeGreaterThan(0);
      expect(b).toBeGreaterThan(0);
      expect(r.experts?.swaps).toBe(0);
      expect(r.timings.swap).toBe(0);
    } finally {
      r.video.dispose();
      r.latents.dispose();
    }
  });

  it("gives guidance2 to the second expert only", async () => {
    const same = await pipe.generate({ ...small, guidance2: 4 });
    const other = await pipe.generate({ ...small, guidance2: 1.5 });
    const dflt = await pipe.generate(small);
    try {
      const [x, y, z] = [await values(same.latents), await values(other.latents), await values(dflt.latents)];
      expect(z).toEqual(x); // guidance2 defaults to guidance
      expect(y).not.toEqual(x);
    } finally {
      for (const r of [same, other, dflt]) {
        r.video.dispose();
        r.latents.dispose();
      }
    }
  });

  it("with the same weights in both experts, equals a one-expert run", async () => {
    const two = new WanPipeline(twoExpert({ sameExperts: true }));
    const one = new WanPipeline(randomWanComponents({ config: "tiny", seed: 1 }));
    try {
      const a = await two.generate(small);
      const b = await one.generate(small);
      expect(await values(a.latents)).toEqual(await values(b.latents));
      for (const r of [a, b]) {
        r.video.dispose();
        r.latents.dispose();
      }
    } finally {
      two.dispose();
      one.dispose();
    }
  });

  it("swapping the idle expert through host memory changes no bit, and is timed", async () => {
    const swapping = new WanPipeline(twoExpert({ swap: true }));
    try {
      expect(swapping.expertSwap).toBe(true);
      const a = await swapping.generate(small);
      const b = await pipe.generate(small);
      expect(await values(a.latents)).toEqual(await values(b.latents));
      expect(a.experts?.swaps).toBe(1);
      expect(a.timings.swap).toBeGreaterThan(0);
      // The next run starts on the first expert again: one swap back, one forward.
      const c = await swapping.generate(small);
      expect(c.experts?.swaps).toBe(2);
      expect(await values(c.latents)).toEqual(await values(b.latents));
      for (const r of [a, b, c]) {
        r.video.dispose();
        r.latents.dispose();
      }
    } finally {
      swapping.dispose();
    }
  });

  it("refuses guidance2 and loras2 on a one-expert model", async () => {
    const one = new WanPipeline(randomWanComponents({ config: "tiny", seed: 1 }));
    try {
      await expect(one.generate({ ...small, guidance2: 3 })).rejects.toThrow(GenerateOptionError);
      await expect(one.generate({ ...small, guidance2: 3 })).rejects.toThrow(/two-expert model/);
      await expect(one.setLoras2([{ path: "/nope.safetensors" }])).rejects.toThrow(/one expert/);
    } finally {
      one.dispose();
    }
  });
});

describe("per-expert LoRAs and the step cache with two experts", () => {
  let dir = "";
  let base = 0;
  beforeAll(async () => {
    base = liveTensorCount();
    dir = await mkdtemp(join(tmpdir(), "tessera-a14b-lora-"));
    mkdirSync(join(dir, "loras"));
    const target = wanLoraTarget(randomModelTarget());
    await writeSyntheticLora(join(dir, "loras", "low.safetensors"), target, {
      naming: "comfyui",
      targets: ["blocks.0.attn1.to_q.weight", "proj_out.weight"],
      alpha: 2,
      seed: 9,
    });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
    expect(liveTensorCount()).toBe(base);
  });

  it("merges loras2 into the second expert only, as it becomes resident, swapped or not", async () => {
    for (const swap of [false, true]) {
      const pipe = new WanPipeline({ ...twoExpert({ swap }), loraDir: join(dir, "loras") });
      try {
        const plain = await pipe.generate(small);
        const first = await pipe.generate({ ...small, loras: [{ name: "low" }] });
        const second = await pipe.generate({ ...small, loras2: [{ name: "low", strength: 0.7 }] });
        expect(pipe.loras2.map((l) => l.strength)).toEqual([0.7]);
        expect(pipe.loras).toEqual([]);
        const again = await pipe.generate({ ...small, loras2: [] });
        const [p, f, s2, a] = await Promise.all([plain, first, second, again].map((r) => values(r.latents)));
        expect(f).not.toEqual(p);
        expect(s2).not.toEqual(p);
        expect(s2).not.toEqual(f);
        expect(a).toEqual(p); // removed without a trace
        for (const r of [plain, first, second, again]) {
          r.video.dispose();
          r.latents.dispose();
        }
      } finally {
        pipe.dispose();
      }
    }
  });

  it("with the swap, a loras2 file that does not fit fails before the first step", async () => {
    const wide = join(dir, "loras", "wide.safetensors");
    await writeSyntheticLora(wide, wanLoraTarget({ ...randomModelTarget(), num_attention_heads: 4 }), {
      naming: "comfyui",
      targets: ["blocks.0.attn1.to_q.weight"],
    });
    const pipe = new WanPipeline({ ...twoExpert({ swap: true }), loraDir: join(dir, "loras") });
    let steps = 0;
    try {
      const run = pipe.generate({ ...small, loras2: [{ name: "wide" }], onProgress: () => steps++ });
      await expect(run).rejects.toThrow(GenerateOptionError);
      await expect(pipe.generate({ ...small, loras2: [{ name: "wide" }] })).rejects.toThrow(
        /wide\.safetensors/,
      );
      expect(steps).toBe(0);
    } finally {
      pipe.dispose();
    }
  });

  it("an unknown LoRA name in loras2 is an error naming loras2", async () => {
    const pipe = new WanPipeline({ ...twoExpert(), loraDir: join(dir, "loras") });
    try {
      await expect(pipe.generate({ ...small, loras2: [{ name: "nope" }] })).rejects.toThrow(
        /loras2\[0\]: no LoRA named 'nope'/,
      );
    } finally {
      pipe.dispose();
    }
  });

  it("runs each expert's first step in full under the step cache", async () => {
    const pipe = new WanPipeline(twoExpert());
    try {
      const r = await pipe.generate({ ...small, steps: 8, stepCache: 10 });
      // Everything but the first and last steps and the second expert's first would be reused.
      expect(r.fullSteps).toBe(3);
      expect(r.experts?.steps[0]).toBeGreaterThan(1);
      r.video.dispose();
      r.latents.dispose();
    } finally {
      pipe.dispose();
    }
  });
});

function randomModelTarget() {
  const c = randomWanComponents({ config: "tiny", seed: 0 });
  const cfg = c.transformer.config;
  c.transformer.weights.dispose();
  c.vae.weights.dispose();
  c.textEncoder.weights.dispose();
  return cfg;
}

describe("a two-expert model folder", () => {
  let dir = "";
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tessera-a14b-"));
    await writeRandomWanModel(dir, { config: "tiny-a14b", seed: 2 });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reads transformer_2 and boundary_ratio, and loads both experts", async () => {
    const info = await readModelFolder(dir);
    expect(info.boundaryRatio).toBe(0.875);
    expect(info.transformer2?.num_layers).toBe(info.transformer.num_layers);
    const pipe = await WanPipeline.load(dir, { expertSwap: "always" });
    try {
      expect(pipe.transformer2).not.toBeNull();
      expect(pipe.limits.experts).toBe(2);
      expect(pipe.expertSwap).toBe(true);
      const r = await pipe.generate({ ...small, steps: 3 });
      expect(r.experts?.steps[0]).toBeGreaterThan(0);
      r.video.dispose();
      r.latents.dispose();
    } finally {
      pipe.dispose();
    }
    const both = await WanPipeline.load(dir);
    try {
      expect(both.expertSwap).toBe(false); // auto: never on the CPU
    } finally {
      both.dispose();
    }
  });
});

describe("two experts under a parallel plan (in-process ranks)", () => {
  it("every rank runs the same expert at each step: cfg, Ulysses and ring give one device's video", async () => {
    const before = liveTensorCount();
    const pipe = new WanPipeline(twoExpert());
    const opts = { ...small, width: 48, height: 32, guidance2: 2 };
    const ref = await pipe.generate(opts);
    try {
      for (const [n, strategy] of [
        [2, "cfg"],
        [2, "ulysses"],
        [2, "ring"],
      ] as const) {
        const outs = await runRanks(n, (comm) => generateParallel(pipe, comm, { ...opts, strategy }));
        for (const o of outs) {
          expect(await maxRelErr(o.latents, ref.latents)).toBeLessThan(1e-4);
          expect(o.experts?.steps).toEqual(ref.experts?.steps);
          o.video.dispose();
          o.latents.dispose();
        }
      }
    } finally {
      ref.video.dispose();
      ref.latents.dispose();
      pipe.dispose();
    }
    expect(liveTensorCount()).toBe(before);
  });
});

describe("the memory estimate of two experts", () => {
  it("counts both experts on the device, or one there and both in host memory when swapping", () => {
    const cfg = randomModelConfigs("wan2.2-t2v-a14b");
    const base = {
      transformer: cfg.transformer,
      vae: cfg.vae,
      textParams: 5.7e9,
      dtype: "bf16" as const,
      device: "cuda" as const,
      width: 832,
      height: 480,
      frames: 81,
    };
    const one = estimateMemory(base);
    const both = estimateMemory({ ...base, transformer2: cfg.transformer2 });
    const swapped = estimateMemory({ ...base, transformer2: cfg.transformer2, expertSwap: true });
    const expert = parameterCount(WAN21_T2V_14B) * 2;
    expect(both.experts).toEqual([expert, expert]);
    expect(both.weights - one.weights).toBe(expert);
    expect(swapped.weights).toBe(one.weights);
    expect(swapped.hostWeights).toBe(2 * expert);
    expect(expert / 1e9).toBeCloseTo(28.6, 0);
    expect(both.total - swapped.total).toBe(expert);
  });
});

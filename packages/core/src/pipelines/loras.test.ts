// LoRAs through the pipeline: per-call and load-time sets, merged without a reload and
// only when the set changes, removed without a trace, named from a LoRA folder; and
// few-step distilled sampling (guidance 1 runs one branch; an explicit schedule).
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cudaStatus, Device, full, liveTensorCount, randn, type Tensor } from "@tessera/native";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { WanTransformer } from "../models/wan/transformer.js";
import { LoraAdapter } from "../weights/lora/adapter.js";
import { mergedByHand, writeSyntheticLora } from "../weights/lora/synthetic.js";
import { WeightStore } from "../weights/store.js";
import {
  GenerateOptionError,
  randomWanComponents,
  TransformerLoras,
  WanPipeline,
  wanLoraTarget,
  writeRandomWanModel,
} from "./index.js";

const small = { width: 32, height: 32, frames: 5, steps: 3 };
const TARGETS = [
  "blocks.0.attn1.to_q.weight",
  "blocks.0.attn2.to_v.weight",
  "blocks.1.ffn.net.0.proj.weight",
  "condition_embedder.time_proj.weight",
  "proj_out.weight",
  "blocks.1.scale_shift_table",
];

async function values(t: Tensor): Promise<Float32Array> {
  return t.toFloat32Array();
}

function relL2(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += ((a[i] as number) - (b[i] as number)) ** 2;
    den += (b[i] as number) ** 2;
  }
  return Math.sqrt(num / den);
}

async function bytesOf(store: WeightStore): Promise<Map<string, number[]>> {
  const m = new Map<string, number[]>();
  for (const n of store.names()) m.set(n, Array.from(await store.get(n).toTypedArray()));
  return m;
}

const dispose = (r: { video: Tensor; latents: Tensor }) => {
  r.video.dispose();
  r.latents.dispose();
};

describe("LoRAs in the pipeline", () => {
  let dir: string;
  let loraDir: string;
  let pipe: WanPipeline;
  let loaded: Map<string, number[]>;
  let base = 0;
  const entries: Record<string, Awaited<ReturnType<typeof writeSyntheticLora>>> = {};

  beforeAll(async () => {
    base = liveTensorCount();
    dir = mkdtempSync(join(tmpdir(), "tessera-pipe-lora-"));
    loraDir = join(dir, "loras");
    mkdirSync(loraDir);
    pipe = new WanPipeline({ ...randomWanComponents({ seed: 31 }), loraDir });
    const model = wanLoraTarget(pipe.transformer.config);
    entries.style = await writeSyntheticLora(join(loraDir, "style.safetensors"), model, {
      naming: "comfyui",
      targets: TARGETS,
      alpha: 2,
      seed: 5,
    });
    entries.speed = await writeSyntheticLora(join(loraDir, "speed.safetensors"), model, {
      naming: "kohya",
      targets: TARGETS.slice(2),
      rank: 2,
      seed: 6,
    });
    writeFileSync(join(loraDir, "notes.txt"), "not a LoRA");
    loaded = await bytesOf(pipe.transformer.weights);
  });
  afterAll(() => {
    pipe.dispose();
    rmSync(dir, { recursive: true, force: true });
    expect(liveTensorCount()).toBe(base);
  });

  it("lists the LoRA folder by name", () => {
    expect(pipe.listLoras()).toEqual(["speed", "style"]);
    expect(pipe.loraDir).toBe(loraDir);
  });

  it("merges the LoRAs a call asks for: the same video as a model whose weights were changed by hand", async () => {
    const r = await pipe.generate({
      prompt: "a red ball",
      seed: 3,
      ...small,
      loras: [
        { name: "style", strength: 0.8 },
        { path: join(loraDir, "speed.safetensors"), strength: -0.5 },
      ],
    });
    expect(pipe.loras.map((l) => [l.path, l.strength])).toEqual([
      [join(loraDir, "speed.safetensors"), -0.5],
      [join(loraDir, "style.safetensors"), 0.8],
    ]);
    const fresh = randomWanComponents({ seed: 31 });
    const hand = await mergedByHand(fresh.transformer.weights, [
      { entries: entries.style ?? [], strength: 0.8 },
      { entries: entries.speed ?? [], strength: -0.5 },
    ]);
    fresh.transformer.weights.dispose();
    const byHand = new WanPipeline({
      ...fresh,
      transformer: new WanTransformer(fresh.transformer.config, hand),
    });
    const want = await byHand.generate({ prompt: "a red ball", seed: 3, ...small });
    expect(relL2(await values(r.latents), await values(want.latents))).toBeLessThanOrEqual(1e-5);
    const plain = await byHand.generate({ prompt: "a red ball", seed: 3, ...small, loras: [] });
    for (const x of [r, want, plain]) dispose(x);
    byHand.dispose();
  });

  it("does nothing for the same set again, and removes every LoRA for [] (the loaded bits back)", async () => {
    const setDeltas = vi.spyOn(pipe.transformer.weights, "setDeltas");
    const load = vi.spyOn(LoraAdapter, "load");
    const set = [{ name: "style", strength: 0.8 }];
    const a = await pipe.generate({ prompt: "a red ball", seed: 3, ...small, loras: set });
    const calls = setDeltas.mock.calls.length;
    const b = await pipe.generate({
      prompt: "a red ball",
      seed: 3,
      ...small,
      loras: [{ name: "style.safetensors", strength: 0.8 }],
    });
    expect(setDeltas.mock.calls.length).toBe(calls);
    expect(Array.from(await values(b.latents))).toEqual(Array.from(await values(a.latents)));
    // The parsed files are kept: switching back and forth reads neither again.
    const before = load.mock.calls.length;
    const c = await pipe.generate({ prompt: "a red ball", seed: 3, ...small, loras: [] });
    expect(await bytesOf(pipe.transformer.weights)).toEqual(loaded);
    expect(pipe.transformer.weights.changed()).toEqual([]);
    const d = await pipe.generate({ prompt: "a red ball", seed: 3, ...small, loras: set });
    expect(load.mock.calls.length).toBe(before);
    expect(Array.from(await values(d.latents))).toEqual(Array.from(await values(a.latents)));
    expect(Array.from(await values(c.latents))).not.toEqual(Array.from(await values(a.latents)));
    for (const x of [a, b, c, d]) dispose(x);
    setDeltas.mockRestore();
    load.mockRestore();
  });

  it("reads a LoRA file again when it changes on disk", async () => {
    const model = wanLoraTarget(pipe.transformer.config);
    const file = join(loraDir, "changing.safetensors");
    await writeSyntheticLora(file, model, { naming: "diffusers", targets: TARGETS, seed: 40 });
    await pipe.generate({ prompt: "x", seed: 1, ...small, loras: [{ name: "changing" }] }).then(dispose);
    const first = await bytesOf(pipe.transformer.weights);
    await writeSyntheticLora(file, model, { naming: "diffusers", targets: TARGETS, seed: 41 });
    utimesSync(file, new Date(), new Date(Date.now() + 5000));
    await pipe.generate({ prompt: "x", seed: 1, ...small, loras: [{ name: "changing" }] }).then(dispose);
    expect(await bytesOf(pipe.transformer.weights)).not.toEqual(first);
    rmSync(file);
  });

  it("keeps the set given at load (or to setLoras) for calls that name none", async () => {
    await pipe.setLoras([{ name: "speed", strength: 1 }]);
    expect(pipe.loras.map((l) => l.strength)).toEqual([1]);
    await pipe.generate({ prompt: "x", seed: 1, ...small, loras: [] }).then(dispose);
    expect(pipe.loras).toEqual([]);
    await pipe.generate({ prompt: "x", seed: 1, ...small }).then(dispose);
    expect(pipe.loras.map((l) => l.path)).toEqual([join(loraDir, "speed.safetensors")]);
    await pipe.setLoras([]);
    expect(await bytesOf(pipe.transformer.weights)).toEqual(loaded);
  });

  it("loads a model folder with LoRAs named from its LoRA folder", async () => {
    const modelDir = join(dir, "model");
    await writeRandomWanModel(modelDir, { seed: 31 });
    const p = await WanPipeline.load(modelDir, { loraDir, loras: [{ name: "style", strength: 0.8 }] });
    expect(p.loras.map((l) => l.path)).toEqual([join(loraDir, "style.safetensors")]);
    const r = await p.generate({ prompt: "a red ball", seed: 3, ...small });
    const q = await pipe.generate({
      prompt: "a red ball",
      seed: 3,
      ...small,
      loras: [{ name: "style", strength: 0.8 }],
    });
    expect(Array.from(await values(r.latents))).toEqual(Array.from(await values(q.latents)));
    for (const x of [r, q]) dispose(x);
    p.dispose();
    await expect(WanPipeline.load(modelDir, { loraDir, loras: [{ name: "nope" }] })).rejects.toThrow(
      /loras\[0\]: no LoRA named 'nope' \(the LoRAs here are 'speed', 'style'\)/,
    );
  });

  it("refuses unknown names, missing files and LoRAs that do not fit, before the run and without changing the model", async () => {
    await pipe.setLoras([]);
    const fail = async (loras: unknown, message: RegExp) => {
      const err = await pipe
        .generate({ prompt: "x", ...small, loras: loras as never })
        .then(dispose)
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GenerateOptionError);
      expect((err as GenerateOptionError).field).toBe("loras");
      expect((err as Error).message).toMatch(message);
    };
    await fail([{ name: "nope" }], /no LoRA named 'nope'/);
    await fail([{ path: join(dir, "missing.safetensors") }], /no such LoRA file/);
    await fail([{ name: "../style" }], /a LoRA's name/);
    await fail([{ name: "style" }, { name: "style", strength: 2 }], /given twice/);
    const sdxl = join(dir, "sdxl.safetensors");
    const { writeSafetensors } = await import("../weights/safetensors.js");
    await writeSafetensors(sdxl, {
      "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": {
        dtype: "F32",
        shape: [2, 4],
        data: new Float32Array(8),
      },
    });
    await fail(
      [{ path: sdxl }],
      /sdxl\.safetensors: 'lora_unet_down_blocks_0_attentions_0_proj_in\.lora_down\.weight' is a LoRA key for Stable Diffusion/,
    );
    expect(() => pipe.resolve({ prompt: "x", loras: [{ name: "nope" }] })).toThrow(/no LoRA named 'nope'/);
    expect(await bytesOf(pipe.transformer.weights)).toEqual(loaded);
    // Without a LoRA folder, names cannot be looked up.
    const bare = new WanPipeline(randomWanComponents({ seed: 2 }));
    await expect(bare.generate({ prompt: "x", ...small, loras: [{ name: "style" }] })).rejects.toThrow(
      /has no LoRA folder/,
    );
    bare.dispose();
  });

  it("refuses to change the LoRAs under a generation that is running with others", async () => {
    const a = pipe.generate({ prompt: "x", seed: 1, ...small, loras: [{ name: "style" }] });
    const b = pipe.generate({ prompt: "x", seed: 1, ...small, loras: [{ name: "speed" }] });
    await expect(b).rejects.toThrow(/cannot change while another generation runs/);
    dispose(await a);
    // The same set may run side by side.
    const [c, d] = await Promise.all([
      pipe.generate({ prompt: "x", seed: 1, ...small, loras: [{ name: "style" }] }),
      pipe.generate({ prompt: "x", seed: 1, ...small, loras: [{ name: "style" }] }),
    ]);
    expect(Array.from(await values(c.latents))).toEqual(Array.from(await values(d.latents)));
    for (const x of [c, d]) dispose(x);
  });

  it("leaves the step as it was: a merged model is a plain model of the merged weights, bit for bit", async () => {
    await pipe.setLoras([{ name: "style", strength: 0.8 }]);
    const copy = new WeightStore("copy of the merged weights");
    for (const n of pipe.transformer.weights.names()) {
      const t = pipe.transformer.weights.get(n);
      copy.set(n, await t.to("cpu"));
    }
    const plain = new WanTransformer(pipe.transformer.config, copy);
    const input = {
      latents: randn([1, 2, 4, 4, pipe.transformer.config.in_channels], { seed: 9 }),
      timesteps: full([1], 500, { dtype: "f32" }),
      context: randn([1, 3, pipe.transformer.config.text_dim], { seed: 8 }),
    };
    const y1 = pipe.transformer.forward(input);
    const y2 = plain.forward(input);
    expect(Array.from(await values(y1))).toEqual(Array.from(await values(y2)));
    for (const t of [y1, y2, ...Object.values(input)]) t.dispose();
    copy.dispose();
    await pipe.setLoras([]);
  });
});

const CUDA = cudaStatus().available;

describe.skipIf(!CUDA)(`LoRAs on a GPU in bf16${CUDA ? "" : " [SKIPPED: no CUDA device]"}`, () => {
  it("merges like the CPU's f32 merge to bf16 rounding, and restores the loaded bf16 bits", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tessera-lora-gpu-"));
    const gpu = randomWanComponents({ seed: 33, device: Device.cuda(0), dtype: "bf16" });
    const cpu = randomWanComponents({ seed: 33 });
    const model = wanLoraTarget(gpu.transformer.config);
    const file = join(dir, "l.safetensors");
    await writeSyntheticLora(file, model, { naming: "comfyui", targets: TARGETS, alpha: 2, seed: 3 });
    const loaded = await bytesOf(gpu.transformer.weights);
    const g = new TransformerLoras(gpu.transformer.weights, model);
    const c = new TransformerLoras(cpu.transformer.weights, model);
    await g.apply([{ path: file, strength: 0.8 }]);
    await c.apply([{ path: file, strength: 0.8 }]);
    for (const t of TARGETS) {
      const a = await gpu.transformer.weights.get(t).toFloat32Array();
      const b = await cpu.transformer.weights.get(t).toFloat32Array();
      // bf16 keeps 8 bits of mantissa: a relative error near 2^-9 per value.
      expect(relL2(a, b), t).toBeLessThan(5e-3);
    }
    await g.apply([]);
    expect(await bytesOf(gpu.transformer.weights)).toEqual(loaded);
    for (const x of [g, c]) x.dispose();
    for (const k of [gpu, cpu])
      for (const s of [k.transformer.weights, k.vae.weights, k.textEncoder.weights]) s.dispose();
    rmSync(dir, { recursive: true, force: true });
  });
});

describe("TransformerLoras", () => {
  it("keeps at most cacheSize parsed files beyond those merged", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tessera-lora-cache-"));
    const c = randomWanComponents({ seed: 4 });
    const model = wanLoraTarget(c.transformer.config);
    const loras = new TransformerLoras(c.transformer.weights, model, 1);
    const files = [0, 1, 2].map((i) => join(dir, `l${i}.safetensors`));
    for (const [i, f] of files.entries())
      await writeSyntheticLora(f, model, { naming: "comfyui", targets: TARGETS.slice(0, 2), seed: i + 1 });
    const load = vi.spyOn(LoraAdapter, "load");
    for (const f of files) await loras.apply([{ path: f, strength: 1 }]);
    expect(load).toHaveBeenCalledTimes(3);
    await loras.apply([{ path: files[1] as string, strength: 1 }]); // cached (one spare kept)
    expect(load).toHaveBeenCalledTimes(3);
    await loras.apply([{ path: files[0] as string, strength: 1 }]); // evicted earlier: read again
    expect(load).toHaveBeenCalledTimes(4);
    load.mockRestore();
    loras.dispose();
    for (const s of [c.transformer.weights, c.vae.weights, c.textEncoder.weights]) s.dispose();
    rmSync(dir, { recursive: true, force: true });
  });
});

describe("few-step distilled sampling", () => {
  let pipe: WanPipeline;
  beforeAll(() => {
    pipe = new WanPipeline(randomWanComponents({ seed: 12 }));
  });
  afterAll(() => pipe.dispose());

  /** The batch of every transformer call a generation makes. */
  async function batches(opts: Parameters<WanPipeline["generate"]>[0]): Promise<number[]> {
    const seen: number[] = [];
    const t = pipe.transformer;
    const fwd = vi.spyOn(t, "forward").mockImplementation(function (this: WanTransformer, input) {
      seen.push(input.latents.shape[0] as number);
      return WanTransformer.prototype.forward.call(this, input);
    });
    const cached = vi.spyOn(t, "forwardStepCached").mockImplementation(function (
      this: WanTransformer,
      input,
      ...rest
    ) {
      seen.push(input.latents.shape[0] as number);
      return WanTransformer.prototype.forwardStepCached.call(this, input, ...rest);
    });
    try {
      dispose(await pipe.generate(opts));
    } finally {
      fwd.mockRestore();
      cached.mockRestore();
    }
    return seen;
  }

  it("runs one transformer batch of 1 per step at guidance 1 (and at or below 1), two branches above", async () => {
    expect(await batches({ prompt: "a cat", seed: 1, ...small, steps: 4, guidance: 1 })).toEqual([
      1, 1, 1, 1,
    ]);
    expect(await batches({ prompt: "a cat", seed: 1, ...small, steps: 2, guidance: 0.5 })).toEqual([1, 1]);
    expect(await batches({ prompt: "a cat", seed: 1, ...small, steps: 2, guidance: 5 })).toEqual([2, 2]);
  });

  it("keeps step caching working with one branch: threshold 0 equals no cache, each step one batch of 1", async () => {
    const opts = { prompt: "a cat", seed: 2, ...small, steps: 4, guidance: 1 };
    expect(await batches({ ...opts, stepCache: 0 })).toEqual([1, 1, 1, 1]);
    const plain = await pipe.generate(opts);
    const cached = await pipe.generate({ ...opts, stepCache: 0 });
    expect(cached.fullSteps).toBe(4);
    expect(Array.from(await values(cached.latents))).toEqual(Array.from(await values(plain.latents)));
    const skipping = await pipe.generate({ ...opts, stepCache: 10 });
    expect(skipping.fullSteps).toBe(2);
    for (const x of [plain, cached, skipping]) dispose(x);
  });

  it("samples an explicit schedule: sigmas give the model shift(s)·1000, timesteps give it t", async () => {
    const seen: number[] = [];
    const r = await pipe.generate({
      prompt: "a cat",
      seed: 3,
      ...small,
      steps: undefined,
      guidance: 1,
      shift: 5,
      sigmas: [1, 0.75, 0.5, 0.25],
      onProgress: (p) => seen.push(p.timestep),
    });
    expect(r.stepsRun).toBe(4);
    expect(seen[0]).toBe(1000);
    expect(seen[1]).toBe(937.5);
    expect(seen[2]).toBeCloseTo(833.3333, 4);
    expect(seen[3]).toBe(625);
    const s2: number[] = [];
    const q = await pipe.generate({
      prompt: "a cat",
      seed: 3,
      ...small,
      steps: undefined,
      guidance: 1,
      shift: 5,
      timesteps: [1000, 750, 500, 250],
      onProgress: (p) => s2.push(p.timestep),
    });
    expect(s2).toEqual([1000, 750, 500, 250]);
    // The same noise levels, other model timesteps: another video.
    expect(Array.from(await values(q.latents))).not.toEqual(Array.from(await values(r.latents)));
    for (const x of [r, q]) dispose(x);
    await expect(
      pipe.generate({
        prompt: "a cat",
        ...small,
        steps: undefined,
        timesteps: [1000, 500],
        scheduler: "unipc",
      }),
    ).rejects.toThrow(/runs the euler sampler/);
  });
});

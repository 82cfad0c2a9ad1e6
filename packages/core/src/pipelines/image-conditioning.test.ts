// Image-to-video by concatenated conditioning outside the golden fixtures: the condition
// mask's layout, the option checks, a random tiny Wan2.1 I2V model and a tiny Wan2.2
// I2V-A14B (two experts, no CLIP) end to end (in memory and as a written diffusers
// folder), the single-file original names, and LoRAs on the image cross-attention.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { full, liveTensorCount, randn } from "@tessera/native";
import { afterAll, describe, expect, it } from "vitest";
import { WAN_I2V_TINY, type WanTransformerConfig } from "../models/wan/config.js";
import { wanTransformerParams } from "../models/wan/params.js";
import { type WanForwardInput, WanTransformer } from "../models/wan/transformer.js";
import type { RgbImage } from "../video/frames.js";
import { loadWeights } from "../weights/load.js";
import { planLora } from "../weights/lora/adapter.js";
import { mergedByHand, writeSyntheticLora } from "../weights/lora/synthetic.js";
import { type TensorToWrite, writeSafetensors } from "../weights/safetensors.js";
import {
  COMFYUI_PREFIX,
  loadSingleFileCheckpoint,
  wanTransformerKeyMap,
  wanTransformerOriginalNames,
} from "../weights/single-file.js";
import { detectWanFamily } from "./family.js";
import { conditionMask } from "./image-conditioning.js";
import { wanLoraTarget } from "./loras.js";
import { randomModelConfigs, randomWanComponents, writeRandomWanModel } from "./model-folder.js";
import { GenerateOptionError } from "./options.js";
import { WanPipeline } from "./wan.js";

const dir = mkdtempSync(join(tmpdir(), "tessera-i2v-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function image(w: number, h: number, seed: number): RgbImage {
  const data = new Uint8Array(w * h * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37 + seed * 101) % 256;
  return { width: w, height: h, data };
}

const RUN = {
  prompt: "a red ball",
  width: 32,
  height: 32,
  frames: 5,
  steps: 2,
  seed: 3,
  rewrite: false,
} as const;

describe("conditionMask", () => {
  it("lays the known frames out as diffusers does", () => {
    // [F, h, w, 4] with h = w = 1: latent frame 0 all ones, the rest zero.
    expect(Array.from(conditionMask(3, 1, 1, 4, false))).toEqual([1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    // FLF2V: the last pixel frame is the last entry of the last latent frame.
    expect(Array.from(conditionMask(3, 1, 1, 4, true))).toEqual([1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1]);
    const m = conditionMask(2, 2, 3, 4, true);
    expect(m.length).toBe(2 * 2 * 3 * 4);
    expect(m.reduce((a, b) => a + b, 0)).toBe(6 * 4 + 6);
  });
});

describe("a random tiny I2V model", () => {
  it("generates from an image, and refuses a run without one or with a video", async () => {
    const before = liveTensorCount();
    const pipe = new WanPipeline(randomWanComponents({ config: "tiny-i2v", seed: 5, textLength: 8 }));
    expect(pipe.requiresImage).toBe(true);
    expect(pipe.requiresEndImage).toBe(false);
    const a = await pipe.generate({ ...RUN, image: image(40, 24, 1) });
    expect(a.latents.shape).toEqual([1, 2, 4, 4, 4]);
    expect((await a.latents.toFloat32Array()).every(Number.isFinite)).toBe(true);
    // The image matters: another one gives other latents.
    const b = await pipe.generate({ ...RUN, image: image(40, 24, 2) });
    const [la, lb] = [await a.latents.toFloat32Array(), await b.latents.toFloat32Array()];
    expect(la.some((v, i) => v !== lb[i])).toBe(true);
    // An end image too (only FLF2V was trained for one, but the I2V model takes both images' CLIP states).
    const c = await pipe.generate({ ...RUN, image: image(40, 24, 1), endImage: image(24, 40, 3) });
    expect(c.latents.shape).toEqual([1, 2, 4, 4, 4]);
    for (const r of [a, b, c]) {
      r.video.dispose();
      r.latents.dispose();
    }
    await expect(pipe.generate({ ...RUN })).rejects.toThrow(
      /image-to-video \(I2V\) model: give the start image/,
    );
    const video = { width: 32, height: 32, fps: 8, frames: [new Uint8Array(32 * 32 * 3)] };
    expect(() => pipe.resolve({ ...RUN, video })).toThrow(GenerateOptionError);
    // Without the image the options still resolve (a server checks before its uploads exist).
    expect(() => pipe.resolve({ ...RUN })).not.toThrow();
    pipe.dispose();
    expect(liveTensorCount()).toBe(before);
  });

  it("as FLF2V needs the end image", async () => {
    const cfg = randomModelConfigs("tiny-i2v");
    // Two images' CLIP tokens (17 each for the tiny CLIP) with learned positions.
    const flf: typeof cfg = { ...cfg, transformer: { ...cfg.transformer, pos_embed_seq_len: 34 } };
    const pipe = new WanPipeline(randomWanComponents({ config: flf, seed: 5, textLength: 8 }));
    expect(pipe.requiresEndImage).toBe(true);
    await expect(pipe.generate({ ...RUN, image: image(32, 32, 1) })).rejects.toThrow(/FLF2V.*end image/);
    const r = await pipe.generate({ ...RUN, image: image(32, 32, 1), endImage: image(32, 32, 2) });
    expect((await r.latents.toFloat32Array()).every(Number.isFinite)).toBe(true);
    r.video.dispose();
    r.latents.dispose();
    pipe.dispose();
  });

  it("loads from a written diffusers folder and gives the in-memory model's latents", async () => {
    const folder = join(dir, "tiny-i2v");
    await writeRandomWanModel(folder, { config: "tiny-i2v", seed: 7 });
    const loaded = await WanPipeline.load(folder);
    const mem = new WanPipeline(randomWanComponents({ config: "tiny-i2v", seed: 7 }));
    expect(loaded.imageEncoder?.encoder.config.hidden_size).toBe(32);
    const opts = { ...RUN, image: image(40, 24, 1) };
    const [x, y] = [await loaded.generate(opts), await mem.generate(opts)];
    expect(Array.from(await x.latents.toFloat32Array())).toEqual(
      Array.from(await y.latents.toFloat32Array()),
    );
    for (const r of [x, y]) {
      r.video.dispose();
      r.latents.dispose();
    }
    loaded.dispose();
    mem.dispose();
  });
});

describe("I2V single-file originals", () => {
  const flf: WanTransformerConfig = { ...WAN_I2V_TINY, pos_embed_seq_len: 34 };

  it("maps Wan-AI's names (img_emb.*, cross_attn.k_img / v_img / norm_k_img) onto the model's", () => {
    const params = wanTransformerParams(flf);
    const mapped = wanTransformerOriginalNames(flf.num_layers)
      .map(wanTransformerKeyMap)
      .filter((n): n is string => n !== null && params.has(n));
    expect(new Set(mapped).size).toBe(params.size);
    expect(wanTransformerKeyMap("blocks.1.cross_attn.k_img.weight")).toBe("blocks.1.attn2.add_k_proj.weight");
    expect(wanTransformerKeyMap("blocks.0.cross_attn.norm_k_img.weight")).toBe(
      "blocks.0.attn2.norm_added_k.weight",
    );
    expect(wanTransformerKeyMap("img_emb.proj.3.bias")).toBe(
      "condition_embedder.image_embedder.ff.net.2.bias",
    );
    expect(wanTransformerKeyMap("img_emb.emb_pos")).toBe("condition_embedder.image_embedder.pos_embed");
  });

  it("loads a ComfyUI-prefixed FLF2V checkpoint into a working model", async () => {
    const params = wanTransformerParams(flf);
    const tensors: Record<string, TensorToWrite> = {};
    const diffusers: Record<string, TensorToWrite> = {};
    let seed = 1;
    for (const name of wanTransformerOriginalNames(flf.num_layers)) {
      const target = wanTransformerKeyMap(name);
      const spec = target === null ? undefined : params.get(target);
      if (!spec || target === null) continue;
      const t = randn(spec.shape, { seed: seed++ });
      const data = (await t.toFloat32Array()).map((v) => v * 0.2);
      t.dispose();
      tensors[`${COMFYUI_PREFIX}${name}`] = { dtype: "F32", shape: spec.shape, data };
      diffusers[target] = { dtype: "F32", shape: spec.shape, data };
    }
    const o = join(dir, "flf2v-comfy.safetensors");
    const d = join(dir, "flf2v-diffusers.safetensors");
    await writeSafetensors(o, tensors);
    await writeSafetensors(d, diffusers);
    const { weights } = await loadSingleFileCheckpoint(o, { expect: "transformer" });
    const ref = await loadWeights(d);
    const [a, b] = [new WanTransformer(flf, weights), new WanTransformer(flf, ref)];
    const input = {
      latents: randn([1, 1, 2, 2, 16], { seed: 9 }),
      condition: randn([1, 1, 2, 2, 20], { seed: 10 }),
      context: randn([1, 3, flf.text_dim], { seed: 11 }),
      image: randn([1, 34, 32], { seed: 12 }),
      timesteps: full([1], 500),
    };
    const [ya, yb] = [a.forward(input), b.forward(input)];
    const va = await ya.toFloat32Array();
    expect(va.every(Number.isFinite)).toBe(true);
    expect(Array.from(va)).toEqual(Array.from(await yb.toFloat32Array()));
    for (const t of [...Object.values(input), ya, yb]) t.dispose();
    weights.dispose();
    ref.dispose();
  });
});

describe("LoRAs on the image cross-attention", () => {
  const model = wanLoraTarget(WAN_I2V_TINY, "the tiny I2V transformer");
  const targets = [
    "blocks.0.attn2.add_k_proj.weight",
    "blocks.1.attn2.add_v_proj.weight",
    "blocks.0.attn2.to_q.weight",
  ];

  for (const naming of ["comfyui", "diffusers", "kohya"] as const)
    it(`plans ${naming} names (ComfyUI: cross_attn.k_img / v_img) onto add_k_proj / add_v_proj`, async () => {
      const file = join(dir, `img-${naming}.safetensors`);
      await writeSyntheticLora(file, model, { naming, targets, alpha: 2 });
      const t = await loadWeights(file);
      const shapes = new Map(t.names().map((n) => [n, { shape: t.get(n).shape }]));
      const plan = planLora(file, shapes, model);
      t.dispose();
      expect(plan.entries.map((e) => e.target).sort()).toEqual([...targets].sort());
      if (naming === "comfyui")
        expect([...shapes.keys()].some((k) => k.includes("cross_attn.k_img.lora_down"))).toBe(true);
    });

  it("merges into the pipeline's transformer without a reload", async () => {
    const file = join(dir, "img-merge.safetensors");
    const pipe = new WanPipeline(randomWanComponents({ config: "tiny-i2v", seed: 2, textLength: 8 }));
    const target = wanLoraTarget(pipe.transformer.config);
    const entries = await writeSyntheticLora(file, target, {
      naming: "comfyui",
      targets: ["blocks.0.attn2.add_k_proj.weight", "blocks.1.attn2.add_v_proj.weight"],
    });
    const hand = await mergedByHand(pipe.transformer.weights, [{ entries, strength: 0.5 }]);
    await pipe.setLoras([{ path: file, strength: 0.5 }]);
    for (const name of ["blocks.0.attn2.add_k_proj.weight", "blocks.1.attn2.add_v_proj.weight"]) {
      const got = await pipe.transformer.weights.get(name).toFloat32Array();
      const want = await hand.get(name).toFloat32Array();
      for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i] as number, 5);
    }
    hand.dispose();
    pipe.dispose();
  });
});

// Wan2.2 I2V-A14B: the 36-channel condition (here 4 + 4 + 4) without CLIP, bound to both experts.
describe("a random tiny I2V-A14B model (two experts, no image encoder)", () => {
  const A14B_RUN = { ...RUN, steps: 6 };

  // Records what each expert's transformer is given, whichever forward the loop calls.
  function spy(t: WanTransformer, seen: { condition: number[]; image: boolean }[]) {
    for (const m of ["forward", "forwardSplit", "forwardStepCached"] as const) {
      const f = t[m].bind(t) as (...a: unknown[]) => unknown;
      (t as unknown as Record<string, unknown>)[m] = (input: WanForwardInput, ...rest: unknown[]) => {
        seen.push({
          condition: input.condition ? [...input.condition.shape] : [],
          image: input.image !== undefined,
        });
        return f(input, ...rest);
      };
    }
  }

  it("conditions both experts on the image's latents, and needs the image", async () => {
    const before = liveTensorCount();
    const pipe = new WanPipeline(randomWanComponents({ config: "tiny-i2v-a14b", seed: 5, textLength: 8 }));
    expect(pipe.requiresImage).toBe(true);
    expect(pipe.requiresEndImage).toBe(false);
    expect(pipe.imageEncoder).toBeNull();
    expect(pipe.transformer.config.image_dim ?? null).toBeNull();
    expect(pipe.transformer.config.in_channels).toBe(12);
    const seen: [{ condition: number[]; image: boolean }[], { condition: number[]; image: boolean }[]] = [
      [],
      [],
    ];
    spy(pipe.transformer, seen[0]);
    spy(pipe.transformer2 as WanTransformer, seen[1]);
    const a = await pipe.generate({ ...A14B_RUN, image: image(40, 24, 1) });
    expect(a.latents.shape).toEqual([1, 2, 4, 4, 4]);
    expect(a.experts?.boundary).toBe(900);
    const [hi, lo] = a.experts?.steps ?? [0, 0];
    expect(hi).toBeGreaterThan(0);
    expect(lo).toBeGreaterThan(0);
    // Each expert got the mask and the image's latents (8 channels beside the 4 of the latents), no CLIP states.
    for (const s of seen) {
      expect(s.length).toBeGreaterThan(0);
      for (const x of s) expect(x).toEqual({ condition: [1, 2, 4, 4, 8], image: false });
    }
    // Deterministic, and the image matters.
    const again = await pipe.generate({ ...A14B_RUN, image: image(40, 24, 1) });
    const b = await pipe.generate({ ...A14B_RUN, image: image(40, 24, 2) });
    const [la, l2, lb] = await Promise.all([a, again, b].map((r) => r.latents.toFloat32Array()));
    expect(Array.from(l2 as Float32Array)).toEqual(Array.from(la as Float32Array));
    expect((la as Float32Array).some((v, i) => v !== (lb as Float32Array)[i])).toBe(true);
    // An end image marks the last frame too (as Wan2.1 FLF2V's condition).
    const c = await pipe.generate({ ...A14B_RUN, image: image(40, 24, 1), endImage: image(24, 40, 3) });
    const lc = await c.latents.toFloat32Array();
    expect(lc.some((v, i) => v !== (la as Float32Array)[i])).toBe(true);
    for (const r of [a, again, b, c]) {
      r.video.dispose();
      r.latents.dispose();
    }
    await expect(pipe.generate({ ...A14B_RUN })).rejects.toThrow(
      /Wan2\.2 image-to-video \(I2V-A14B\) model: give the start image/,
    );
    const video = { width: 32, height: 32, fps: 8, frames: [new Uint8Array(32 * 32 * 3)] };
    expect(() => pipe.resolve({ ...A14B_RUN, video })).toThrow(GenerateOptionError);
    expect(() => pipe.resolve({ ...A14B_RUN })).not.toThrow();
    pipe.dispose();
    expect(liveTensorCount()).toBe(before);
  });

  it("refuses experts that differ in image_dim", () => {
    const cfg = randomModelConfigs("tiny-i2v-a14b");
    const withClip = randomModelConfigs("tiny-i2v").transformer;
    const c = randomWanComponents({ config: { ...cfg, transformer2: withClip }, seed: 5 });
    expect(() => new WanPipeline(c)).toThrow(/differ in image_dim/);
    for (const w of [c.transformer, c.transformer2, c.vae, c.textEncoder]) w?.weights.dispose();
  });

  it("loads from a written folder (transformer_2, no image_encoder) with the in-memory model's latents", async () => {
    const folder = join(dir, "tiny-i2v-a14b");
    await writeRandomWanModel(folder, { config: "tiny-i2v-a14b", seed: 7 });
    const index = JSON.parse(readFileSync(join(folder, "model_index.json"), "utf8"));
    expect(index).toMatchObject({
      _class_name: "WanImageToVideoPipeline",
      boundary_ratio: 0.9,
      image_encoder: [null, null],
      transformer_2: ["diffusers", "WanTransformer3DModel"],
    });
    expect(existsSync(join(folder, "image_encoder"))).toBe(false);
    expect((await detectWanFamily(folder))?.family).toBe("Wan2.2 I2V-A14B");
    const loaded = await WanPipeline.load(folder);
    expect(loaded.imageEncoder).toBeNull();
    expect(loaded.requiresImage).toBe(true);
    expect(loaded.boundary).toBe(900);
    const mem = new WanPipeline(randomWanComponents({ config: "tiny-i2v-a14b", seed: 7 }));
    const opts = { ...A14B_RUN, image: image(40, 24, 1) };
    const [x, y] = [await loaded.generate(opts), await mem.generate(opts)];
    expect(Array.from(await x.latents.toFloat32Array())).toEqual(
      Array.from(await y.latents.toFloat32Array()),
    );
    for (const r of [x, y]) {
      r.video.dispose();
      r.latents.dispose();
    }
    loaded.dispose();
    mem.dispose();
  });
});

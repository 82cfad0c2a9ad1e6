// LoRAs in each naming, merged into a tiny random Wan transformer through its weight
// store, against a model whose weights were changed by hand (W + scale·up@down in
// float64, rounded to f32); removing them gives back the loaded weights bit for bit;
// files that do not fit are errors naming the file and the key.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { full, liveTensorCount, randn, type Tensor } from "@tessera/native";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WAN_TINY } from "../../models/wan/config.js";
import { randomWanTransformerWeights, wanTransformerParams } from "../../models/wan/params.js";
import { WanTransformer } from "../../models/wan/transformer.js";
import { type TensorToWrite, writeSafetensors } from "../safetensors.js";
import type { WeightStore } from "../store.js";
import { LoraAdapter, LoraError, type LoraTargetModel, planLora } from "./adapter.js";
import { mergedByHand, type SyntheticEntry, writeSyntheticLora } from "./synthetic.js";

const MODEL: LoraTargetModel = {
  label: "the tiny Wan transformer",
  shapes: new Map([...wanTransformerParams(WAN_TINY)].map(([k, v]) => [k, v.shape])),
  numLayers: WAN_TINY.num_layers,
};

// Every kind of tensor a LoRA changes: attention, FFN, embedders, head, the conv patch
// embedding, qk-norm and cross-attention norm scales, biases, modulation tables.
const TARGETS = [
  "blocks.0.attn1.to_q.weight",
  "blocks.1.attn1.to_v.weight",
  "blocks.0.attn2.to_out.0.weight",
  "blocks.1.attn2.to_k.weight",
  "blocks.0.ffn.net.0.proj.weight",
  "blocks.1.ffn.net.2.weight",
  "condition_embedder.text_embedder.linear_1.weight",
  "condition_embedder.time_embedder.linear_2.weight",
  "condition_embedder.time_proj.weight",
  "proj_out.weight",
  "patch_embedding.weight",
  "blocks.0.attn1.norm_q.weight",
  "blocks.1.norm2.weight",
  "blocks.1.attn2.to_k.bias",
  "blocks.0.scale_shift_table",
  "scale_shift_table",
];

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "tessera-lora-"));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

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

describe("LoRA merging through the weight store", () => {
  let base = 0;
  let weights: WeightStore;
  /** The same weights, never merged into: what the hand-made merges start from. */
  let pristine: WeightStore;
  let model: WanTransformer;
  let inputs: { latents: Tensor; timesteps: Tensor; context: Tensor };
  let loaded: Map<string, number[]>;

  beforeAll(async () => {
    base = liveTensorCount();
    weights = randomWanTransformerWeights(WAN_TINY, { seed: 11 });
    pristine = randomWanTransformerWeights(WAN_TINY, { seed: 11 });
    model = new WanTransformer(WAN_TINY, weights);
    inputs = {
      latents: randn([1, 2, 4, 6, 16], { seed: 1 }),
      timesteps: full([1], 640, { dtype: "f32" }),
      context: randn([1, 5, WAN_TINY.text_dim], { seed: 2 }),
    };
    loaded = await bytesOf(weights);
  });
  afterAll(() => {
    for (const t of Object.values(inputs)) t.dispose();
    weights.dispose();
    pristine.dispose();
    expect(liveTensorCount()).toBe(base);
  });

  async function forward(store: WeightStore): Promise<Float32Array> {
    const m = store === weights ? model : new WanTransformer(WAN_TINY, store);
    const y = m.forward(inputs);
    const v = await y.toFloat32Array();
    y.dispose();
    return v;
  }

  async function expectLike(loras: { entries: SyntheticEntry[]; strength: number }[]): Promise<number> {
    const hand = await mergedByHand(pristine, loras);
    try {
      const err = relL2(await forward(weights), await forward(hand));
      expect(err).toBeLessThanOrEqual(1e-5);
      return err;
    } finally {
      hand.dispose();
    }
  }

  for (const [naming, alpha] of [
    ["diffusers", 8],
    ["comfyui", 2],
    ["kohya", 6],
    ["diff", undefined],
  ] as const)
    it(`merges a ${naming}-named LoRA at strengths 0.5 and 1 like weights changed by hand`, async () => {
      const file = join(tmp(), `${naming}.safetensors`);
      const entries = await writeSyntheticLora(file, MODEL, {
        naming,
        targets: TARGETS,
        rank: 3,
        ...(alpha !== undefined ? { alpha } : {}),
        seed: 100,
      });
      const lora = await LoraAdapter.load(file, MODEL);
      expect(lora.plan.naming).toContain(naming === "diff" ? "diff" : naming);
      expect(new Set(lora.plan.entries.map((e) => e.target))).toEqual(new Set(TARGETS));
      const lowrank = entries.find((e) => e.kind === "lowrank");
      if (lowrank) expect(lora.factor(lowrank.target)).toBeCloseTo((alpha ?? 3) / 3, 12);
      const changedBefore = (await forward(weights)).slice();
      for (const strength of [0.5, 1]) {
        await weights.setDeltas(lora.deltas(strength));
        await expectLike([{ entries, strength }]);
      }
      expect(relL2(await forward(weights), changedBefore)).toBeGreaterThan(1e-3);
      await weights.setDeltas(new Map());
      expect(await bytesOf(weights)).toEqual(loaded);
      lora.dispose();
    });

  it("merges several LoRAs at once, each at its strength, and switches between sets without drift", async () => {
    const d = tmp();
    const a = await writeSyntheticLora(join(d, "a.safetensors"), MODEL, {
      naming: "comfyui",
      targets: TARGETS.slice(0, 8),
      alpha: 1,
      seed: 7,
    });
    const b = await writeSyntheticLora(join(d, "b.safetensors"), MODEL, {
      naming: "kohya",
      targets: TARGETS.slice(4, 12),
      rank: 2,
      seed: 8,
    });
    const c = await writeSyntheticLora(join(d, "c.safetensors"), MODEL, {
      naming: "diff",
      targets: ["blocks.0.attn1.to_q.weight", "blocks.1.attn2.to_k.bias"],
      seed: 9,
    });
    const la = await LoraAdapter.load(join(d, "a.safetensors"), MODEL);
    const lb = await LoraAdapter.load(join(d, "b.safetensors"), MODEL);
    const lc = await LoraAdapter.load(join(d, "c.safetensors"), MODEL);
    const together = new Map<string, import("../store.js").WeightDelta[]>();
    for (const [lora, s] of [
      [la, 0.7],
      [lb, -0.4],
      [lc, 1],
    ] as const)
      for (const [t, ds] of lora.deltas(s)) together.set(t, [...(together.get(t) ?? []), ...ds]);
    await weights.setDeltas(together);
    await expectLike([
      { entries: a, strength: 0.7 },
      { entries: b, strength: -0.4 },
      { entries: c, strength: 1 },
    ]);
    const merged = await bytesOf(weights);
    expect(new Set(weights.changed())).toEqual(new Set(together.keys()));
    // Another set, then this one again: the same bits (recomputed from the originals).
    await weights.setDeltas(lb.deltas(1));
    await expectLike([{ entries: b, strength: 1 }]);
    await weights.setDeltas(together);
    expect(await bytesOf(weights)).toEqual(merged);
    await weights.setDeltas(new Map());
    expect(weights.changed()).toEqual([]);
    expect(await bytesOf(weights)).toEqual(loaded);
    for (const l of [la, lb, lc]) l.dispose();
  });

  it("reads the scale from PEFT's adapter metadata: alpha_pattern per module, lora_B.bias with the pair's scale", async () => {
    const file = join(tmp(), "peft.safetensors");
    const d = WAN_TINY.num_attention_heads * WAN_TINY.attention_head_dim;
    const vals = (n: number, k: number) =>
      Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + k) * 0.05);
    const t = (shape: number[], k: number): TensorToWrite => ({
      dtype: "F32",
      shape,
      data: vals(
        shape.reduce((a, b) => a * b, 1),
        k,
      ),
    });
    const tensors: Record<string, TensorToWrite> = {
      "transformer.blocks.0.attn1.to_q.lora_A.weight": t([4, d], 1),
      "transformer.blocks.0.attn1.to_q.lora_B.weight": t([d, 4], 2),
      "transformer.blocks.0.attn1.to_q.lora_B.bias": t([d], 3),
      "transformer.blocks.1.ffn.net.2.lora_A.weight": t([4, WAN_TINY.ffn_dim], 4),
      "transformer.blocks.1.ffn.net.2.lora_B.weight": t([d, 4], 5),
    };
    await writeSafetensors(file, tensors, {
      lora_adapter_metadata: JSON.stringify({
        "transformer.r": 4,
        "transformer.lora_alpha": 8,
        "transformer.alpha_pattern": { "attn1.to_q": 2 },
      }),
    });
    const lora = await LoraAdapter.load(file, MODEL);
    expect(lora.factor("blocks.0.attn1.to_q.weight")).toBe(0.5);
    expect(lora.factor("blocks.1.ffn.net.2.weight")).toBe(2);
    const deltas = lora.deltas(0.5);
    const bias = deltas.get("blocks.0.attn1.to_q.bias")?.[0];
    expect(bias?.kind).toBe("full");
    expect(bias?.scale).toBe(0.25);
    lora.dispose();
  });

  it("maps lightx2v's diff_m onto the block's modulation table", () => {
    const d = WAN_TINY.num_attention_heads * WAN_TINY.attention_head_dim;
    const plan = planLora(
      "x.safetensors",
      new Map([
        ["diffusion_model.blocks.1.diff_m", { shape: [1, 6, d] }],
        ["lora_unet_blocks_0.diff_m", { shape: [1, 6, d] }],
        ["diffusion_model.head.modulation.diff", { shape: [1, 2, d] }],
      ]),
      MODEL,
    );
    expect(plan.entries.map((e) => e.target).sort()).toEqual([
      "blocks.0.scale_shift_table",
      "blocks.1.scale_shift_table",
      "scale_shift_table",
    ]);
  });
});

describe("LoRA files that do not fit the model", () => {
  const d = WAN_TINY.num_attention_heads * WAN_TINY.attention_head_dim;
  const plan = (entries: [string, number[]][]) =>
    planLora("style.safetensors", new Map(entries.map(([k, s]) => [k, { shape: s }])), MODEL);
  const fails = (entries: [string, number[]][], key: string | null, message: RegExp) => {
    let err: unknown;
    try {
      plan(entries);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LoraError);
    expect((err as LoraError).file).toBe("style.safetensors");
    expect((err as LoraError).key).toBe(key);
    expect((err as Error).message).toMatch(/^style\.safetensors: /);
    expect((err as Error).message).toMatch(message);
  };

  it("names the first key that matches nothing in the model", () => {
    fails(
      [
        ["diffusion_model.blocks.0.self_attn.q.lora_down.weight", [4, d]],
        ["diffusion_model.blocks.0.self_attn.q.lora_up.weight", [d, 4]],
        ["diffusion_model.blocks.7.self_attn.q.lora_down.weight", [4, d]],
      ],
      "diffusion_model.blocks.7.self_attn.q.lora_down.weight",
      /names block 7, but the tiny Wan transformer has 2 blocks/,
    );
    fails(
      [["diffusion_model.blocks.0.self_attn.qq.lora_down.weight", [4, d]]],
      "diffusion_model.blocks.0.self_attn.qq.lora_down.weight",
      /matches no tensor/,
    );
    fails(
      [["diffusion_model.blocks.0.cross_attn.k_img.lora_down.weight", [4, d]]],
      "diffusion_model.blocks.0.cross_attn.k_img.lora_down.weight",
      /image-to-video/,
    );
    fails(
      [["diffusion_model.blocks.0.self_attn.norm_q.diff_b", [d]]],
      "diffusion_model.blocks.0.self_attn.norm_q.diff_b",
      /names module .*, which has no bias in the tiny Wan transformer/,
    );
  });

  it("names the first key whose shape does not fit (a LoRA for another size of model)", () => {
    fails(
      [
        ["diffusion_model.blocks.0.self_attn.q.lora_down.weight", [32, 5120]],
        ["diffusion_model.blocks.0.self_attn.q.lora_up.weight", [5120, 32]],
      ],
      "diffusion_model.blocks.0.self_attn.q.lora_down.weight",
      /\[32, 5120\].*does not fit blocks\.0\.attn1\.to_q\.weight \[48, 48\]/,
    );
    fails(
      [["diffusion_model.blocks.0.self_attn.norm_q.diff", [5120]]],
      "diffusion_model.blocks.0.self_attn.norm_q.diff",
      /\[5120\] does not fit blocks\.0\.attn1\.norm_q\.weight \[48\]/,
    );
  });

  it("says a LoRA for another family is one, rather than merging nothing", () => {
    fails(
      [["lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight", [4, 320]]],
      "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight",
      /Stable Diffusion \/ SDXL, not for the Wan family/,
    );
    fails(
      [["lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_down.weight", [4, 768]]],
      "lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_down.weight",
      /Stable Diffusion/,
    );
    fails(
      [["transformer.single_transformer_blocks.0.attn.to_q.lora_A.weight", [4, 3072]]],
      "transformer.single_transformer_blocks.0.attn.to_q.lora_A.weight",
      /Flux/,
    );
    fails(
      [["lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight", [4, 3072]]],
      "lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight",
      /Flux/,
    );
  });

  it("refuses incomplete pairs, adapters it cannot merge, and empty files", () => {
    fails(
      [["diffusion_model.blocks.0.self_attn.q.lora_down.weight", [4, d]]],
      "diffusion_model.blocks.0.self_attn.q.lora_down.weight",
      /no matching lora_up/,
    );
    fails(
      [["diffusion_model.blocks.0.self_attn.q.alpha", []]],
      "diffusion_model.blocks.0.self_attn.q.alpha",
      /alpha without/,
    );
    fails(
      [["diffusion_model.blocks.0.self_attn.q.dora_scale", [1, d]]],
      "diffusion_model.blocks.0.self_attn.q.dora_scale",
      /DoRA/,
    );
    fails([["something_else", [3]]], "something_else", /is not a LoRA tensor/);
    fails([], null, /holds no tensors/);
    fails(
      [
        ["diffusion_model.blocks.0.self_attn.q.lora_down.weight", [4, d]],
        ["transformer.blocks.0.attn1.to_q.lora_A.weight", [4, d]],
      ],
      "transformer.blocks.0.attn1.to_q.lora_A.weight",
      /already does/,
    );
  });

  it("refuses a file that is not safetensors, and a missing one, naming it", async () => {
    await expect(LoraAdapter.load("/nowhere/style.ckpt", MODEL)).rejects.toThrow(
      /style\.ckpt: a LoRA must be a \.safetensors file/,
    );
    await expect(LoraAdapter.load("/nowhere/style.safetensors", MODEL)).rejects.toThrow(
      /nowhere\/style\.safetensors/,
    );
  });
});

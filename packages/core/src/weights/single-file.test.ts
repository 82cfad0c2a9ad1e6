import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { full, liveTensorCount, randn } from "@tessera/native";
import { afterAll, describe, expect, it } from "vitest";
import { WAN_TINY, type WanTransformerConfig } from "../models/wan/config.js";
import { wanTransformerParams } from "../models/wan/params.js";
import { WanTransformer } from "../models/wan/transformer.js";
import { loadWeights } from "./load.js";
import { type TensorToWrite, writeSafetensors } from "./safetensors.js";
import {
  COMFYUI_PREFIX,
  detectCheckpointFormat,
  loadSingleFileCheckpoint,
  wanTransformerKeyMap,
  wanVaeKeyMap,
} from "./single-file.js";
import { WeightError } from "./store.js";

const dir = mkdtempSync(join(tmpdir(), "tessera-single-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The tensor names of Wan-AI's WanModel (wan/modules/model.py) for a T2V config. */
function originalTransformerNames(c: WanTransformerConfig): string[] {
  const wb = (m: string) => [`${m}.weight`, `${m}.bias`];
  const names = [
    ...wb("patch_embedding"),
    ...wb("text_embedding.0"),
    ...wb("text_embedding.2"),
    ...wb("time_embedding.0"),
    ...wb("time_embedding.2"),
    ...wb("time_projection.1"),
    ...wb("head.head"),
    "head.modulation",
  ];
  for (let i = 0; i < c.num_layers; i++) {
    const b = `blocks.${i}`;
    for (const a of ["self_attn", "cross_attn"]) {
      for (const p of ["q", "k", "v", "o"]) names.push(...wb(`${b}.${a}.${p}`));
      names.push(`${b}.${a}.norm_q.weight`, `${b}.${a}.norm_k.weight`);
    }
    names.push(...wb(`${b}.norm3`), ...wb(`${b}.ffn.0`), ...wb(`${b}.ffn.2`), `${b}.modulation`);
  }
  return names;
}

describe("wanTransformerKeyMap", () => {
  it("maps the original names one-to-one onto exactly the names our model uses", () => {
    const orig = originalTransformerNames(WAN_TINY);
    const mapped = orig.map(wanTransformerKeyMap);
    expect(mapped.every((m) => m !== null)).toBe(true);
    expect(new Set(mapped).size).toBe(orig.length);
    expect([...mapped].sort()).toEqual([...wanTransformerParams(WAN_TINY).keys()].sort());
  });

  it("follows diffusers' conversion on the tricky names", () => {
    const cases: [string, string | null][] = [
      ["blocks.0.self_attn.q.weight", "blocks.0.attn1.to_q.weight"],
      ["blocks.3.cross_attn.o.bias", "blocks.3.attn2.to_out.0.bias"],
      ["blocks.12.cross_attn.norm_k.weight", "blocks.12.attn2.norm_k.weight"],
      ["blocks.0.norm3.weight", "blocks.0.norm2.weight"], // the cross-attention norm
      ["blocks.0.norm2.bias", "blocks.0.norm3.bias"],
      ["blocks.0.ffn.0.weight", "blocks.0.ffn.net.0.proj.weight"],
      ["blocks.0.ffn.2.bias", "blocks.0.ffn.net.2.bias"],
      ["blocks.29.modulation", "blocks.29.scale_shift_table"],
      ["head.modulation", "scale_shift_table"],
      ["head.head.weight", "proj_out.weight"],
      ["time_projection.1.bias", "condition_embedder.time_proj.bias"],
      ["time_embedding.2.weight", "condition_embedder.time_embedder.linear_2.weight"],
      ["text_embedding.0.bias", "condition_embedder.text_embedder.linear_1.bias"],
      [`${COMFYUI_PREFIX}blocks.1.self_attn.v.weight`, "blocks.1.attn1.to_v.weight"],
      [`${COMFYUI_PREFIX}patch_embedding.weight`, "patch_embedding.weight"],
      // Image-to-video extras.
      ["blocks.0.cross_attn.k_img.weight", "blocks.0.attn2.add_k_proj.weight"],
      ["blocks.0.cross_attn.norm_k_img.weight", "blocks.0.attn2.norm_added_k.weight"],
      ["img_emb.proj.1.weight", "condition_embedder.image_embedder.ff.net.0.proj.weight"],
      ["img_emb.proj.4.bias", "condition_embedder.image_embedder.norm2.bias"],
      ["img_emb.emb_pos", "condition_embedder.image_embedder.pos_embed"],
      // Not model tensors.
      ["blocks.0.self_attn.k_img.weight", null],
      ["blocks.0.self_attn.x.weight", null],
      ["blocks.01.modulation", null],
      ["blocks.0.ffn.1.weight", null],
      ["head.norm.weight", null],
      ["freqs", null],
      ["scaled_fp8", null],
    ];
    for (const [from, to] of cases) expect(wanTransformerKeyMap(from), from).toBe(to);
  });
});

/** Names of Wan2.1's original VAE (wan/modules/vae.py, dim 96, dim_mult [1, 2, 4, 4], 2 res blocks). */
function originalVaeNames(): { orig: string[]; diffusers: string[] } {
  const orig: string[] = [];
  const diff: string[] = [];
  const res = (o: string, d: string, shortcut: boolean) => {
    const parts: [string, string][] = [
      ["residual.0.gamma", "norm1.gamma"],
      ["residual.2.weight", "conv1.weight"],
      ["residual.2.bias", "conv1.bias"],
      ["residual.3.gamma", "norm2.gamma"],
      ["residual.6.weight", "conv2.weight"],
      ["residual.6.bias", "conv2.bias"],
    ];
    if (shortcut)
      parts.push(["shortcut.weight", "conv_shortcut.weight"], ["shortcut.bias", "conv_shortcut.bias"]);
    for (const [a, b] of parts) {
      orig.push(`${o}.${a}`);
      diff.push(`${d}.${b}`);
    }
  };
  const resample = (o: string, d: string, temporal: boolean) => {
    for (const p of [
      "resample.1.weight",
      "resample.1.bias",
      ...(temporal ? ["time_conv.weight", "time_conv.bias"] : []),
    ]) {
      orig.push(`${o}.${p}`);
      diff.push(`${d}.${p}`);
    }
  };
  const pair = (o: string, d: string) => {
    orig.push(o);
    diff.push(d);
  };
  for (const side of ["encoder", "decoder"]) {
    pair(`${side}.conv1.weight`, `${side}.conv_in.weight`);
    pair(`${side}.conv1.bias`, `${side}.conv_in.bias`);
    res(`${side}.middle.0`, `${side}.mid_block.resnets.0`, false);
    for (const p of ["norm.gamma", "to_qkv.weight", "to_qkv.bias", "proj.weight", "proj.bias"])
      pair(`${side}.middle.1.${p}`, `${side}.mid_block.attentions.0.${p}`);
    res(`${side}.middle.2`, `${side}.mid_block.resnets.1`, false);
    pair(`${side}.head.0.gamma`, `${side}.norm_out.gamma`);
    pair(`${side}.head.2.weight`, `${side}.conv_out.weight`);
    pair(`${side}.head.2.bias`, `${side}.conv_out.bias`);
  }
  // Encoder: [R, R, D] x 3 + [R, R]; channels 96 -> 96 -> 192 -> 384 -> 384; temporal downsampling [F, T, T].
  let i = 0;
  for (let stage = 0; stage < 4; stage++) {
    for (let r = 0; r < 2; r++, i++)
      res(`encoder.downsamples.${i}`, `encoder.down_blocks.${i}`, r === 0 && (stage === 1 || stage === 2));
    if (stage < 3) resample(`encoder.downsamples.${i}`, `encoder.down_blocks.${i++}`, stage > 0);
  }
  // Decoder: [R, R, R, U] x 3 + [R, R, R]; only its 5th block changes channels; temporal upsampling [T, T, F].
  i = 0;
  for (let stage = 0; stage < 4; stage++) {
    for (let r = 0; r < 3; r++, i++)
      res(`decoder.upsamples.${i}`, `decoder.up_blocks.${stage}.resnets.${r}`, i === 4);
    if (stage < 3) resample(`decoder.upsamples.${i++}`, `decoder.up_blocks.${stage}.upsamplers.0`, stage < 2);
  }
  for (const [a, b] of [
    ["conv1", "quant_conv"],
    ["conv2", "post_quant_conv"],
  ] as const) {
    pair(`${a}.weight`, `${b}.weight`);
    pair(`${a}.bias`, `${b}.bias`);
  }
  return { orig, diffusers: diff };
}

describe("wanVaeKeyMap", () => {
  it("maps every Wan2.1 VAE tensor to its AutoencoderKLWan name", () => {
    const { orig, diffusers } = originalVaeNames();
    expect(orig.map(wanVaeKeyMap)).toEqual(diffusers);
    expect(new Set(diffusers).size).toBe(diffusers.length);
  });

  it("agrees with diffusers' converter on the regrouped decoder blocks, and knows no others", () => {
    const cases: [string, string | null][] = [
      ["decoder.upsamples.4.shortcut.weight", "decoder.up_blocks.1.resnets.0.conv_shortcut.weight"],
      ["decoder.upsamples.3.resample.1.weight", "decoder.up_blocks.0.upsamplers.0.resample.1.weight"],
      ["decoder.upsamples.7.time_conv.bias", "decoder.up_blocks.1.upsamplers.0.time_conv.bias"],
      ["decoder.upsamples.14.residual.6.bias", "decoder.up_blocks.3.resnets.2.conv2.bias"],
      ["encoder.downsamples.0.residual.0.gamma", "encoder.down_blocks.0.norm1.gamma"],
      ["encoder.downsamples.5.time_conv.weight", "encoder.down_blocks.5.time_conv.weight"],
      ["decoder.upsamples.15.resample.1.weight", null],
      ["decoder.upsamples.2.resample.1.weight", null],
      ["encoder.downsamples.2.residual.0.gamma", null],
      ["encoder.downsamples.11.residual.0.gamma", null],
      ["encoder.downsamples.0.residual.1.gamma", null],
      ["encoder.downsamples.0.downsamples.0.residual.0.gamma", null], // Wan2.2 VAE layout
      ["encoder.middle.1.to_qkv.gamma", null],
      ["conv3.weight", null],
    ];
    for (const [from, to] of cases) expect(wanVaeKeyMap(from), from).toBe(to);
  });
});

describe("detectCheckpointFormat", () => {
  it("tells the namings apart", () => {
    const orig = originalTransformerNames(WAN_TINY);
    expect(detectCheckpointFormat(orig)).toBe("wan-transformer-original");
    expect(detectCheckpointFormat(orig.map((x) => COMFYUI_PREFIX + x))).toBe("wan-transformer-comfyui");
    expect(detectCheckpointFormat(wanTransformerParams(WAN_TINY).keys())).toBe("wan-transformer-diffusers");
    const vae = originalVaeNames();
    expect(detectCheckpointFormat(vae.orig)).toBe("wan-vae-original");
    expect(detectCheckpointFormat(vae.diffusers)).toBe("wan-vae-diffusers");
    expect(detectCheckpointFormat(["encoder.block.0.layer.0.SelfAttention.q.weight"])).toBe("unknown");
    expect(detectCheckpointFormat([])).toBe("unknown");
  });
});

describe("loadSingleFileCheckpoint", () => {
  // Same values under both namings: the model built from each must agree exactly.
  async function writeBoth() {
    const params = wanTransformerParams(WAN_TINY);
    const orig: Record<string, TensorToWrite> = {};
    const diff: Record<string, TensorToWrite> = {};
    let seed = 1;
    for (const name of originalTransformerNames(WAN_TINY)) {
      const target = wanTransformerKeyMap(name) as string;
      const shape = params.get(target)?.shape as number[];
      const t = randn(shape, { seed: seed++ });
      const data = await t.toFloat32Array();
      t.dispose();
      for (let i = 0; i < data.length; i++) data[i] = (data[i] as number) * 0.2;
      orig[`${COMFYUI_PREFIX}${name}`] = { dtype: "F32", shape, data };
      diff[target] = { dtype: "F32", shape, data };
    }
    // All-in-one ComfyUI files carry other components outside the prefix.
    orig["first_stage_model.decoder.conv_in.weight"] = {
      dtype: "F32",
      shape: [1],
      data: new Float32Array(1),
    };
    const o = join(dir, "wan-comfy.safetensors");
    const d = join(dir, "wan-diffusers.safetensors");
    await writeSafetensors(o, orig);
    await writeSafetensors(d, diff);
    return { o, d };
  }

  it("loads a ComfyUI-prefixed original checkpoint into a working model", async () => {
    const { o, d } = await writeBoth();
    const { format, weights } = await loadSingleFileCheckpoint(o, { expect: "transformer" });
    expect(format).toBe("wan-transformer-comfyui");
    const ref = await loadWeights(d);
    const a = new WanTransformer(WAN_TINY, weights);
    const b = new WanTransformer(WAN_TINY, ref);
    const latents = randn([1, 1, 2, 2, WAN_TINY.in_channels], { seed: 9 });
    const context = randn([1, 3, WAN_TINY.text_dim], { seed: 10 });
    const timesteps = full([1], 500);
    const ya = a.forward({ latents, timesteps, context });
    const yb = b.forward({ latents, timesteps, context });
    const va = await ya.toFloat32Array();
    expect(va.every(Number.isFinite)).toBe(true);
    expect(Array.from(va)).toEqual(Array.from(await yb.toFloat32Array()));
    for (const t of [latents, context, timesteps, ya, yb]) t.dispose();
    weights.dispose();
    ref.dispose();
    const r = await loadSingleFileCheckpoint(d);
    expect(r.format).toBe("wan-transformer-diffusers");
    r.weights.dispose();
  });

  it("loads an original VAE under diffusers names, and refuses unknown names and the wrong model", async () => {
    const { orig, diffusers } = originalVaeNames();
    const tensors: Record<string, TensorToWrite> = {};
    for (const name of orig) tensors[name] = { dtype: "BF16", shape: [1], data: new Uint16Array(1) };
    const p = join(dir, "wan_2.1_vae.safetensors");
    await writeSafetensors(p, tensors);
    const { format, weights } = await loadSingleFileCheckpoint(p, { dtype: "f32" });
    expect(format).toBe("wan-vae-original");
    expect(weights.names().sort()).toEqual([...diffusers].sort());
    expect(weights.get("decoder.up_blocks.1.resnets.0.conv_shortcut.weight").dtype).toBe("f32");
    weights.dispose();
    await expect(loadSingleFileCheckpoint(p, { expect: "transformer" })).rejects.toThrow(
      /expected a Wan transformer checkpoint, found a vae/,
    );
    tensors["encoder.downsamples.0.downsamples.0.residual.0.gamma"] = {
      dtype: "BF16",
      shape: [1],
      data: new Uint16Array(1),
    };
    const bad = join(dir, "wan_2.2_vae.safetensors");
    await writeSafetensors(bad, tensors);
    const e = await loadSingleFileCheckpoint(bad).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(WeightError);
    expect((e as Error).message).toMatch(
      /wan_2.2_vae.safetensors: 1 tensor\(s\) that a wan-vae-original checkpoint should not hold: encoder.downsamples.0.downsamples/,
    );
    const unknown = join(dir, "t5.safetensors");
    await writeSafetensors(unknown, {
      "shared.weight": { dtype: "F32", shape: [1], data: new Float32Array(1) },
    });
    await expect(loadSingleFileCheckpoint(unknown)).rejects.toThrow(
      /t5.safetensors: not a Wan2.1 transformer or VAE/,
    );
  });

  it("leaks no tensors", () => {
    expect(liveTensorCount()).toBe(0);
  });
});

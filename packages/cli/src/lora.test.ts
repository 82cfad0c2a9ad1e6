// `tessera generate --lora FILE[:STRENGTH]` (repeatable), --lora-2, and the few-step
// schedule flags, on a tiny random model: LoRAs that do not fit are usage errors naming
// the flag before the model loads; a 4-step run with a LoRA reports what it ran.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readModelFolder, wanLoraTarget, writeSafetensors, writeSyntheticLora } from "@tessera/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runMain as run } from "./testing/run-main.js";

describe("generate with LoRAs and a few-step schedule", () => {
  let dir = "";
  let model = "";
  let style = "";
  let speed = "";
  const fast = ["--size", "32x32", "--frames", "5"];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tessera-cli-lora-"));
    model = join(dir, "tiny");
    expect((await run("create-model", model, "--seed", "3")).code).toBe(0);
    const target = wanLoraTarget((await readModelFolder(model)).transformer);
    style = join(dir, "style.safetensors");
    speed = join(dir, "speed.safetensors");
    const targets = ["blocks.0.attn1.to_q.weight", "blocks.1.ffn.net.2.weight", "proj_out.weight"];
    await writeSyntheticLora(style, target, { naming: "comfyui", targets, alpha: 2 });
    await writeSyntheticLora(speed, target, { naming: "kohya", targets, seed: 9 });
  }, 60_000);
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("runs 4 steps at the given sigmas with two LoRAs and reports them", async () => {
    const out = join(dir, "a.gif");
    const r = await run(
      "generate",
      "a red ball",
      "--model",
      model,
      "-o",
      out,
      ...fast,
      "--lora",
      `${style}:0.8`,
      "--lora",
      speed,
      "--sigmas",
      "1,0.75,0.5,0.25",
      "--shift",
      "5",
      "--guidance",
      "1",
      "--json",
    );
    expect(r.code, r.err).toBe(0);
    const report = JSON.parse(r.out);
    expect(report).toMatchObject({
      steps: 4,
      stepsRun: 4,
      scheduler: "euler",
      sigmas: [1, 0.75, 0.5, 0.25],
      guidance: 1,
      loras: [
        { path: style, strength: 0.8 },
        { path: speed, strength: 1 },
      ],
    });
  });

  it("refuses, before loading the model, LoRAs that are missing, malformed or for another model", async () => {
    const missing = await run("generate", "x", "--model", model, "--lora", join(dir, "nope.safetensors"));
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/--lora: no such file/);
    const badStrength = await run("generate", "x", "--model", model, "--lora", `${style}:500`);
    expect(badStrength.code).toBe(2);
    expect(badStrength.err).toMatch(/--lora's strength must be a number from -100 to 100, got 500/);
    const sdxl = join(dir, "sdxl.safetensors");
    await writeSafetensors(sdxl, {
      "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": {
        dtype: "F32",
        shape: [2, 4],
        data: new Float32Array(8),
      },
    });
    const other = await run("generate", "x", "--model", model, "--lora", sdxl);
    expect(other.code).toBe(2);
    expect(other.err).toMatch(
      /--lora: .*sdxl\.safetensors: 'lora_unet_down_blocks_0_attentions_0_proj_in\.lora_down\.weight' is a LoRA key for Stable Diffusion/,
    );
    const notLora = join(dir, "notes.txt");
    await writeFile(notLora, "hello");
    const text = await run("generate", "x", "--model", model, "--lora", notLora);
    expect(text.code).toBe(2);
    expect(text.err).toMatch(/--lora: .*notes\.txt: a LoRA must be a \.safetensors file/);
  });

  it("accepts --lora-2 and says this model has one expert", async () => {
    const r = await run("generate", "x", "--model", model, "--lora-2", style);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      /--lora-2 is for the low-noise expert of a two-expert model \(Wan2\.2 A14B\); .* has one expert/,
    );
  });

  it("refuses schedules that do not decrease or disagree with --steps or --scheduler", async () => {
    const up = await run("generate", "x", "--model", model, "--timesteps", "250,500");
    expect(up.code).toBe(2);
    expect(up.err).toMatch(/--timesteps must decrease/);
    const steps = await run("generate", "x", "--model", model, "--timesteps", "1000,500", "--steps", "20");
    expect(steps.code).toBe(2);
    expect(steps.err).toMatch(/--steps: steps is 20 but timesteps has 2 values/);
    const unipc = await run("generate", "x", "--model", model, "--sigmas", "1,0.5", "--scheduler", "unipc");
    expect(unipc.code).toBe(2);
    expect(unipc.err).toMatch(/--scheduler: sigmas runs the euler sampler/);
  });

  it("documents the flags in generate --help, and serve's --loras wants a folder", async () => {
    const help = await run("generate", "--help");
    expect(help.out).toMatch(/--lora FILE\[:STRENGTH\].*repeatable; strength -100 to 100, default 1/);
    expect(help.out).toMatch(/--lora-2 FILE\[:STRENGTH\]/);
    expect(help.out).toMatch(/--timesteps T1,T2,…/);
    expect(help.out).toMatch(/--sigmas 1,0\.75,0\.5,0\.25 --shift 5 --guidance 1/);
    const serve = await run(
      "serve",
      "--model",
      model,
      "--loras",
      join(dir, "style.safetensors"),
      "--port",
      "0",
    );
    expect(serve.code).toBe(2);
    expect(serve.err).toMatch(/--loras must be a folder of LoRA \.safetensors files/);
  });
});

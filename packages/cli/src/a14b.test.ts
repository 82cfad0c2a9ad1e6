// `tessera generate` on a two-expert model (tiny-a14b: Wan2.2 A14B's layout at tiny size):
// --guidance-2, --lora-2 checked against transformer_2 before the load, --expert-swap, and
// the report's experts; create-model, info and models name the second expert.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readModelFolder, wanLoraTarget, writeSyntheticLora } from "@tessera/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runMain as run } from "./testing/run-main.js";

describe("a two-expert model from the CLI", () => {
  let dir = "";
  let model = "";
  let low = "";
  let foreign = "";
  const fast = ["--size", "32x32", "--frames", "5", "--steps", "6", "--seed", "4"];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tessera-cli-a14b-"));
    model = join(dir, "a14b");
    expect((await run("create-model", model, "--config", "tiny-a14b")).code).toBe(0);
    const info = await readModelFolder(model);
    low = join(dir, "low.safetensors");
    await writeSyntheticLora(low, wanLoraTarget(info.transformer2 ?? info.transformer), {
      naming: "comfyui",
      targets: ["blocks.0.attn1.to_q.weight", "proj_out.weight"],
    });
    // A LoRA for a wider transformer: its shapes fit neither expert.
    foreign = join(dir, "foreign.safetensors");
    await writeSyntheticLora(foreign, wanLoraTarget({ ...info.transformer, num_attention_heads: 4 }), {
      naming: "comfyui",
      targets: ["blocks.0.attn1.to_q.weight"],
    });
  }, 60_000);
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("runs both experts with their guidance and LoRAs, swapping the idle one, and reports it", async () => {
    const r = await run(
      "generate",
      "a red ball",
      "--model",
      model,
      "-o",
      join(dir, "a.gif"),
      ...fast,
      "--guidance",
      "4",
      "--guidance-2",
      "2",
      "--lora-2",
      `${low}:0.5`,
      "--expert-swap",
      "always",
      "--json",
    );
    expect(r.code, r.err).toBe(0);
    const report = JSON.parse(r.out);
    expect(report.guidance).toBe(4);
    expect(report.guidance2).toBe(2);
    expect(report.loras2).toEqual([{ path: low, strength: 0.5 }]);
    expect(report.experts.boundary).toBe(875);
    expect(report.experts.steps[0] + report.experts.steps[1]).toBe(6);
    expect(report.experts.swaps).toBe(1);
    expect(report.timings.swap).toBeGreaterThan(0);
  }, 60_000);

  it("refuses a --lora-2 that does not fit transformer_2 before the load", async () => {
    const r = await run("generate", "x", "--model", model, ...fast, "--lora-2", foreign);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--lora-2: .*foreign\.safetensors/);
  });

  it("refuses --guidance-2 on a one-expert model, naming the flag", async () => {
    const one = join(dir, "one");
    expect((await run("create-model", one)).code).toBe(0);
    const r = await run("generate", "x", "--model", one, ...fast, "--guidance-2", "3");
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/guidance/);
    expect(r.err).toMatch(/one expert/);
  });

  it("info and models name the second expert", async () => {
    const info = await run("info", model);
    expect(info.code).toBe(0);
    expect(info.out).toMatch(/transformer_2 .*the low-noise expert/);
    expect(info.out).toMatch(/experts +both on the device/);
    const models = await run("models", model);
    expect(models.out).toMatch(/two experts, boundary_ratio 0\.875/);
  });
});

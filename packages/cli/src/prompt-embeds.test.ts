// `tessera generate --prompt-embeds FILE`: text-encoder states from a .safetensors file
// stand for the PROMPT and give the same video as the prompt they were encoded from.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WanPipeline, writeSafetensors } from "@tessera/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runMain as run } from "./testing/run-main.js";

const f32 = (data: Float32Array, shape: number[]) => ({ dtype: "F32" as const, shape, data });

describe("tessera generate --prompt-embeds", () => {
  let dir = "";
  let model = "";
  let dim = 0;
  const fast = ["--size", "32x32", "--frames", "5", "--steps", "2", "--seed", "4"];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tessera-embeds-"));
    model = join(dir, "tiny");
    const r = await run("create-model", model, "--seed", "5");
    expect(r.code, r.err).toBe(0);
    const pipe = await WanPipeline.load(model);
    try {
      dim = pipe.transformer.config.text_dim;
      const cond = await pipe.encodeText("a red ball");
      const uncond = await pipe.encodeText("");
      const [, l, d] = cond.shape as [number, number, number];
      await writeSafetensors(join(dir, "both.safetensors"), {
        prompt_embeds: f32(await cond.toFloat32Array(), [1, l, d]),
        negative_prompt_embeds: f32(await uncond.toFloat32Array(), [1, l, d]),
      });
      await writeSafetensors(join(dir, "neg.safetensors"), {
        anything: f32(await uncond.toFloat32Array(), [l, d]),
      });
      await writeSafetensors(join(dir, "wide.safetensors"), {
        e: f32(new Float32Array(3 * (d + 1)), [3, d + 1]),
      });
      await writeSafetensors(join(dir, "two.safetensors"), {
        a: f32(new Float32Array(d), [1, d]),
        b: f32(new Float32Array(d), [1, d]),
      });
      cond.dispose();
      uncond.dispose();
    } finally {
      pipe.dispose();
    }
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("gives the video of the prompt the embeddings were encoded from", async () => {
    const out = (n: string) => join(dir, `${n}.y4m`);
    const a = await run("generate", "a red ball", "--model", model, "-o", out("a"), ...fast);
    expect(a.code, a.err).toBe(0);
    const b = await run(
      "generate",
      "--prompt-embeds",
      join(dir, "both.safetensors"),
      "--model",
      model,
      "-o",
      out("b"),
      ...fast,
    );
    expect(b.code, b.err).toBe(0);
    const c = await run(
      "generate",
      "--prompt-embeds",
      join(dir, "both.safetensors"),
      "--negative-prompt-embeds",
      join(dir, "neg.safetensors"),
      "--model",
      model,
      "-o",
      out("c"),
      ...fast,
    );
    expect(c.code, c.err).toBe(0);
    const va = await readFile(out("a"));
    expect((await readFile(out("b"))).equals(va)).toBe(true);
    expect((await readFile(out("c"))).equals(va)).toBe(true);
  });

  it("refuses what does not fit, naming the flag", async () => {
    const m = ["--model", model, "-o", join(dir, "x.y4m")];
    const embeds = (f: string) => ["--prompt-embeds", join(dir, f)];
    for (const [args, pattern] of [
      [["generate", "x", ...embeds("both.safetensors"), ...m], /PROMPT or --prompt-embeds, not both/],
      [
        ["generate", ...embeds("wide.safetensors"), ...m],
        new RegExp(`--prompt-embeds: .*wide.* text_dim ${dim}`),
      ],
      [
        ["generate", ...embeds("two.safetensors"), ...m],
        /--prompt-embeds: .*holds 2 tensors .*none named prompt_embeds/,
      ],
      [["generate", ...embeds("nope.safetensors"), ...m], /--prompt-embeds: no such file/],
      [
        [
          "generate",
          ...embeds("both.safetensors"),
          "--negative",
          "x",
          "--negative-prompt-embeds",
          join(dir, "neg.safetensors"),
          ...m,
        ],
        /--negative or --negative-prompt-embeds, not both/,
      ],
    ] as const) {
      const r = await run(...args);
      expect(r.code, `${args.join(" ")}: ${r.err}`).toBe(2);
      expect(r.err).toMatch(pattern);
    }
  });
});

import { cast, liveTensorCount, slice, Tensor as T, type Tensor, zeros } from "@tessera/native";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GenerateOptionError, randomWanComponents, WanPipeline } from "./index.js";
import { padPromptEmbeds, promptEmbedsProblem } from "./prompt-embeds.js";

const small = { width: 32, height: 32, frames: 5, steps: 3, seed: 3 };

async function values(t: Tensor): Promise<number[]> {
  return Array.from(await t.toFloat32Array());
}

describe("promptEmbedsProblem", () => {
  it("accepts [seq, dim] and [1, seq, dim] up to the text length", () => {
    const a = zeros([7, 16]);
    const b = zeros([1, 512, 16]);
    expect(promptEmbedsProblem("promptEmbeds", a, 16, 512)).toBeNull();
    expect(promptEmbedsProblem("promptEmbeds", b, 16, 512)).toBeNull();
    a.dispose();
    b.dispose();
  });

  it("names what is wrong", () => {
    const cases: [unknown, RegExp][] = [
      [[1, 2, 3], /promptEmbeds must be a Tensor of text-encoder states \[seq, 16\] or \[1, seq, 16\]/],
      [zeros([2, 7, 16]), /one prompt per run: batch 1/],
      [zeros([7]), /must be \[seq, 16\].*got \[7\]/],
      [zeros([7, 32]), /has 32 features per token but this model's transformer takes text_dim 16/],
      [zeros([513, 16]), /has 513 tokens; this model takes 1 to 512/],
      [zeros([7, 16], { dtype: "i32" }), /must be a float tensor \(f32, bf16 or f16\), got i32/],
    ];
    for (const [v, re] of cases) {
      expect(promptEmbedsProblem("promptEmbeds", v, 16, 512)).toMatch(re);
      if (v instanceof T) v.dispose();
    }
    const gone = zeros([7, 16]);
    gone.dispose();
    expect(promptEmbedsProblem("negativePromptEmbeds", gone, 16, 512)).toMatch(
      /negativePromptEmbeds was disposed/,
    );
  });
});

describe("padPromptEmbeds", () => {
  it("zero-pads to the text length, in the asked dtype, and leaves the input alone", async () => {
    const before = liveTensorCount();
    const e = T.from([1, 2, 3, 4, 5, 6], [3, 2]);
    const p = await padPromptEmbeds(e, 5, e.device, "f32");
    expect(p.shape).toEqual([1, 5, 2]);
    expect(await values(p)).toEqual([1, 2, 3, 4, 5, 6, 0, 0, 0, 0]);
    const full = T.from([1, 2, 3, 4], [1, 2, 2]);
    const same = await padPromptEmbeds(full, 2, e.device, "f32");
    expect(await values(same)).toEqual([1, 2, 3, 4]);
    same.dispose();
    expect(await values(full)).toEqual([1, 2, 3, 4]);
    for (const t of [e, p, full]) t.dispose();
    expect(liveTensorCount()).toBe(before);
  });
});

describe("WanPipeline.generate with prompt embeddings", () => {
  let pipe: WanPipeline;
  let base = 0;
  beforeAll(() => {
    base = liveTensorCount();
    pipe = new WanPipeline(randomWanComponents({ seed: 11 }));
  });
  afterAll(() => {
    pipe.dispose();
    expect(liveTensorCount()).toBe(base);
  });

  it("gives the same latents as the prompt it was encoded from, unpadded or padded", async () => {
    const prompt = "a red ball";
    const negativePrompt = "a blue cat";
    const cond = await pipe.encodeText(prompt);
    const uncond = await pipe.encodeText(negativePrompt);
    const n = pipe.tokenizer.encode(prompt, { maxLength: pipe.textLength }).length;
    // The real tokens only, as [seq, dim]: the pipeline pads them back with zeros.
    const head = slice(cond, 1, 0, n);
    const short = head.reshape([n, cond.shape[2] as number]);
    const ref = await pipe.generate({ prompt, negativePrompt, ...small });
    const a = await pipe.generate({ prompt: "", promptEmbeds: cond, negativePromptEmbeds: uncond, ...small });
    const b = await pipe.generate({ prompt: "", promptEmbeds: short, negativePrompt, ...small });
    const want = await values(ref.latents);
    expect(await values(a.latents)).toEqual(want);
    expect(await values(b.latents)).toEqual(want);
    expect(a.textCacheHits).toBe(0);
    // Other states, another video.
    const other = cast(uncond, "f32");
    const c = await pipe.generate({ prompt: "", promptEmbeds: other, negativePrompt, ...small });
    expect(await values(c.latents)).not.toEqual(want);
    // The caller's tensors are left as they were.
    expect(cond.disposed || uncond.disposed || short.disposed).toBe(false);
    for (const r of [ref, a, b, c]) {
      r.video.dispose();
      r.latents.dispose();
    }
    for (const t of [cond, uncond, head, short, other]) t.dispose();
  });

  it("refuses states that do not fit the model, and text with its states, naming the option", async () => {
    const dim = pipe.transformer.config.text_dim;
    const bad = zeros([4, dim + 1]);
    const ok = zeros([4, dim]);
    const fail = async (o: Parameters<WanPipeline["generate"]>[0], key: string, re: RegExp) => {
      const e = await pipe.generate(o).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(GenerateOptionError);
      expect((e as GenerateOptionError).field).toBe(key);
      expect((e as Error).message).toMatch(re);
    };
    await fail({ prompt: "", promptEmbeds: bad, ...small }, "promptEmbeds", /text_dim/);
    await fail({ prompt: "", negativePromptEmbeds: bad, ...small }, "negativePromptEmbeds", /text_dim/);
    await fail({ prompt: "a ball", promptEmbeds: ok, ...small }, "prompt", /not both/);
    await fail(
      { prompt: "", promptEmbeds: ok, negativePrompt: "x", negativePromptEmbeds: ok, ...small },
      "negativePrompt",
      /not both/,
    );
    bad.dispose();
    ok.dispose();
  });
});

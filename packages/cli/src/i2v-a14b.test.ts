// `tessera generate` on a Wan2.2 I2V-A14B model (tiny-i2v-a14b: two experts taking the
// image's latents, no CLIP image encoder): create-model writes it, generate needs --image
// and runs both experts, info and models name it.
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readVideo, writeImage } from "@tessera/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runMain as run } from "./testing/run-main.js";

function picture(w: number, h: number, phase: number): Uint8Array {
  const d = new Uint8Array(w * h * 3);
  for (let i = 0; i < d.length; i++) d[i] = (i * 37 + phase * 101) & 255;
  return d;
}

describe("a Wan2.2 I2V-A14B model from the CLI", () => {
  let dir = "";
  let model = "";
  let img = "";
  const fast = ["--size", "32x32", "--frames", "5", "--steps", "6", "--seed", "4"];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tessera-cli-i2v-a14b-"));
    model = join(dir, "i2v-a14b");
    const r = await run("create-model", model, "--config", "tiny-i2v-a14b");
    expect(r.code, r.err).toBe(0);
    img = join(dir, "in.png");
    await writeImage(img, { width: 40, height: 24, data: picture(40, 24, 1) });
  }, 60_000);
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("writes two experts and no image encoder", async () => {
    const entries = await readdir(model);
    expect(entries).toContain("transformer_2");
    expect(entries).not.toContain("image_encoder");
  });

  it("generates from an image with both experts, the same for the same seed", async () => {
    const runOnce = async (name: string) => {
      const out = join(dir, name);
      const r = await run(
        "generate",
        "a red ball",
        "--model",
        model,
        "--image",
        img,
        "-o",
        out,
        ...fast,
        "--json",
      );
      expect(r.code, r.err).toBe(0);
      return { report: JSON.parse(r.out), video: await readVideo(out) };
    };
    const a = await runOnce("a.y4m");
    expect(a.report.mode).toBe("image-to-video");
    expect(a.report.experts.boundary).toBe(900);
    expect(a.report.experts.steps[0]).toBeGreaterThan(0);
    expect(a.report.experts.steps[1]).toBeGreaterThan(0);
    expect(a.video.frames.length).toBe(5);
    const b = await runOnce("b.y4m");
    expect(
      Buffer.from(b.video.frames[4] as Uint8Array).equals(Buffer.from(a.video.frames[4] as Uint8Array)),
    ).toBe(true);
  }, 60_000);

  it("refuses a run without --image before the load, naming the flag", async () => {
    const r = await run("generate", "a red ball", "--model", model, "-o", join(dir, "x.gif"), ...fast);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--image/);
    expect(r.err).toMatch(/I2V-A14B/);
    expect(r.err).not.toMatch(/loading/);
  });

  it("info and models name it", async () => {
    const info = await run("info", model);
    expect(info.code, info.err).toBe(0);
    expect(info.out).toMatch(/Wan2\.2 I2V-A14B/);
    expect(info.out).toMatch(/WanImageToVideoPipeline/);
    expect(info.out).toMatch(/transformer_2 .*the low-noise expert/);
    expect(info.out).toMatch(/memory +~/);
    expect(info.out).not.toMatch(/image_encoder/);
    const models = await run("models", model);
    expect(models.out).toMatch(/Wan2\.2 I2V-A14B/);
    expect(models.out).toMatch(/boundary_ratio 0\.9/);
  });
});

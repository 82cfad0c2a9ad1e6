// The model commands in-process: create a tiny random model folder, generate
// from it to each built-in format (and .mp4 where ffmpeg exists), and check that
// every bad flag is a usage error (exit 2) naming the flag.
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { readVideo, writeImage, writeVideo } from "@tessera/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runMain as run } from "./testing/run-main.js";

function hasFfmpeg(): boolean {
  const env = process.env.TESSERA_FFMPEG;
  if (env?.includes("/")) return existsSync(env);
  return (process.env.PATH ?? "").split(delimiter).some((d) => d && existsSync(join(d, env || "ffmpeg")));
}

function picture(w: number, h: number, phase: number): Uint8Array {
  const d = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) {
    d[i * 3] = (i * 7 + phase * 13) & 255;
    d[i * 3 + 1] = (i >> 3) & 255;
    d[i * 3 + 2] = phase * 20;
  }
  return d;
}

describe("tessera create-model / generate / models / info", () => {
  let dir = "";
  let model = "";
  // Small sizes keep each generation well under a second on a CPU.
  const fast = ["--size", "32x32", "--frames", "5", "--steps", "3"];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tessera-cli-"));
    model = join(dir, "models", "tiny");
    await mkdir(join(dir, "models"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("creates a tiny random model folder", async () => {
    const r = await run("create-model", model, "--seed", "3");
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/wrote a random tiny model/);
    expect((await readdir(model)).sort()).toContain("model_index.json");
  });

  for (const ext of [".gif", ".y4m"]) {
    it(`generates to ${ext}`, async () => {
      const path = join(dir, `ball${ext}`);
      const r = await run("generate", "a red ball", "--model", model, "-o", path, "--seed", "1", ...fast);
      expect(r.code, r.err).toBe(0);
      expect(r.out).toMatch(/wrote .* \(5 frames, 32x32 @ 8 fps, seed 1\)/);
      expect(r.err).toMatch(/step 3\/3/);
      const v = await readVideo(path);
      expect(v.frames.length).toBe(5);
      expect([v.width, v.height]).toEqual([32, 32]);
    });
  }

  it.skipIf(!hasFfmpeg())(
    `generates to .mp4${hasFfmpeg() ? "" : " (skipped: ffmpeg not found on PATH or $TESSERA_FFMPEG)"}`,
    async () => {
      const path = join(dir, "ball.mp4");
      const r = await run("generate", "a red ball", "--model", model, "-o", path, ...fast, "--json");
      expect(r.code, r.err).toBe(0);
      const report = JSON.parse(r.out) as { format: string; frames: number; seed: number };
      expect(report.format).toBe("mp4");
      expect(report.frames).toBe(5);
      expect((await stat(path)).size).toBeGreaterThan(0);
    },
  );

  it("is deterministic per seed and reports JSON", async () => {
    const a = join(dir, "a.y4m");
    const b = join(dir, "b.y4m");
    const ra = await run("generate", "a cat", "--model", model, "-o", a, "--seed", "9", ...fast, "--json");
    const rb = await run(
      "generate",
      "a cat",
      "--model",
      model,
      "-o",
      b,
      "--seed",
      "9",
      ...fast,
      "--json",
      "--scheduler",
      "unipc",
    );
    expect(ra.code, ra.err).toBe(0);
    expect(rb.code, rb.err).toBe(0);
    const ja = JSON.parse(ra.out) as { seed: number; stepsRun: number; scheduler: string };
    expect(ja).toMatchObject({ seed: 9, stepsRun: 3, scheduler: "unipc" });
    const [va, vb] = [await readVideo(a), await readVideo(b)];
    expect(
      Buffer.compare(Buffer.from(va.frames[4] as Uint8Array), Buffer.from(vb.frames[4] as Uint8Array)),
    ).toBe(0);
  });

  it("passes --step-cache through and reports the full steps", async () => {
    const path = join(dir, "cached.y4m");
    const args = ["generate", "a cat", "--model", model, "-o", path, "--seed", "9", ...fast];
    const r = await run(...args, "--steps", "5", "--step-cache", "10", "--json");
    expect(r.code, r.err).toBe(0);
    // Steps 1..3 reuse the cache; the first and last run in full.
    expect(JSON.parse(r.out)).toMatchObject({ stepsRun: 5, stepCache: 10, fullSteps: 2 });
    const text = await run(...args, "--step-cache", "0");
    expect(text.code, text.err).toBe(0);
    expect(text.err).toMatch(/step cache: 3 of 3 steps ran the whole model/);
  });

  it("reports the step graph, off on the CPU and with --no-cuda-graph", async () => {
    const path = join(dir, "graph.y4m");
    const args = ["generate", "a cat", "--model", model, "-o", path, "--seed", "9", ...fast, "--json"];
    for (const extra of [[], ["--no-cuda-graph"]]) {
      const r = await run(...args, ...extra);
      expect(r.code, r.err).toBe(0);
      expect(JSON.parse(r.out)).toMatchObject({ stepGraph: { state: "off", replays: 0 } });
    }
  });

  it("conditions on an image, a video (strength) and extends a clip", async () => {
    const img = join(dir, "in.png");
    await writeImage(img, { width: 40, height: 24, data: picture(40, 24, 1) });
    const clip = join(dir, "in.y4m");
    await writeVideo(clip, {
      width: 32,
      height: 32,
      frames: Array.from({ length: 9 }, (_, i) => picture(32, 32, i)),
      fps: 8,
    });

    const i2v = await run(
      "generate",
      "a dog",
      "--model",
      model,
      "--image",
      img,
      "-o",
      join(dir, "i2v.gif"),
      ...fast,
    );
    expect(i2v.code, i2v.err).toBe(0);
    expect(i2v.err).toMatch(/image-to-video/);

    const v2v = await run(
      "generate",
      "a dog",
      "--model",
      model,
      "--video",
      clip,
      "--strength",
      "0.7",
      "-o",
      join(dir, "v2v.y4m"),
      "--size",
      "32x32",
      "--steps",
      "10",
      "--json",
    );
    expect(v2v.code, v2v.err).toBe(0);
    expect(JSON.parse(v2v.out)).toMatchObject({ mode: "video-to-video", stepsRun: 7, frames: 9 });

    const ext = await run(
      "generate",
      "a dog",
      "--model",
      model,
      "--video",
      clip,
      "--extend",
      "--context",
      "5",
      "--frames",
      "13",
      "--size",
      "32x32",
      "--steps",
      "3",
      "--loop",
      "-o",
      join(dir, "ext.y4m"),
      "--json",
    );
    expect(ext.code, ext.err).toBe(0);
    // The input's 9 frames, then the 8 generated after the 5 re-created ones.
    expect(JSON.parse(ext.out)).toMatchObject({ mode: "extension", frames: 17 });
  });

  it("lists and describes models", async () => {
    const prev = process.env.TESSERA_MODELS;
    process.env.TESSERA_MODELS = join(dir, "models");
    try {
      const l = await run("models", "--json");
      expect(l.code).toBe(0);
      const body = JSON.parse(l.out) as { models: { name: string; ok: boolean }[] };
      expect(body.models).toEqual([
        expect.objectContaining({ name: "tiny", ok: true, family: "Wan2.1 T2V (dim 48)" }),
        expect.objectContaining({ name: "tessera-world (bundled)", ok: true }),
      ]);
      // By name, found under $TESSERA_MODELS.
      const i = await run("info", "tiny", "--size", "64x64", "--frames", "9", "--json");
      expect(i.code, i.err).toBe(0);
      const info = JSON.parse(i.out) as {
        family: string | null;
        components: Record<string, { parameters: number; dtypes: Record<string, number> }>;
        estimate: { total: number };
      };
      expect(info.components.transformer?.parameters).toBeGreaterThan(1000);
      expect(Object.keys(info.components.vae?.dtypes ?? {})).toEqual(["F32"]);
      expect(info.estimate.total).toBeGreaterThan(0);
      expect(info.family).toBe("Wan2.1 T2V (dim 48)");
      const text = await run("info", "tiny");
      expect(text.out).toMatch(/memory/);
      expect(text.out).toMatch(/\(Wan2\.1 T2V \(dim 48\), WanPipeline\)/);
    } finally {
      if (prev === undefined) delete process.env.TESSERA_MODELS;
      else process.env.TESSERA_MODELS = prev;
    }
  });

  it("rejects bad flags with exit code 2, naming the flag", async () => {
    const m = ["--model", model];
    const o = ["-o", join(dir, "x.gif")];
    for (const [args, pattern] of [
      [["generate", ...m, ...o], /PROMPT/],
      [["generate", "x", ...m, ...o, "--size", "100"], /--size/],
      [["generate", "x", ...m, ...o, "--size", "40x40"], /--size.*multiple of 16/],
      [["generate", "x", ...m, ...o, "--frames", "10"], /--frames.*1 \+ 4k/],
      [["generate", "x", ...m, ...o, "--frames", "-1"], /--frames/],
      [["generate", "x", ...m, ...o, "--steps", "0"], /--steps/],
      [["generate", "x", ...m, ...o, "--guidance", "lots"], /--guidance/],
      [["generate", "x", ...m, ...o, "--shift", "0"], /--shift/],
      [["generate", "x", ...m, ...o, "--scheduler", "ddim"], /--scheduler/],
      [["generate", "x", ...m, ...o, "--seed", "-4"], /--seed/],
      [["generate", "x", ...m, ...o, "--step-cache", "11"], /--step-cache.*0 to 10/],
      [["generate", "x", ...m, ...o, "--step-cache", "0.1", "--gpus", "2"], /--step-cache.*--gpus/],
      [["generate", "x", ...m, ...o, "--strength", "0.5"], /--strength/],
      [["generate", "x", ...m, ...o, "--extend"], /--extend/],
      [["generate", "x", ...m, ...o, "--image", join(dir, "missing.png")], /--image.*no such file/],
      [["generate", "x", ...m, ...o, "--device", "tpu"], /--device/],
      [["generate", "x", ...m, ...o, "--dtype", "bf16", "--device", "cpu"], /--dtype/],
      [["generate", "x", ...m, ...o, "--vae-dtype", "bf16", "--device", "cpu"], /--vae-dtype on the CPU/],
      [["generate", "x", ...m, ...o, "--vae-dtype", "f64"], /--vae-dtype/],
      [["generate", "x", ...m, "-o", join(dir, "x.avi")], /-o/],
      [["generate", "x", ...m, "-o", join(dir, "nope", "x.gif")], /-o.*does not exist/],
      [["generate", "x", ...m, ...o, "--bogus"], /bogus/],
      [["create-model"], /DIR/],
      [["create-model", join(dir, "m2"), "--config", "huge"], /--config/],
      [["info", model, "--frames", "6"], /--frames/],
    ] as const) {
      const r = await run(...args);
      expect(r.code, `${args.join(" ")}: ${r.err}`).toBe(2);
      expect(r.err).toMatch(pattern);
    }
  });

  it("uses the bundled demo model when no --model is given, rewriting the prompt onto its captions", async () => {
    const path = join(dir, "demo.gif");
    const r = await run("generate", "red ball going right", "-o", path, "--steps", "2", "--json");
    expect(r.code).toBe(0);
    const report = JSON.parse(r.out);
    expect(report.model).toMatch(/tessera-world$/);
    expect(report.promptUsed).toBe("a red circle moves to the right on the left on a black background");
    expect(report.rewrite.filledDefaults).toEqual(["objects[0].position", "background"]);
    const raw = await run(
      "generate",
      "red ball going right",
      "-o",
      path,
      "--steps",
      "2",
      "--json",
      "--no-rewrite",
    );
    expect(JSON.parse(raw.out).promptUsed).toBe("red ball going right");
  });

  it("refuses to write a model into a folder holding other things", async () => {
    const busy = join(dir, "busy");
    await mkdir(busy);
    await writeFile(join(busy, "notes.txt"), "keep me");
    const r = await run("create-model", busy);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/not empty/);
    expect(existsSync(join(busy, "notes.txt"))).toBe(true);
  });

  it("fails at run time with exit code 1 and a clear message", async () => {
    const o = ["-o", join(dir, "x.gif")];
    const missing = await run("generate", "x", "--model", join(dir, "no-such-model"), ...o);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/no such model folder/);
    const notModel = await run("generate", "x", "--model", dir, ...o);
    expect(notModel.code).toBe(1);
    expect(notModel.err).toMatch(/model_index\.json/);
    const gpu = await run("generate", "x", "--model", model, ...o, "--device", "cuda:7", ...fast);
    expect(gpu.code).toBe(1);
    expect(gpu.err).toMatch(/cuda:7/);
  });
});

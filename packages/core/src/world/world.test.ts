import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { captionScene, parseCaption } from "../caption/caption.js";
import {
  allCombos,
  BACKGROUND_COLOURS,
  OBJECT_COLOUR_NAMES,
  OBJECT_COLOURS,
  type Rgb,
  WORLD_FRAMES,
  WORLD_SIZE,
} from "../caption/vocabulary.js";
import { type ExportedClip, exportWorldDataset } from "./export.js";
import { renderClip } from "./render.js";
import {
  colourFitsBackground,
  makeRng,
  objectStateAt,
  type SceneObject,
  sampleScene,
  sceneAttributes,
  shapeBox,
} from "./scene.js";
import { drawHeldOut, HELD_OUT_COMBOS, isHeldOut, sampleWorldScene } from "./split.js";

describe("vocabulary", () => {
  test("object colours are far apart, and far from every background of another name", () => {
    const dist = (a: Rgb, b: Rgb) => Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);
    const cs = Object.values(OBJECT_COLOURS);
    for (let i = 0; i < cs.length; i++)
      for (let j = i + 1; j < cs.length; j++) expect(dist(cs[i] as Rgb, cs[j] as Rgb)).toBeGreaterThan(90);
    for (const [cn, c] of Object.entries(OBJECT_COLOURS))
      for (const [bn, b] of Object.entries(BACKGROUND_COLOURS))
        if (cn !== bn) expect(dist(c, b), `${cn} on ${bn}`).toBeGreaterThan(100);
  });
});

describe("scenes", () => {
  test("sampling and rendering are deterministic per seed", () => {
    for (const seed of [1, 2, 99]) {
      expect(sampleScene(seed)).toEqual(sampleScene(seed));
      const a = renderClip(sampleScene(seed));
      const b = renderClip(JSON.parse(JSON.stringify(sampleScene(seed))));
      expect(a.frames.length).toBe(WORLD_FRAMES);
      expect(a.width).toBe(WORLD_SIZE);
      expect(a.fps).toBe(8);
      a.frames.forEach((f, t) => {
        expect(Buffer.from(f).equals(Buffer.from(b.frames[t] as Uint8Array))).toBe(true);
      });
    }
    expect(sampleScene(1)).not.toEqual(sampleScene(2));
  });

  test("scenes obey the world's rules", () => {
    const rng = makeRng(7);
    let two = 0;
    let pans = 0;
    for (let i = 0; i < 400; i++) {
      const s = sampleScene(rng);
      if (s.objects.length === 2) two++;
      if (s.pan !== "none") pans++;
      if (s.pan !== "none") expect(s.background.kind).toBe("split");
      if (s.objects.length === 2) expect(s.objects[0]?.colour).not.toBe(s.objects[1]?.colour);
      for (const o of s.objects) {
        expect(colourFitsBackground(o.colour, s.background)).toBe(true);
        for (let t = 0; t < s.frames; t++) {
          const st = objectStateAt(s, o, t);
          const [x0, y0, x1, y1] = shapeBox(o.shape, st.x, st.y, o.radius * st.scale);
          expect(x0 >= 0 && y0 >= 0 && x1 <= s.size && y1 <= s.size).toBe(true);
        }
      }
    }
    expect(two).toBeGreaterThan(90);
    expect(pans).toBeGreaterThan(30);
  });

  test("a left pan slides the split seam and every object to the right", () => {
    const s = sampleScene(3, { pSplit: 1, pPan: 1, objectCount: 1 });
    const o = s.objects[0] as SceneObject;
    const still = { ...s, pan: "left" as const, objects: [{ ...o, motion: "still" as const, speed: 0 }] };
    expect(objectStateAt(still, o, 16).x - o.x).toBeCloseTo(16 * s.panSpeed);
  });
});

describe("captions", () => {
  test("the documented examples", () => {
    expect(
      captionScene({
        background: { kind: "plain", colour: "black" },
        objects: [{ colour: "red", shape: "circle", motion: "right" }],
        pan: "none",
      }),
    ).toBe("a red circle moves to the right on a black background");
    const two =
      "a small green square bounces in the middle, and a blue triangle stays still on the left, on a gray and white background, the camera pans slowly to the left";
    expect(captionScene(parseCaption(two))).toBe(two);
    expect(captionScene(parseCaption("An orange  Triangle grows at the top on a blue background."))).toBe(
      "an orange triangle grows at the top on a blue background",
    );
  });

  test("caption and parseCaption round-trip over 500 scenes", () => {
    const rng = makeRng(11);
    const seen = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const s = sampleScene(rng);
      const c = captionScene(s);
      seen.add(c);
      expect(parseCaption(c)).toEqual(sceneAttributes(s));
      expect(captionScene(parseCaption(c))).toBe(c);
      expect(c).toMatch(/^an? [a-z ,]+$/);
    }
    expect(seen.size).toBeGreaterThan(450);
  });

  test("parseCaption rejects what the grammar does not produce", () => {
    expect(() => parseCaption("a pink circle moves up on a black background")).toThrow();
    expect(() => parseCaption("a red circle moves up")).toThrow();
    expect(() => parseCaption("a red hexagon moves up on a black background")).toThrow();
  });
});

describe("held-out split", () => {
  test("is at least 15% of triples, fixed, and matches heldout.json", () => {
    const json = JSON.parse(readFileSync(new URL("./heldout.json", import.meta.url), "utf8"));
    expect(HELD_OUT_COMBOS.length / allCombos().length).toBeGreaterThanOrEqual(0.15);
    expect(json.combos).toEqual(HELD_OUT_COMBOS);
    expect(drawHeldOut()).toEqual(HELD_OUT_COMBOS);
    expect(json.total).toBe(allCombos().length);
    // Every colour, shape and motion still appears in training.
    for (const c of OBJECT_COLOUR_NAMES)
      expect(HELD_OUT_COMBOS.filter((h) => h[0] === c).length).toBeLessThan(21);
  });

  test("train scenes never contain a held-out triple; heldout scenes only those", () => {
    for (let i = 0; i < 200; i++) {
      for (const o of sampleWorldScene(i, "train").objects)
        expect(isHeldOut(o.colour, o.shape, o.motion)).toBe(false);
      for (const o of sampleWorldScene(i, "heldout").objects)
        expect(isHeldOut(o.colour, o.shape, o.motion)).toBe(true);
    }
  });
});

test("exportWorldDataset writes uint8 [N,17,128,128,3] shards and captions", async () => {
  const dir = await mkdtemp(join(tmpdir(), "world-"));
  try {
    const { shards, clips } = await exportWorldDataset(dir, {
      count: 3,
      seed: 5,
      split: "train",
      shardSize: 2,
    });
    expect(shards).toEqual(["video-00000.safetensors", "video-00001.safetensors"]);
    const buf = await readFile(join(dir, shards[0] as string));
    const hlen = Number(buf.readBigUInt64LE(0));
    const header = JSON.parse(buf.subarray(8, 8 + hlen).toString("utf8"));
    expect(header.video.dtype).toBe("U8");
    expect(header.video.shape).toEqual([2, 17, 128, 128, 3]);
    const body = buf.subarray(8 + hlen);
    const clip1 = renderClip((clips[1] as ExportedClip).scene);
    const off = 17 * 128 * 128 * 3 + 5 * 128 * 128 * 3;
    expect(
      Buffer.from(body.subarray(off, off + 128 * 128 * 3)).equals(Buffer.from(clip1.frames[5] as Uint8Array)),
    ).toBe(true);
    const meta = JSON.parse(await readFile(join(dir, "captions.json"), "utf8"));
    expect(meta.clips).toHaveLength(3);
    expect(meta.clips[2].shard).toBe("video-00001.safetensors");
    expect(meta.clips[2].caption).toBe(captionScene(meta.clips[2].scene));
    expect(meta.clips.every((c: any) => !c.heldOut)).toBe(true);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

describe("world tokenizer", () => {
  test("knows every word of every caption the sampler makes", async () => {
    const { TextTokenizer } = await import("../tokenizer/tokenizer.js");
    const { worldTokenizerJson, worldCaptionWords } = await import("./tokenizer.js");
    const tok = TextTokenizer.fromJson(worldTokenizerJson());
    expect(tok.vocabSize).toBe(3 + worldCaptionWords().length);
    let longest = 0;
    for (let i = 0; i < 3000; i++) {
      const scene = sampleWorldScene(makeRng(i + 1), i % 2 ? "train" : "heldout");
      const enc = tok.encode(captionScene(scene), { maxLength: 64 });
      const ids = Array.from(enc.ids.subarray(0, enc.length));
      expect(ids).not.toContain(tok.unkId);
      longest = Math.max(longest, enc.length);
    }
    // The demo model pads text to 48 tokens (tessera.json textLength): the longest caption must fit.
    expect(longest).toBeLessThanOrEqual(48);
  });
});

import { describe, expect, test } from "vitest";
import { parseCaption } from "../caption/caption.js";
import type { VideoFrames } from "../video/frames.js";
import { renderClip } from "./render.js";
import { makeRng, type Scene, type SceneObject, sampleScene, sceneAttributes } from "./scene.js";
import { type PromptResult, scoreClip, scorePrompts } from "./score.js";
import { isHeldOut, sampleWorldScene } from "./split.js";

/**
 * A (2r+1)×(2r+1) box blur (edges clamped) plus uniform noise in [-amp, amp]: a
 * stand-in for the softening and grain of a VAE round trip.
 */
function degrade(v: VideoFrames, seed: number, r = 1, amp = 8): VideoFrames {
  const rng = makeRng(seed);
  // A table of noise read at a random offset per frame: per-pixel RNG calls would dominate the test's time.
  const noise = Int8Array.from({ length: 1 << 16 }, () => Math.floor(rng() * (2 * amp + 1)) - amp);
  const { width: w, height: h } = v;
  const taps = (2 * r + 1) ** 2;
  const frames = v.frames.map((f) => {
    const tmp = new Uint16Array(f.length);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        for (let c = 0; c < 3; c++) {
          let s = 0;
          for (let d = -r; d <= r; d++)
            s += f[(y * w + Math.min(w - 1, Math.max(0, x + d))) * 3 + c] as number;
          tmp[(y * w + x) * 3 + c] = s;
        }
    const out = new Uint8Array(f.length);
    let k = Math.floor(rng() * noise.length);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        for (let c = 0; c < 3; c++) {
          let s = 0;
          for (let d = -r; d <= r; d++)
            s += tmp[(Math.min(h - 1, Math.max(0, y + d)) * w + x) * 3 + c] as number;
          const n = noise[k++ & 0xffff] as number;
          out[(y * w + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(s / taps) + n));
        }
    return out;
  });
  return { ...v, frames };
}

// 320 scenes: mostly any-split, some held-out-only, so both halves of scorePrompts fill.
const scenes: Scene[] = [];
for (let i = 0; i < 260; i++) scenes.push(sampleScene(5000 + i));
for (let i = 0; i < 60; i++) scenes.push(sampleWorldScene(9000 + i, "heldout"));
const heldOut = (s: Scene) => s.objects.some((o) => isHeldOut(o.colour, o.shape, o.motion));

function run(corrupt: false | { r: number; amp: number }, subset = scenes) {
  const results: PromptResult[] = [];
  const failures: string[] = [];
  subset.forEach((s, i) => {
    let v = renderClip(s);
    if (corrupt) v = degrade(v, i, corrupt.r, corrupt.amp);
    const score = scoreClip(v, sceneAttributes(s));
    results.push({ score, heldOut: heldOut(s) });
    if (!score.correct) failures.push(`${i}: ${JSON.stringify(score.perAttribute)}`);
  });
  return { agg: scorePrompts(results), failures };
}

describe("scorer on the world's own clips", () => {
  test("covers two-object scenes, split backgrounds and pans", () => {
    expect(scenes.filter((s) => s.objects.length === 2).length).toBeGreaterThan(80);
    expect(scenes.filter((s) => s.pan !== "none").length).toBeGreaterThan(30);
    expect(scenes.filter(heldOut).length).toBeGreaterThan(60);
  });

  test("scores clean ground truth at >= 99%", () => {
    const { agg, failures } = run(false);
    console.log("clean", JSON.stringify(agg.all), failures.slice(0, 5));
    expect(agg.all.overall).toBeGreaterThanOrEqual(0.99);
    expect(agg.all.clips).toBeGreaterThanOrEqual(0.99);
    expect(agg.heldOut.overall).toBeGreaterThanOrEqual(0.99);
    expect(agg.all.consistency).toBeGreaterThan(0.95);
  });

  test("scores blurred and noisy ground truth at >= 95%", () => {
    const { agg, failures } = run({ r: 1, amp: 8 });
    console.log("blur3+noise8", JSON.stringify(agg.all), failures.slice(0, 5));
    expect(agg.all.overall).toBeGreaterThanOrEqual(0.95);
    expect(agg.all.clips).toBeGreaterThanOrEqual(0.95);
  });

  test("keeps >= 95% under a heavier 5×5 blur with ±12 noise", () => {
    const { agg, failures } = run({ r: 2, amp: 12 }, scenes.slice(0, 100));
    console.log("blur5+noise12", JSON.stringify(agg.all), failures.slice(0, 5));
    expect(agg.all.overall).toBeGreaterThanOrEqual(0.95);
  });

  test("a wrong prompt scores wrong", () => {
    const s = sampleScene(42, { objectCount: 1, pSplit: 0 });
    const v = renderClip(s);
    const o = s.objects[0] as SceneObject;
    const wrong = parseCaption(
      `a ${o.colour === "red" ? "green" : "red"} ${o.shape === "circle" ? "square" : "circle"} ${o.motion === "still" ? "bounces" : "stays still"} on a ${s.background.kind === "plain" && s.background.colour === "black" ? "white" : "black"} background`,
    );
    const r = scoreClip(v, wrong);
    expect(r.correct).toBe(false);
    expect(r.perAttribute.background).toBe(0);
    expect(r.perAttribute.colour + r.perAttribute.shape + r.perAttribute.motion).toBeLessThanOrEqual(1);
  });

  test("a blank clip finds no objects", () => {
    const s = sampleScene(8, { objectCount: 1 });
    const v = renderClip({ ...s, objects: [] });
    const r = scoreClip(v, sceneAttributes(s));
    expect(r.details.detected.objects).toHaveLength(0);
    expect(r.perAttribute.colour).toBe(0);
  });
});

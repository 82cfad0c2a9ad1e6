// Dataset export for the PyTorch trainer: uint8 clips in safetensors shards plus
// the ground-truth captions and scenes as JSON, so training needs no TypeScript.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { captionScene } from "../caption/caption.js";
import { WORLD_FPS, WORLD_FRAMES, WORLD_SIZE } from "../caption/vocabulary.js";
import type { VideoFrames } from "../video/frames.js";
import { renderClip } from "./render.js";
import { makeRng, type Scene } from "./scene.js";
import { HELD_OUT_COMBOS, isHeldOut, sampleWorldScene } from "./split.js";

export interface ExportOptions {
  count: number;
  seed: number;
  /** "train" never shows a held-out triple; "heldout" shows only held-out triples. */
  split: "train" | "heldout";
  /** Clips per shard; 256 clips are 214 MB. */
  shardSize?: number;
}

export interface ExportedClip {
  index: number;
  shard: string;
  /** Row of the clip inside its shard's "video" tensor. */
  row: number;
  caption: string;
  scene: Scene;
}

/**
 * Clip `index` of the dataset with this seed and split: its scene, ground-truth
 * caption and frames. Depends only on (seed, index, split), so the PyTorch trainer's
 * data script (training/demo/make_dataset.mjs) and exportWorldDataset agree.
 */
export function worldClip(
  seed: number,
  index: number,
  split: "train" | "heldout",
): { scene: Scene; caption: string; video: VideoFrames } {
  // Seeds per clip from a mixed stream: neighbouring seeds must not give neighbouring scenes.
  const scene = sampleWorldScene(makeRng((seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0), split);
  return { scene, caption: captionScene(scene), video: renderClip(scene) };
}

/**
 * Writes `video-NNNNN.safetensors` shards, each one U8 tensor "video" of shape
 * [N, 17, 128, 128, 3] (frames, height, width, RGB), and `captions.json`
 * ({ split, seed, fps, heldOut, clips: ExportedClip[] }). Scene i depends only on
 * (seed, i), so any clip can be regenerated or a shard rewritten on its own.
 */
export async function exportWorldDataset(
  dir: string,
  opts: ExportOptions,
): Promise<{ shards: string[]; clips: ExportedClip[] }> {
  const { count, seed, split } = opts;
  const shardSize = opts.shardSize ?? 256;
  if (!Number.isInteger(count) || count <= 0)
    throw new Error(`exportWorldDataset: count must be a positive integer`);
  // Loaded here so the rest of the world (sampler, renderer, scorer) never pulls in the native addon.
  const { writeSafetensors } = await import("../weights/safetensors.js");
  await mkdir(dir, { recursive: true });
  const clipBytes = WORLD_FRAMES * WORLD_SIZE * WORLD_SIZE * 3;
  const clips: ExportedClip[] = [];
  const shards: string[] = [];
  for (let start = 0; start < count; start += shardSize) {
    const n = Math.min(shardSize, count - start);
    const data = new Uint8Array(n * clipBytes);
    const shard = `video-${String(shards.length).padStart(5, "0")}.safetensors`;
    for (let row = 0; row < n; row++) {
      const index = start + row;
      const { scene, caption, video } = worldClip(seed, index, split);
      video.frames.forEach((f, t) => {
        data.set(f, row * clipBytes + t * f.length);
      });
      clips.push({ index, shard, row, caption, scene });
    }
    await writeSafetensors(
      join(dir, shard),
      { video: { dtype: "U8", shape: [n, WORLD_FRAMES, WORLD_SIZE, WORLD_SIZE, 3], data } },
      { split, seed: String(seed), layout: "NTHWC", fps: String(WORLD_FPS) },
    );
    shards.push(shard);
  }
  const meta = {
    split,
    seed,
    fps: WORLD_FPS,
    frames: WORLD_FRAMES,
    size: WORLD_SIZE,
    heldOut: HELD_OUT_COMBOS,
    clips: clips.map((c) => ({
      ...c,
      heldOut: c.scene.objects.some((o) => isHeldOut(o.colour, o.shape, o.motion)),
    })),
  };
  await writeFile(join(dir, "captions.json"), `${JSON.stringify(meta)}\n`);
  return { shards, clips };
}

// The fixed prompt set of the prompt-adherence benchmark (`pnpm bench:quality`):
// half held-out combinations, half seen ones, one- and two-object scenes, and a
// share written the way a user types ("purple ball going right on gray") so the
// rewriter is measured along with the model. The expected attributes come from the
// scene the prompt was made from, never from the rewriter.

import { captionScene, type SceneAttributes } from "../caption/caption.js";
import type { Motion, Shape } from "../caption/vocabulary.js";
import { rewritePrompt } from "../prompt/rewrite.js";
import { makeRng, type Scene, sceneAttributes } from "./scene.js";
import { sameBackground } from "./score.js";
import { isHeldOut, sampleWorldScene } from "./split.js";

export interface QualityPrompt {
  /** What is typed: the world's caption, or a paraphrase of it. */
  prompt: string;
  expected: SceneAttributes;
  /** Any object is a held-out (colour, shape, motion) triple. */
  heldOut: boolean;
  paraphrased: boolean;
  objects: number;
  /** Seed for generation (the prompt's index). */
  seed: number;
}

const SHAPE_WORDS: Record<Shape, string[]> = {
  circle: ["ball", "circle", "dot"],
  square: ["box", "square", "block"],
  triangle: ["triangle", "pyramid"],
};
const MOTION_WORDS: Record<Motion, string[]> = {
  left: ["moving left", "going left"],
  right: ["going right", "moving right"],
  up: ["moving up", "going up"],
  down: ["moving down", "going down"],
  diagonal: ["moving diagonally", "going diagonally"],
  bouncing: ["bouncing", "hopping"],
  growing: ["growing", "that grows"],
  shrinking: ["shrinking", "that shrinks"],
  still: ["staying still", "not moving"],
};

function pick<T>(xs: readonly T[], r: () => number): T {
  return xs[Math.floor(r() * xs.length)] as T;
}

// A user-style wording of the scene: no articles, synonyms, loose order.
function paraphrase(a: SceneAttributes, r: () => number): string {
  const objs = a.objects.map(
    (o) => `${o.colour} ${pick(SHAPE_WORDS[o.shape], r)} ${pick(MOTION_WORDS[o.motion], r)}`,
  );
  const bg =
    a.background.kind === "plain"
      ? `${a.background.colour} background`
      : `${a.background.left} and ${a.background.right} background`;
  let text = `${objs.join(" and ")} on ${bg}`;
  if (a.pan !== "none") text += `, camera panning ${a.pan}`;
  return text;
}

// The attributes the scorer checks agree (size and start position are not scored).
function sameScored(x: SceneAttributes, y: SceneAttributes): boolean {
  if (!sameBackground(x.background, y.background) || x.pan !== y.pan || x.objects.length !== y.objects.length)
    return false;
  return x.objects.every((o, i) => {
    const p = y.objects[i];
    return p !== undefined && o.colour === p.colour && o.shape === p.shape && o.motion === p.motion;
  });
}

/**
 * `count` prompts (default 220), the same on every machine: even indices from the
 * held-out split, odd from the training split; indices 1 and 2 mod 4 (half of each
 * split) paraphrased when the rewriter recovers every scored attribute from the
 * paraphrase (else the caption).
 */
export function qualityPromptSet(count = 220, seed = 4242): QualityPrompt[] {
  const out: QualityPrompt[] = [];
  for (let i = 0; i < count; i++) {
    const r = makeRng((seed + Math.imul(i + 1, 0x9e3779b1)) >>> 0);
    const scene: Scene = sampleWorldScene(r, i % 2 === 0 ? "heldout" : "train");
    const expected = sceneAttributes(scene);
    let prompt = captionScene(scene);
    let paraphrased = false;
    if (i % 4 === 1 || i % 4 === 2) {
      for (let attempt = 0; attempt < 4 && !paraphrased; attempt++) {
        const p = paraphrase(expected, r);
        try {
          if (sameScored(rewritePrompt(p).attributes, expected)) {
            prompt = p;
            paraphrased = true;
          }
        } catch {
          // An unparseable paraphrase keeps the caption.
        }
      }
    }
    out.push({
      prompt,
      expected,
      heldOut: scene.objects.some((o) => isHeldOut(o.colour, o.shape, o.motion)),
      paraphrased,
      objects: scene.objects.length,
      seed: i,
    });
  }
  return out;
}

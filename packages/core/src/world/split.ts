// The held-out (colour, shape, motion) triples. Training never sees them, so
// scoring them measures composition rather than memory. The list is data, fixed
// by a seed and checked in as heldout.json; regenerate only with a new dataset.

import {
  allCombos,
  MOTIONS,
  type Motion,
  OBJECT_COLOUR_NAMES,
  type ObjectColour,
  SHAPES,
  type Shape,
} from "../caption/vocabulary.js";
import { makeRng, type SampleOptions, type Scene, sampleScene } from "./scene.js";

type Combo3 = [ObjectColour, Shape, Motion];

export const HELD_OUT_SEED = 20261125;
export const HELD_OUT_FRACTION = 0.18;

/**
 * Draws the held-out list: a seeded shuffle, then a greedy pass that keeps every
 * colour, shape and motion present in training (each value keeps most of its
 * triples), so held-out triples are new combinations of seen words.
 */
export function drawHeldOut(
  seed = HELD_OUT_SEED,
  fraction = HELD_OUT_FRACTION,
): Array<[ObjectColour, Shape, Motion]> {
  const combos = allCombos();
  const rng = makeRng(seed);
  for (let i = combos.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [combos[i], combos[j]] = [combos[j] as Combo3, combos[i] as Combo3];
  }
  const want = Math.ceil(combos.length * fraction);
  const out: Array<[ObjectColour, Shape, Motion]> = [];
  const used = new Map<string, number>();
  const cap = (k: string, total: number) => (used.get(k) ?? 0) < Math.ceil(total * 0.34);
  for (const c of combos) {
    if (out.length >= want) break;
    const keys: Array<[string, number]> = [
      [`c:${c[0]}`, SHAPES.length * MOTIONS.length],
      [`s:${c[1]}`, OBJECT_COLOUR_NAMES.length * MOTIONS.length],
      [`m:${c[2]}`, OBJECT_COLOUR_NAMES.length * SHAPES.length],
      [`cs:${c[0]}/${c[1]}`, MOTIONS.length],
      [`cm:${c[0]}/${c[2]}`, SHAPES.length],
      [`sm:${c[1]}/${c[2]}`, OBJECT_COLOUR_NAMES.length],
    ];
    if (!keys.every(([k, n]) => cap(k, n))) continue;
    for (const [k] of keys) used.set(k, (used.get(k) ?? 0) + 1);
    out.push(c);
  }
  return out.sort((a, b) => a.join("/").localeCompare(b.join("/")));
}

/**
 * The world's held-out triples. Computed from the fixed seed rather than read from
 * heldout.json so the package needs no JSON loader; a test pins the two equal, so
 * a vocabulary edit that would silently reshuffle the split fails loudly instead.
 */
export const HELD_OUT_COMBOS: ReadonlyArray<readonly [ObjectColour, Shape, Motion]> = drawHeldOut();

const heldSet = new Set(HELD_OUT_COMBOS.map((c) => c.join("/")));

export function isHeldOut(colour: ObjectColour, shape: Shape, motion: Motion): boolean {
  return heldSet.has(`${colour}/${shape}/${motion}`);
}

/** sampleScene with the world's held-out list wired in. */
export function sampleWorldScene(
  seed: number | (() => number),
  split: "train" | "heldout" | "any" = "any",
  opts: Omit<SampleOptions, "heldOut" | "isHeldOut"> = {},
): Scene {
  return sampleScene(seed, {
    ...opts,
    heldOut: split === "train" ? "exclude" : split === "heldout" ? "only" : "include",
    isHeldOut,
  });
}

// The world's scenes: plain JSON that fully determines a clip, a seeded sampler,
// and the trajectory every consumer (renderer, feasibility checks) shares, so the
// pixels and the caption can never disagree about where an object is.
import type { SceneAttributes } from "../caption/caption.js";
import {
  BACKGROUND_COLOUR_NAMES,
  BACKGROUND_COLOURS,
  type BackgroundColour,
  MOTIONS,
  type Motion,
  OBJECT_COLOUR_NAMES,
  OBJECT_COLOURS,
  type ObjectColour,
  type Pan,
  POSITIONS,
  type Position,
  type Rgb,
  SHAPES,
  type Shape,
  SIZE_RANGES,
  SIZES,
  type Size,
  WORLD_FRAMES,
  WORLD_SIZE,
} from "../caption/vocabulary.js";

export type Background =
  | { kind: "plain"; colour: BackgroundColour }
  /** Left half `left`, right half `right`, split at x = `boundary` (pixels, frame 0). */
  | { kind: "split"; left: BackgroundColour; right: BackgroundColour; boundary: number };

export interface Bounce {
  /** y of the centroid when touching the floor. */
  floor: number;
  amplitude: number;
  /** Frames per bounce. */
  period: number;
  /** Fraction of a period already elapsed at frame 0. */
  phase: number;
}

export interface SceneObject {
  colour: ObjectColour;
  shape: Shape;
  motion: Motion;
  /** Class of `radius`, the half-extent at scale 1. */
  size: Size;
  /** Grid cell of the centroid on screen at frame 0. */
  position: Position;
  /** Centroid at frame 0 in world pixels (equal to screen pixels at frame 0). */
  x: number;
  y: number;
  radius: number;
  /** Pixels per frame (moves) or unused. */
  speed: number;
  bounce?: Bounce;
}

export interface Scene {
  background: Background;
  objects: SceneObject[];
  pan: Pan;
  /** Pixels per frame the scene slides on screen; 0 without a pan. */
  panSpeed: number;
  /** Frame count and size are fixed by the world but kept in the JSON so a scene is self-describing. */
  frames: number;
  size: number;
}

export type Combo = readonly [ObjectColour, Shape, Motion];

export interface SampleOptions {
  /** Only these (colour, shape, motion) triples may appear; overrides `heldOut`. */
  allowedCombos?: readonly Combo[] | ((c: ObjectColour, s: Shape, m: Motion) => boolean);
  /**
   * "exclude": no held-out triple (training data); "only": every object is a held-out
   * triple (composition evaluation); "include" (default): any triple.
   */
  heldOut?: "exclude" | "only" | "include";
  /** Held-out predicate; split.ts supplies the world's fixed list. Required with `heldOut`. */
  isHeldOut?: (c: ObjectColour, s: Shape, m: Motion) => boolean;
  /** Force 1 or 2 objects. */
  objectCount?: 1 | 2;
  /** Probabilities of a two-object scene, a split background, and a pan given a split background. */
  pTwoObjects?: number;
  pSplit?: number;
  pPan?: number;
}

export type Rng = () => number;

/** mulberry32: tiny, fast, and identical on every platform, which determinism needs. */
export function makeRng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)] as T;
const uniform = (rng: Rng, lo: number, hi: number) => lo + (hi - lo) * rng();
const round2 = (x: number) => Math.round(x * 100) / 100;

export const GROW_SCALE: readonly [number, number] = [0.6, 1.25];

/** Scale of an object at frame t (growing/shrinking interpolate linearly over the clip). */
export function scaleAt(motion: Motion, t: number, frames = WORLD_FRAMES): number {
  const u = frames > 1 ? t / (frames - 1) : 0;
  const [lo, hi] = GROW_SCALE;
  if (motion === "growing") return lo + (hi - lo) * u;
  if (motion === "shrinking") return hi + (lo - hi) * u;
  return 1;
}

function bounceHeight(b: Bounce, t: number): number {
  const u = (((t / b.period + b.phase) % 1) + 1) % 1;
  // A parabola per period: constant downward acceleration between floor contacts.
  return b.amplitude * 4 * u * (1 - u);
}

/** Screen offset of the whole scene at frame t: a left pan slides content to the right. */
export function panOffset(scene: Pick<Scene, "pan" | "panSpeed">, t: number): number {
  if (scene.pan === "left") return scene.panSpeed * t;
  if (scene.pan === "right") return -scene.panSpeed * t;
  return 0;
}

/** Centroid (screen pixels) and scale of an object at frame t. */
export function objectStateAt(
  scene: Pick<Scene, "pan" | "panSpeed" | "frames">,
  o: SceneObject,
  t: number,
): { x: number; y: number; scale: number } {
  let x = o.x;
  let y = o.y;
  const d = o.speed * t;
  switch (o.motion) {
    case "left":
      x -= d;
      break;
    case "right":
      x += d;
      break;
    case "up":
      y -= d;
      break;
    case "down":
      y += d;
      break;
    case "diagonal":
      x += d * Math.SQRT1_2;
      y += d * Math.SQRT1_2;
      break;
    case "bouncing":
      if (o.bounce) y = o.bounce.floor - bounceHeight(o.bounce, t);
      break;
    default:
      break;
  }
  return { x: x + panOffset(scene, t), y, scale: scaleAt(o.motion, t, scene.frames) };
}

/**
 * Bounding box of a shape with centroid (x, y) and half-extent r. Triangles point
 * up with base 2r and height 2r; their centroid sits a third of the height above
 * the base, so scaling about the centroid keeps the centroid still.
 */
export function shapeBox(shape: Shape, x: number, y: number, r: number): [number, number, number, number] {
  if (shape === "triangle") return [x - r, y - (4 * r) / 3, x + r, y + (2 * r) / 3];
  return [x - r, y - r, x + r, y + r];
}

export function positionOf(x: number, y: number, size = WORLD_SIZE): Position {
  const col = Math.min(2, Math.max(0, Math.floor((x / size) * 3)));
  const row = Math.min(2, Math.max(0, Math.floor((y / size) * 3)));
  return POSITIONS[row * 3 + col] as Position;
}

/** Distance from colour p to the segment a–b in RGB. */
export function distToSegment(p: Rgb, a: Rgb, b: Rgb): number {
  const [d0, d1, d2] = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
  const dd = d0 * d0 + d1 * d1 + d2 * d2;
  let t = dd === 0 ? 0 : ((p[0] - a[0]) * d0 + (p[1] - a[1]) * d1 + (p[2] - a[2]) * d2) / dd;
  t = Math.min(1, Math.max(0, t));
  return Math.hypot(p[0] - a[0] - t * d0, p[1] - a[1] - t * d1, p[2] - a[2] - t * d2);
}

export function backgroundNames(bg: Background): BackgroundColour[] {
  return bg.kind === "plain" ? [bg.colour] : [bg.left, bg.right];
}

/**
 * Whether an object colour may sit on a background: never its own colour name, and
 * far from any blend of a split background's two halves, so the scorer can tell an
 * object from the soft seam between them.
 */
export function colourFitsBackground(c: ObjectColour, bg: Background): boolean {
  const names = backgroundNames(bg);
  if (names.includes(c as BackgroundColour)) return false;
  const p = OBJECT_COLOURS[c];
  if (bg.kind === "split") {
    return distToSegment(p, BACKGROUND_COLOURS[bg.left], BACKGROUND_COLOURS[bg.right]) >= 70;
  }
  return true;
}

const MARGIN = 3;
const GAP = 5;

function fits(scene: Scene, objs: SceneObject[]): boolean {
  const boxes: Array<Array<[number, number, number, number]>> = objs.map(() => []);
  for (let t = 0; t < scene.frames; t++) {
    for (let i = 0; i < objs.length; i++) {
      const o = objs[i] as SceneObject;
      const s = objectStateAt(scene, o, t);
      const b = shapeBox(o.shape, s.x, s.y, o.radius * s.scale);
      if (b[0] < MARGIN || b[1] < MARGIN || b[2] > scene.size - MARGIN || b[3] > scene.size - MARGIN)
        return false;
      (boxes[i] as Array<[number, number, number, number]>).push(b);
    }
  }
  // Objects never touch, not only at the start: an occluded object has no true shape to score.
  if (objs.length === 2) {
    for (let t = 0; t < scene.frames; t++) {
      const [a, b] = [boxes[0]?.[t], boxes[1]?.[t]];
      if (!a || !b) return false;
      const apart = a[2] + GAP < b[0] || b[2] + GAP < a[0] || a[3] + GAP < b[1] || b[3] + GAP < a[1];
      if (!apart) return false;
    }
  }
  return true;
}

function comboFilter(opts: SampleOptions): (c: ObjectColour, s: Shape, m: Motion) => boolean {
  const a = opts.allowedCombos;
  if (typeof a === "function") return a;
  if (a) {
    const set = new Set(a.map((x) => x.join("/")));
    return (c, s, m) => set.has(`${c}/${s}/${m}`);
  }
  const mode = opts.heldOut ?? "include";
  if (mode === "include") return () => true;
  const h = opts.isHeldOut;
  if (!h)
    throw new Error(`sampleScene: heldOut: "${mode}" needs isHeldOut (use split.ts's sampleWorldScene)`);
  return mode === "exclude" ? (c, s, m) => !h(c, s, m) : h;
}

function sampleObject(rng: Rng, scene: Scene, c: ObjectColour, s: Shape, m: Motion): SceneObject {
  const size = pick(rng, SIZES);
  const [rlo, rhi] = SIZE_RANGES[size];
  const radius = round2(uniform(rng, rlo, rhi + 0.99));
  const n = scene.size;
  const o: SceneObject = {
    colour: c,
    shape: s,
    motion: m,
    size,
    position: "middle",
    x: round2(uniform(rng, 0.1 * n, 0.9 * n)),
    y: round2(uniform(rng, 0.1 * n, 0.9 * n)),
    radius,
    speed: ["left", "right", "up", "down", "diagonal"].includes(m) ? round2(uniform(rng, 2, 3.5)) : 0,
  };
  if (m === "bouncing") {
    const amplitude = round2(uniform(rng, 24, 40));
    const bounce: Bounce = {
      floor: round2(uniform(rng, amplitude + 0.2 * n, 0.88 * n)),
      amplitude,
      period: round2(uniform(rng, 8, 12)),
      phase: round2(rng()),
    };
    o.bounce = bounce;
    o.y = round2(bounce.floor - bounceHeight(bounce, 0));
  }
  o.position = positionOf(o.x, o.y, n);
  return o;
}

/**
 * Draws a scene. Two objects always differ in colour (so a colour names one object)
 * and never touch; a pan only comes with a split background, because on a plain
 * background a pan is invisible and a caption would claim what no pixel shows.
 */
export function sampleScene(rngOrSeed: Rng | number, opts: SampleOptions = {}): Scene {
  const rng = typeof rngOrSeed === "number" ? makeRng(rngOrSeed) : rngOrSeed;
  const allowed = comboFilter(opts);
  for (let attempt = 0; attempt < 1000; attempt++) {
    let background: Background;
    if (rng() < (opts.pSplit ?? 0.35)) {
      const left = pick(rng, BACKGROUND_COLOUR_NAMES);
      const right = pick(
        rng,
        BACKGROUND_COLOUR_NAMES.filter((b) => b !== left),
      );
      background = { kind: "split", left, right, boundary: round2(uniform(rng, 44, 84)) };
    } else {
      background = { kind: "plain", colour: pick(rng, BACKGROUND_COLOUR_NAMES) };
    }
    let pan: Pan = "none";
    let panSpeed = 0;
    if (background.kind === "split" && rng() < (opts.pPan ?? 0.5)) {
      pan = rng() < 0.5 ? "left" : "right";
      panSpeed = round2(uniform(rng, 1, 1.5));
    }
    const scene: Scene = { background, objects: [], pan, panSpeed, frames: WORLD_FRAMES, size: WORLD_SIZE };
    const count = opts.objectCount ?? (rng() < (opts.pTwoObjects ?? 0.4) ? 2 : 1);
    const combos: Combo[] = [];
    for (const c of OBJECT_COLOUR_NAMES) {
      if (!colourFitsBackground(c, background)) continue;
      for (const s of SHAPES) for (const m of MOTIONS) if (allowed(c, s, m)) combos.push([c, s, m]);
    }
    if (combos.length === 0) continue;
    const objs: SceneObject[] = [];
    let ok = true;
    for (let k = 0; k < count && ok; k++) {
      const choices = combos.filter(([c]) => !objs.some((o) => o.colour === c));
      if (choices.length === 0) {
        ok = false;
        break;
      }
      const [c, s, m] = pick(rng, choices);
      ok = false;
      for (let tries = 0; tries < 60; tries++) {
        const o = sampleObject(rng, scene, c, s, m);
        if (fits(scene, [...objs, o])) {
          objs.push(o);
          ok = true;
          break;
        }
      }
    }
    if (!ok) continue;
    scene.objects = objs;
    return scene;
  }
  throw new Error("sampleScene: could not place objects; the combo filter may be too narrow");
}

/** The object colour's RGB; re-exported so renderers need one import. */
export const objectRgb = (c: ObjectColour): Rgb => OBJECT_COLOURS[c];
export const backgroundRgb = (c: BackgroundColour): Rgb => BACKGROUND_COLOURS[c];

/** What a caption states about `scene` (caption/caption.ts), as plain attributes. */
export function sceneAttributes(scene: Scene): SceneAttributes {
  const bg = scene.background;
  return {
    background:
      bg.kind === "plain"
        ? { kind: "plain", colour: bg.colour }
        : { kind: "split", left: bg.left, right: bg.right },
    objects: scene.objects.map((o) => ({
      colour: o.colour,
      shape: o.shape,
      motion: o.motion,
      size: o.size,
      position: o.position,
    })),
    pan: scene.pan,
  };
}

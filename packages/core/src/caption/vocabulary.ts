// The procedural world's vocabulary: the one place that names colours, shapes,
// motions, backgrounds and camera pans. The sampler, renderer, captioner, scorer
// and the prompt rewriter all read it, so a word means the same thing everywhere.
// Keep this API stable: the rewriter (src/prompt/) imports it.

export type Rgb = readonly [number, number, number];

/** Object colours. Saturated and far apart so they survive the VAE's blur. */
export const OBJECT_COLOURS = {
  red: [230, 30, 30],
  green: [40, 200, 50],
  blue: [40, 80, 240],
  yellow: [240, 225, 30],
  purple: [150, 40, 200],
  orange: [255, 130, 0],
  white: [245, 245, 245],
} as const satisfies Record<string, Rgb>;
export type ObjectColour = keyof typeof OBJECT_COLOURS;
export const OBJECT_COLOUR_NAMES = Object.keys(OBJECT_COLOURS) as ObjectColour[];

/**
 * Background colours. Darker than the object colour of the same name so even
 * the background blue and the object blue differ; the world still never puts an
 * object on a background (or background half) of its own colour name.
 */
export const BACKGROUND_COLOURS = {
  black: [10, 10, 10],
  white: [245, 245, 245],
  gray: [128, 128, 128],
  blue: [20, 40, 120],
  green: [20, 100, 40],
} as const satisfies Record<string, Rgb>;
export type BackgroundColour = keyof typeof BACKGROUND_COLOURS;
export const BACKGROUND_COLOUR_NAMES = Object.keys(BACKGROUND_COLOURS) as BackgroundColour[];

export const SHAPES = ["circle", "square", "triangle"] as const;
export type Shape = (typeof SHAPES)[number];

/**
 * Motions. "diagonal" always means down and to the right (one direction, so a
 * caption word maps to one trajectory). "bouncing" is a vertical bounce under
 * gravity; "growing"/"shrinking" scale in place; "still" does not move.
 */
export const MOTIONS = [
  "left",
  "right",
  "up",
  "down",
  "diagonal",
  "bouncing",
  "growing",
  "shrinking",
  "still",
] as const;
export type Motion = (typeof MOTIONS)[number];

/** Verb phrase each motion takes in captions (the canonical wording). */
export const MOTION_PHRASES: Record<Motion, string> = {
  left: "moves to the left",
  right: "moves to the right",
  up: "moves up",
  down: "moves down",
  diagonal: "moves diagonally down to the right",
  bouncing: "bounces",
  growing: "grows",
  shrinking: "shrinks",
  still: "stays still",
};

/** Camera pan: "left" means the camera turns left, so the scene slides right in the frame. */
export const PANS = ["none", "left", "right"] as const;
export type Pan = (typeof PANS)[number];
export const PAN_PHRASES: Record<Exclude<Pan, "none">, string> = {
  left: "the camera pans slowly to the left",
  right: "the camera pans slowly to the right",
};

/** Size classes of an object's initial half-extent in pixels at 128×128; "medium" takes no word. */
export const SIZES = ["small", "medium", "large"] as const;
export type Size = (typeof SIZES)[number];
export const SIZE_RANGES: Record<Size, readonly [number, number]> = {
  small: [8, 10],
  medium: [11, 14],
  large: [15, 18],
};

/** Starting position on a 3×3 grid of the frame, with the phrase captions use. */
export const POSITIONS = [
  "top left",
  "top",
  "top right",
  "left",
  "middle",
  "right",
  "bottom left",
  "bottom",
  "bottom right",
] as const;
export type Position = (typeof POSITIONS)[number];
export const POSITION_PHRASES: Record<Position, string> = {
  "top left": "in the top left",
  top: "at the top",
  "top right": "in the top right",
  left: "on the left",
  middle: "in the middle",
  right: "on the right",
  "bottom left": "in the bottom left",
  bottom: "at the bottom",
  "bottom right": "in the bottom right",
};

/** Words a user may type that mean a canonical word; for the prompt rewriter. */
export const SYNONYMS: Record<string, string> = {
  grey: "gray",
  violet: "purple",
  magenta: "purple",
  ball: "circle",
  disc: "circle",
  disk: "circle",
  dot: "circle",
  box: "square",
  block: "square",
  cube: "square",
  rectangle: "square",
  pyramid: "triangle",
  bouncing: "bouncing",
  bounce: "bouncing",
  bounces: "bouncing",
  hopping: "bouncing",
  grow: "growing",
  grows: "growing",
  expanding: "growing",
  shrink: "shrinking",
  shrinks: "shrinking",
  static: "still",
  stationary: "still",
  motionless: "still",
  tiny: "small",
  big: "large",
  huge: "large",
  centre: "middle",
  center: "middle",
};

/** Clip geometry of the world: the VAE turns 17×128×128 into 5×16×16 latents. */
export const WORLD_FRAMES = 17;
export const WORLD_SIZE = 128;
export const WORLD_FPS = 8;

export function isObjectColour(x: string): x is ObjectColour {
  return Object.hasOwn(OBJECT_COLOURS, x);
}
export function isBackgroundColour(x: string): x is BackgroundColour {
  return Object.hasOwn(BACKGROUND_COLOURS, x);
}
export function isShape(x: string): x is Shape {
  return (SHAPES as readonly string[]).includes(x);
}
export function isMotion(x: string): x is Motion {
  return (MOTIONS as readonly string[]).includes(x);
}

/** Every (colour, shape, motion) triple, in a fixed order: colour, then shape, then motion. */
export function allCombos(): Array<[ObjectColour, Shape, Motion]> {
  const out: Array<[ObjectColour, Shape, Motion]> = [];
  for (const c of OBJECT_COLOUR_NAMES) for (const s of SHAPES) for (const m of MOTIONS) out.push([c, s, m]);
  return out;
}

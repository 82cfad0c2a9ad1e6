// The caption language of the procedural world (world/) and of the demo model
// trained on it: captions from ground truth state every attribute in one fixed
// style, and parseCaption inverts it exactly. It lives apart from the world so that
// the prompt rewriter (prompt/), which writes this style, and the world, which
// renders and scores it, both import it and not each other.
//
// Grammar (every caption is lower case, one line, no final full stop):
//
//   caption    := object " on a " background " background" pan?             (one object)
//               | object ", and " object ", on a " background " background" pan?  (two objects)
//   object     := article " " (size " ")? colour " " shape " " motion " " position
//   article    := "an" before a vowel ("an orange"), else "a"
//   size       := "small" | "large"            (medium takes no word)
//   colour     := red | green | blue | yellow | purple | orange | white
//   shape      := circle | square | triangle
//   motion     := "moves to the left" | "moves to the right" | "moves up" | "moves down"
//               | "moves diagonally down to the right" | "bounces" | "grows" | "shrinks"
//               | "stays still"
//   position   := "in the top left" | "at the top" | "in the top right" | "on the left"
//               | "in the middle" | "on the right" | "in the bottom left" | "at the bottom"
//               | "in the bottom right"          (where the object is in the first frame)
//   background := bg | bg " and " bg            (split: left half first, then right half)
//   bg         := black | white | gray | blue | green
//   pan        := ", the camera pans slowly to the left" | ", the camera pans slowly to the right"
//
// Example: "a small green square bounces in the middle, and a blue triangle stays
// still on the left, on a gray and white background, the camera pans slowly to the left"
import {
  type BackgroundColour,
  isBackgroundColour,
  isObjectColour,
  isShape,
  MOTION_PHRASES,
  MOTIONS,
  type Motion,
  type ObjectColour,
  PAN_PHRASES,
  type Pan,
  POSITION_PHRASES,
  POSITIONS,
  type Position,
  type Shape,
  type Size,
} from "./vocabulary.js";

/** What a caption states about a scene: the attributes the scorer checks, plus size and start position. */
export interface SceneAttributes {
  background:
    | { kind: "plain"; colour: BackgroundColour }
    | { kind: "split"; left: BackgroundColour; right: BackgroundColour };
  objects: ObjectAttributes[];
  pan: Pan;
}
export interface ObjectAttributes {
  colour: ObjectColour;
  shape: Shape;
  motion: Motion;
  size?: Size;
  position?: Position;
}

function objectPhrase(o: ObjectAttributes): string {
  const words: string[] = [];
  if (o.size && o.size !== "medium") words.push(o.size);
  words.push(o.colour, o.shape, MOTION_PHRASES[o.motion]);
  if (o.position) words.push(POSITION_PHRASES[o.position]);
  const article = /^[aeiou]/.test(words[0] as string) ? "an" : "a";
  return `${article} ${words.join(" ")}`;
}

/**
 * The detailed caption of a scene's attributes in the world's one style (a world
 * Scene is one: it has every attribute and more, which the caption leaves out).
 */
export function captionScene(attrs: SceneAttributes): string {
  const objs = attrs.objects.map(objectPhrase);
  const bgWords =
    attrs.background.kind === "plain"
      ? attrs.background.colour
      : `${attrs.background.left} and ${attrs.background.right}`;
  const bg = `on a ${bgWords} background`;
  let text = objs.length === 1 ? `${objs[0]} ${bg}` : `${objs.join(", and ")}, ${bg}`;
  if (attrs.pan !== "none") text += `, ${PAN_PHRASES[attrs.pan]}`;
  return text;
}

export class CaptionParseError extends Error {}

const motionByPhrase = new Map<string, Motion>(MOTIONS.map((m) => [MOTION_PHRASES[m], m]));
const positionByPhrase = new Map<string, Position>(POSITIONS.map((p) => [POSITION_PHRASES[p], p]));
const alt = (xs: Iterable<string>) => [...xs].map((x) => x.replace(/ /g, "\\s+")).join("|");
const OBJECT_RE = new RegExp(
  `^an?\\s+(?:(small|large)\\s+)?(\\w+)\\s+(\\w+)\\s+(${alt(motionByPhrase.keys())})(?:\\s+(${alt(positionByPhrase.keys())}))?$`,
);
const TAIL_RE =
  /,?\s*on\s+a\s+(\w+)(?:\s+and\s+(\w+))?\s+background(?:,\s*the\s+camera\s+pans\s+slowly\s+to\s+the\s+(left|right))?$/;

/** Inverts captionScene. Tolerates case and spacing, nothing else: it is a check, not a rewriter. */
export function parseCaption(caption: string): SceneAttributes {
  const text = caption.trim().toLowerCase().replace(/\s+/g, " ").replace(/\.$/, "");
  const tail = TAIL_RE.exec(text);
  if (!tail) throw new CaptionParseError(`no "on a ... background" clause in: ${caption}`);
  const [, b1, b2, panDir] = tail;
  if (!b1 || !isBackgroundColour(b1) || (b2 !== undefined && !isBackgroundColour(b2)))
    throw new CaptionParseError(`unknown background colour in: ${caption}`);
  const background: SceneAttributes["background"] =
    b2 === undefined
      ? { kind: "plain", colour: b1 }
      : { kind: "split", left: b1, right: b2 as BackgroundColour };
  const head = text.slice(0, tail.index);
  const objects: ObjectAttributes[] = [];
  for (const clause of head.split(", and ")) {
    const m = OBJECT_RE.exec(clause.trim());
    if (!m) throw new CaptionParseError(`cannot read object clause "${clause}" in: ${caption}`);
    const [, size, colour, shape, motion, position] = m;
    if (!colour || !isObjectColour(colour)) throw new CaptionParseError(`unknown colour "${colour}"`);
    if (!shape || !isShape(shape)) throw new CaptionParseError(`unknown shape "${shape}"`);
    const o: ObjectAttributes = {
      colour,
      shape,
      motion: motionByPhrase.get((motion as string).replace(/\s+/g, " ")) as Motion,
      size: (size as Size | undefined) ?? "medium",
    };
    if (position) o.position = positionByPhrase.get(position.replace(/\s+/g, " ")) as Position;
    objects.push(o);
  }
  return { background, objects, pan: (panDir as Pan | undefined) ?? "none" };
}

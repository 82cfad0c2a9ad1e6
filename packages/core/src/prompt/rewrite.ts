// The prompt rewriter: the demo model only ever saw captions in the world's one
// fixed style (caption/caption.ts), so free text such as "red ball going right" is
// mapped onto that style before it reaches the text encoder. It is a lexicon and
// a few rules, not a model, so the same text always gives the same caption and
// every word it could not place is reported back instead of silently dropped.
//
// Defaults for what the text leaves out (REWRITE_DEFAULTS, listed per prompt in
// `filledDefaults`):
//   shape       circle
//   colour      red, the first object colour that is no background colour name,
//               so the default object is visible on every background; a second
//               object takes the next colour of DEFAULT_COLOUR_ORDER not already used
//               (the world never shows two objects of one colour on a background of
//               that name, and two same-coloured objects would be indistinguishable)
//   motion      "still" when no motion word is given: inventing movement the user did
//               not ask for is worse than a static clip; "right" when only a movement
//               verb is given ("a ball moving"), because the user did ask for motion
//   background  black (plain)
//   pan         none; "right" when a pan is asked for without a direction
//   position    where the motion has room: "moves to the right" starts on the left,
//               "moves up" at the bottom, "moves diagonally…" in the top left, the
//               rest in the middle; two objects take a column (or row) each
//               (DEFAULT_POSITIONS). The grammar makes position optional, but every
//               training caption has one, so a caption without it is one the demo
//               model never saw.
// Size is optional in the grammar and in training captions (medium takes no word),
// so it is left out rather than defaulted, and never listed in `filledDefaults`.
//
// Blank input (nothing but spaces and punctuation) throws PromptRewriteError:
// there is nothing to rewrite, and the CLI and server already refuse blank prompts.
// Input with words but none understood gives an all-defaults caption plus the words
// in `unknownWords`, so the caller can decide whether to go ahead.
import { captionScene, type ObjectAttributes, type SceneAttributes } from "../caption/caption.js";
import {
  BACKGROUND_COLOUR_NAMES,
  type BackgroundColour,
  isBackgroundColour,
  isMotion,
  isObjectColour,
  isShape,
  MOTION_PHRASES,
  MOTIONS,
  type Motion,
  OBJECT_COLOUR_NAMES,
  type ObjectColour,
  type Pan,
  POSITION_PHRASES,
  POSITIONS,
  type Position,
  type Shape,
  SIZES,
  type Size,
  SYNONYMS,
} from "../caption/vocabulary.js";

/** The world's attribute types under the rewriter's names, so both can be re-exported from one package index. */
export type RewrittenScene = SceneAttributes;
export type RewrittenObject = ObjectAttributes;

/** The world's captions hold one or two objects; more would be a caption the model never saw. */
export const MAX_OBJECTS = 2;

export interface RewriteDefaults {
  /** Preferred colour of an object whose colour is not given (skipped when it would clash). */
  colour: ObjectColour;
  shape: Shape;
  /** Motion of an object with no motion word at all. */
  motion: Motion;
  /** Direction of an object given only a movement verb ("a ball moving"). */
  moveDirection: Extract<Motion, "left" | "right" | "up" | "down" | "diagonal">;
  background: BackgroundColour;
  /** Direction of a pan asked for without one ("the camera pans"). */
  panDirection: Exclude<Pan, "none">;
}

export const REWRITE_DEFAULTS: Readonly<RewriteDefaults> = Object.freeze({
  colour: "red",
  shape: "circle",
  motion: "still",
  moveDirection: "right",
  background: "black",
  panDirection: "right",
});

/**
 * Start position of an object given none, by motion: [alone, first of two, second of
 * two]. Each leaves the motion room to play out inside the frame, and two objects
 * start in different columns or rows.
 */
export const DEFAULT_POSITIONS: Readonly<Record<Motion, readonly [Position, Position, Position]>> = {
  right: ["left", "top left", "bottom left"],
  left: ["right", "top right", "bottom right"],
  up: ["bottom", "bottom left", "bottom right"],
  down: ["top", "top left", "top right"],
  diagonal: ["top left", "top left", "left"],
  bouncing: ["middle", "left", "right"],
  growing: ["middle", "left", "right"],
  shrinking: ["middle", "left", "right"],
  still: ["middle", "left", "right"],
};

/** Order in which objects without a colour get one; red first because no background is red. */
export const DEFAULT_COLOUR_ORDER: readonly ObjectColour[] = [
  "red",
  "blue",
  "green",
  "yellow",
  "purple",
  "orange",
  "white",
].filter((c): c is ObjectColour => isObjectColour(c));

export interface RewriteOptions {
  defaults?: Partial<RewriteDefaults>;
  /** Give objects without a start position the DEFAULT_POSITIONS one (default true). */
  positions?: boolean;
}

export interface RewriteResult {
  /** The prompt in the world's caption style, ready for the text encoder. */
  caption: string;
  /** What the caption states; `captionScene(attributes) === caption`. */
  attributes: RewrittenScene;
  /**
   * Words (or the phrase they belong to) that did not make it into the caption, in
   * the order found, each once: words outside the lexicon, negations, attributes
   * the world cannot show ("pink", "a black ball", "a red background"), a second
   * conflicting value for an attribute already set, and the words of objects past
   * MAX_OBJECTS.
   */
  unknownWords: string[];
  /** Attributes that were defaulted, as paths: "objects[0].colour", "background", "pan". */
  filledDefaults: string[];
  /** Whether `caption` differs from the input text (trimmed); false means it is sent as typed. */
  changed: boolean;
}

export class PromptRewriteError extends Error {
  override name = "PromptRewriteError";
}

// ---------------------------------------------------------------------------
// Lexicon: phrase (space-separated, lower case) → lexeme. Longest match wins, so
// "on the left" (a position) beats "on" (a background preposition) and "to the
// left" (a direction) beats "left".

type Dir = "left" | "right" | "up" | "down";
type Lex =
  | { k: "colour"; v: string }
  | { k: "shape"; v: Shape }
  | { k: "size"; v: Size }
  | { k: "motion"; v: Motion }
  | { k: "dir"; v: Dir }
  | { k: "move" }
  | { k: "pos"; v: Position }
  | { k: "bg" }
  | { k: "bgprep" }
  | { k: "camera"; pan: boolean }
  | { k: "slow" }
  | { k: "sep"; and: boolean }
  | { k: "stop" }
  | { k: "unknown" };
type Token = Lex & { text: string };

const LEXICON = new Map<string, Lex>();
const add = (lex: Lex, ...phrases: string[]) => {
  for (const p of phrases) if (!LEXICON.has(p)) LEXICON.set(p, lex);
};

// Colour choices beyond the world's own synonyms: each variant goes to the nearest
// palette colour. Cyan, azure, teal and turquoise go to blue (the palette has no
// blue-green; the world's blue reads closer than its green); magenta, lilac,
// lavender to purple; gold to yellow (not orange: it is a yellow hue); amber and
// tangerine to orange. Pink is left unknown: it sits between red and purple and
// either guess would surprise half the users.
const COLOUR_SYNONYMS: Record<string, string> = {
  grey: "gray",
  silver: "gray",
  violet: "purple",
  magenta: "purple",
  lilac: "purple",
  lavender: "purple",
  mauve: "purple",
  plum: "purple",
  gold: "yellow",
  golden: "yellow",
  lemon: "yellow",
  navy: "blue",
  azure: "blue",
  cyan: "blue",
  cobalt: "blue",
  teal: "blue",
  turquoise: "blue",
  crimson: "red",
  scarlet: "red",
  ruby: "red",
  cherry: "red",
  lime: "green",
  emerald: "green",
  jade: "green",
  snow: "white",
  ivory: "white",
  amber: "orange",
  tangerine: "orange",
  ebony: "black",
};

function buildLexicon(): void {
  // The world's own words and synonyms first: it is the authority on vocabulary.
  for (const c of [...OBJECT_COLOUR_NAMES, ...BACKGROUND_COLOUR_NAMES])
    if (isObjectColour(c) || isBackgroundColour(c)) add({ k: "colour", v: c }, c);
  for (const m of MOTIONS) add({ k: "motion", v: m }, MOTION_PHRASES[m]);
  for (const p of POSITIONS) add({ k: "pos", v: p }, POSITION_PHRASES[p]);
  for (const [word, canon] of Object.entries(SYNONYMS)) {
    if (isObjectColour(canon) || isBackgroundColour(canon)) add({ k: "colour", v: canon }, word);
    else if (isShape(canon)) add({ k: "shape", v: canon }, word);
    else if (isMotion(canon)) add({ k: "motion", v: canon }, word);
    else if ((SIZES as readonly string[]).includes(canon)) add({ k: "size", v: canon as Size }, word);
    else if ((POSITIONS as readonly string[]).includes(canon)) add({ k: "pos", v: canon as Position }, word);
  }
  for (const [word, canon] of Object.entries(COLOUR_SYNONYMS)) add({ k: "colour", v: canon }, word);

  const shapes: Record<Shape, string[]> = {
    circle: [
      "circle",
      "circles",
      "ball",
      "balls",
      "disc",
      "disk",
      "dot",
      "dots",
      "round",
      "circular",
      "sphere",
      "orb",
    ],
    square: [
      "square",
      "squares",
      "box",
      "boxes",
      "block",
      "blocks",
      "cube",
      "cubes",
      "rectangle",
      "rectangles",
    ],
    triangle: ["triangle", "triangles", "pyramid", "pyramids", "wedge", "wedges", "triangular"],
  };
  for (const s of Object.keys(shapes) as Shape[]) if (isShape(s)) add({ k: "shape", v: s }, ...shapes[s]);

  add({ k: "size", v: "small" }, "small", "tiny", "little", "mini");
  add({ k: "size", v: "medium" }, "medium", "mid sized", "medium sized");
  add({ k: "size", v: "large" }, "large", "big", "huge", "giant", "massive");

  add(
    { k: "motion", v: "still" },
    "still",
    "stays still",
    "stay still",
    "staying still",
    "stands still",
    "standing still",
    "sits still",
    "sitting still",
    "keeps still",
    "holds still",
    "stays put",
    "not moving",
    "is not moving",
    "isnt moving",
    "doesnt move",
    "does not move",
    "no motion",
    "no movement",
    "static",
    "stationary",
    "motionless",
    "unmoving",
    "frozen",
    "idle",
    "stays",
    "stay",
    "staying",
    "sits",
    "sit",
    "sitting",
    "rests",
    "resting",
  );
  add(
    { k: "motion", v: "bouncing" },
    "bounce",
    "bounces",
    "bouncing",
    "bouncy",
    "jump",
    "jumps",
    "jumping",
    "hop",
    "hops",
    "hopping",
    "up and down",
  );
  add(
    { k: "motion", v: "growing" },
    "grow",
    "grows",
    "growing",
    "expand",
    "expands",
    "expanding",
    "inflate",
    "inflates",
    "inflating",
    "swells",
    "swelling",
    "enlarges",
    "enlarging",
    "gets bigger",
    "getting bigger",
    "gets larger",
    "getting larger",
    "becomes bigger",
    "becoming bigger",
    "grows bigger",
    "scales up",
  );
  add(
    { k: "motion", v: "shrinking" },
    "shrink",
    "shrinks",
    "shrinking",
    "contract",
    "contracts",
    "contracting",
    "deflate",
    "deflates",
    "deflating",
    "gets smaller",
    "getting smaller",
    "becomes smaller",
    "becoming smaller",
    "scales down",
  );
  add(
    { k: "motion", v: "diagonal" },
    "diagonally",
    "diagonal",
    "diagonally down to the right",
    "diagonally down right",
  );
  add(
    { k: "dir", v: "up" },
    "rise",
    "rises",
    "rising",
    "ascend",
    "ascends",
    "ascending",
    "climbs",
    "climbing",
  );
  add(
    { k: "dir", v: "down" },
    "fall",
    "falls",
    "falling",
    "drop",
    "drops",
    "dropping",
    "sink",
    "sinks",
    "sinking",
    "descend",
    "descends",
    "descending",
  );
  for (const d of ["left", "right"] as const)
    add(
      { k: "dir", v: d },
      d,
      `${d}ward`,
      `${d}wards`,
      `to the ${d}`,
      `to ${d}`,
      `towards the ${d}`,
      `toward the ${d}`,
    );
  add({ k: "dir", v: "up" }, "up", "upward", "upwards", "to the top", "bottom to top");
  add({ k: "dir", v: "down" }, "down", "downward", "downwards", "to the bottom", "top to bottom");
  add({ k: "dir", v: "right" }, "left to right");
  add({ k: "dir", v: "left" }, "right to left");
  add(
    { k: "move" },
    ...["move", "moves", "moving", "go", "goes", "going", "head", "heads", "heading"],
    ...["roll", "rolls", "rolling", "slide", "slides", "sliding", "drift", "drifts", "drifting"],
    ...["travel", "travels", "travelling", "traveling", "fly", "flies", "flying", "float", "floats"],
    ...["floating", "glide", "glides", "gliding", "run", "runs", "running", "shift", "shifts", "shifting"],
  );

  // Start positions: any of these prepositions before a grid cell's words.
  const cellWords: Record<Position, string[]> = {
    "top left": ["top left", "upper left"],
    top: ["top"],
    "top right": ["top right", "upper right"],
    left: ["left"],
    middle: ["middle", "center", "centre"],
    right: ["right"],
    "bottom left": ["bottom left", "lower left"],
    bottom: ["bottom"],
    "bottom right": ["bottom right", "lower right"],
  };
  const preps = [
    "in the",
    "at the",
    "on the",
    "in",
    "at",
    "on",
    "from the",
    "from",
    "near the",
    "starting at the",
  ];
  for (const p of POSITIONS) {
    for (const w of cellWords[p] ?? []) {
      for (const prep of preps) add({ k: "pos", v: p }, `${prep} ${w}`);
      // Bare "left"/"right" read as directions ("red ball going right"), the rest as cells.
      if (p !== "left" && p !== "right") add({ k: "pos", v: p }, w);
    }
  }

  add({ k: "bg" }, "background", "backgrounds", "backdrop", "bg");
  add({ k: "bgprep" }, "on", "over", "against", "onto", "in front of");
  add({ k: "camera", pan: false }, "camera", "cam", "view");
  add({ k: "camera", pan: true }, "pan", "pans", "panning", "panned", "camera pans", "camera pan");
  add({ k: "slow" }, "slowly", "slow", "gently", "gradually");
  add({ k: "sep", and: true }, "and");
  add(
    { k: "sep", and: false },
    ",",
    "with",
    "while",
    "plus",
    "also",
    "then",
    "as",
    "alongside",
    "beside",
    "next to",
  );
  // Silently ignored: articles, glue words, and words that only restate the noun or
  // shade of a colour the palette has one of ("a dark blue coloured ball").
  add(
    { k: "stop" },
    ...["a", "an", "the", "is", "are", "be", "being", "that", "which", "who", "it", "its", "this", "there"],
    ...["of", "in", "at", "to", "by", "from", "into", "across", "along", "around", "some", "one", "just"],
    ...["very", "quite", "colour", "color", "coloured", "colored", "shaped", "shape", "object", "thing"],
    ...["item", "frame", "screen", "scene", "side", "corner", "edge", "light", "dark", "bright", "pale"],
    ...["deep", "plain", "solid", "simple", "video", "clip", "showing", "shows", "show", "way"],
  );
  // Negation cannot be expressed in a caption; only the fixed phrases above use it.
  add({ k: "unknown" }, "not", "no", "never", "without", "dont", "doesnt", "isnt", "nor");
}
buildLexicon();
const MAX_PHRASE = Math.max(...[...LEXICON.keys()].map((p) => p.split(" ").length));

function tokenize(text: string): string[] {
  return text
    .toLowerCase()
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .replace(/['’`]/g, "")
    .replace(/[-_/]+/g, " ")
    .replace(/[,;:.!?()[\]{}"]+/g, " , ")
    .replace(/[^a-z0-9, ]+/g, " ")
    .split(/\s+/)
    .filter((t) => t !== "");
}

function lex(words: string[]): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < words.length) {
    let matched = false;
    for (let n = Math.min(MAX_PHRASE, words.length - i); n >= 1; n--) {
      const phrase = words.slice(i, i + n).join(" ");
      const l = LEXICON.get(phrase);
      if (l) {
        out.push({ ...l, text: phrase });
        i += n;
        matched = true;
        break;
      }
    }
    if (!matched) {
      out.push({ k: "unknown", text: words[i] as string });
      i++;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Parsing.

interface Draft {
  colour?: ObjectColour;
  shape?: Shape;
  size?: Size;
  motion?: Motion;
  position?: Position;
  moveVerb: boolean;
  words: string[];
}

class Parser {
  readonly unknown: string[] = [];
  readonly objects: Draft[] = [];
  background: BackgroundColour[] | undefined;
  pan: Pan | undefined;
  panAsked = false;
  private cur: Draft | undefined;

  reject(t: Token): void {
    this.unknown.push(t.text);
  }

  /** Takes background clauses out first, since their "and" ("gray and white") is no object separator. */
  takeBackgrounds(ts: Token[]): Token[] {
    const used = new Set<number>();
    const skipStops = (j: number) => {
      while (j < ts.length && ts[j]?.k === "stop") j++;
      return j;
    };
    // A run of colours, optionally joined by "and": the candidate background colours.
    const colourRun = (start: number): { end: number; idx: number[] } => {
      const idx: number[] = [];
      let j = skipStops(start);
      while (j < ts.length && ts[j]?.k === "colour") {
        idx.push(j);
        const k = skipStops(j + 1);
        const t = ts[k];
        if (t?.k === "sep" && t.and && ts[skipStops(k + 1)]?.k === "colour") j = skipStops(k + 1);
        else if (t?.k === "colour") j = k;
        else return { end: k, idx };
      }
      return { end: j, idx };
    };
    const take = (from: number, to: number, idx: number[]) => {
      for (let j = from; j < to; j++) used.add(j);
      this.setBackground(idx.map((j) => ts[j] as Token));
    };
    for (let i = 0; i < ts.length; i++) {
      if (used.has(i)) continue;
      const t = ts[i] as Token;
      if (t.k === "bgprep") {
        let run = colourRun(i + 1);
        // Without a closing "background", "on blue and a green square" is one colour, then an object.
        const first = run.idx[0];
        if (first !== undefined && run.idx.length > 1 && ts[run.end]?.k !== "bg")
          run = { end: first + 1, idx: [first] };
        const next = ts[run.end];
        if (run.idx.length === 0 || next?.k === "shape" || next?.k === "size") continue;
        take(i, next?.k === "bg" ? run.end + 1 : run.end, run.idx);
      } else if (t.k === "colour") {
        const run = colourRun(i);
        if (ts[run.end]?.k === "bg") take(i, run.end + 1, run.idx);
      } else if (t.k === "bg") {
        // "background: blue" — the colon tokenises as a comma.
        const after = ts[i + 1];
        const run = colourRun(after?.k === "sep" && !after.and ? i + 2 : i + 1);
        const next = ts[run.end];
        if (run.idx.length > 0 && next?.k !== "shape" && next?.k !== "size") take(i, run.end, run.idx);
        else {
          // "background" with no colour says nothing the default does not.
          used.add(i);
        }
      }
    }
    return ts.filter((_, i) => !used.has(i));
  }

  private setBackground(colours: Token[]): void {
    const ok: BackgroundColour[] = [];
    for (const c of colours) {
      if (c.k === "colour" && isBackgroundColour(c.v) && ok.length < 2 && this.background === undefined)
        ok.push(c.v);
      else this.reject(c);
    }
    if (ok.length > 0) this.background = ok;
  }

  parse(ts: Token[]): void {
    const segments: Token[][] = [[]];
    for (const t of this.takeBackgrounds(ts)) {
      if (t.k === "sep") segments.push([]);
      else segments[segments.length - 1]?.push(t);
    }
    for (const seg of segments) this.segment(seg);
    // The words of objects past the limit are reported rather than captioned.
    for (const o of this.objects.splice(MAX_OBJECTS)) this.unknown.push(...o.words);
  }

  private segment(seg: Token[]): void {
    const c = seg.findIndex((t) => t.k === "camera");
    if (c < 0) {
      this.objectTokens(seg);
      return;
    }
    // The pan's words are the run around the camera word ("a slow left pan", "the camera
    // pans slowly to the left"); the rest of the segment still describes objects.
    const panWord = (t: Token | undefined) =>
      t !== undefined &&
      (["stop", "slow", "camera", "move"].includes(t.k) ||
        t.k === "dir" ||
        (t.k === "motion" && ["still", "left", "right", "up", "down"].includes(t.v)));
    let end = c + 1;
    while (end < seg.length && panWord(seg[end])) end++;
    // Words before the camera word are the pan's only when the words after it name no
    // direction: "a ball going right camera pans left" keeps "right" for the ball.
    const saysWhere = seg.slice(c + 1, end).some((t) => t.k === "dir" || t.k === "motion");
    let start = c;
    while (start > 0 && panWord(seg[start - 1]) && seg[start - 1]?.k !== "move") {
      if (saysWhere && seg[start - 1]?.k !== "stop" && seg[start - 1]?.k !== "slow") break;
      start--;
    }
    const rest = [...seg.slice(0, start), ...seg.slice(end)];
    this.objectTokens(rest.filter((t) => t.k !== "slow"));
    this.cameraTokens([...seg.slice(start, end), ...rest.filter((t) => t.k === "slow")]);
  }

  private cameraTokens(ts: Token[]): void {
    let dir: Pan | undefined;
    const askedPan = ts.some((t) => t.k === "camera" && t.pan);
    for (const t of ts) {
      if (t.k === "stop" || t.k === "slow" || t.k === "move" || t.k === "camera") continue;
      let want: Pan | undefined;
      // "moves to the left" lexes as an object motion; after a camera word it is the pan's.
      if ((t.k === "dir" || t.k === "motion") && (t.v === "left" || t.v === "right")) want = t.v;
      else if (t.k === "motion" && t.v === "still") want = "none";
      if (want === undefined || (dir !== undefined && dir !== want) || this.pan !== undefined) this.reject(t);
      else dir = want;
    }
    if (dir !== undefined) this.pan = dir;
    else if (askedPan && this.pan === undefined) this.panAsked = true;
    else if (!askedPan && this.pan === undefined) for (const t of ts) if (t.k === "camera") this.reject(t);
  }

  private newObject(): Draft {
    const o: Draft = { moveVerb: false, words: [] };
    this.objects.push(o);
    this.cur = o;
    return o;
  }

  /** Colour and size sit in a slot each; a second, different value means another object. */
  private modifierFits(o: Draft | undefined, t: Token): boolean {
    if (!o) return false;
    if (t.k === "colour") return o.colour === undefined || o.colour === t.v;
    if (t.k === "size") return o.size === undefined || o.size === t.v;
    return true;
  }

  private applyModifier(o: Draft, t: Token): void {
    o.words.push(t.text);
    if (t.k === "colour") {
      if (isObjectColour(t.v)) o.colour = t.v;
      else this.reject(t);
    } else if (t.k === "size") o.size = t.v;
  }

  private objectTokens(ts: Token[]): void {
    let pending: Token[] = [];
    // Modifiers not followed by a noun describe the object already in hand ("a square that grows, purple").
    const flush = () => {
      for (const m of pending) {
        const o = this.modifierFits(this.cur, m) ? (this.cur as Draft) : this.newObject();
        this.applyModifier(o, m);
      }
      pending = [];
    };
    for (const t of ts) {
      switch (t.k) {
        case "colour":
        case "size":
          pending.push(t);
          break;
        case "shape": {
          const cur = this.cur;
          const fresh = !cur || cur.shape !== undefined || !pending.every((m) => this.modifierFits(cur, m));
          const o = fresh ? this.newObject() : cur;
          for (const m of pending) this.applyModifier(o, m);
          pending = [];
          o.shape = t.v;
          o.words.push(t.text);
          break;
        }
        case "motion":
        case "dir":
        case "move":
        case "pos": {
          flush();
          const o = this.cur ?? this.newObject();
          o.words.push(t.text);
          if (t.k === "move") o.moveVerb = true;
          else if (t.k === "pos") {
            if (o.position === undefined || o.position === t.v) o.position = t.v;
            else this.reject(t);
          } else if (!this.applyMotion(o, t.v)) this.reject(t);
          break;
        }
        case "stop":
          break;
        default:
          // bg words left over, "slow" outside a pan, stray prepositions, unknown words.
          if (t.k !== "bgprep") this.reject(t);
      }
    }
    flush();
  }

  /** Directions combine where the world has a motion for the pair: down + right is its one diagonal. */
  private applyMotion(o: Draft, m: Motion): boolean {
    const prev = o.motion;
    if (prev === undefined || prev === m) {
      o.motion = m;
      return true;
    }
    const pair = new Set([prev, m]);
    const diagonal = pair.has("diagonal")
      ? pair.has("down") || pair.has("right")
      : pair.has("down") && pair.has("right");
    if (diagonal) o.motion = "diagonal";
    return diagonal;
  }
}

/**
 * Rewrites free text into the world's caption style. Deterministic: a lexicon
 * lookup and fixed rules, no model, no randomness.
 */
export function rewritePrompt(text: string, opts: RewriteOptions = {}): RewriteResult {
  const d: RewriteDefaults = { ...REWRITE_DEFAULTS, ...opts.defaults };
  const words = tokenize(text);
  if (words.every((w) => w === ",")) throw new PromptRewriteError("the prompt is blank: nothing to rewrite");

  const p = new Parser();
  p.parse(lex(words));

  const filledDefaults: string[] = [];
  const drafts = p.objects.length > 0 ? p.objects : [{ moveVerb: false, words: [] } satisfies Draft];
  const bgNames: BackgroundColour[] = p.background ?? [d.background];

  const taken = new Set<ObjectColour>(drafts.flatMap((o) => (o.colour ? [o.colour] : [])));
  const colourOrder = [d.colour, ...DEFAULT_COLOUR_ORDER.filter((c) => c !== d.colour)];
  const objects: ObjectAttributes[] = drafts.map((o, i) => {
    const at = `objects[${i}]`;
    let colour = o.colour;
    if (colour === undefined) {
      colour =
        colourOrder.find((c) => !taken.has(c) && !(bgNames as string[]).includes(c)) ??
        colourOrder.find((c) => !taken.has(c)) ??
        d.colour;
      taken.add(colour);
      filledDefaults.push(`${at}.colour`);
    }
    const shape = o.shape ?? d.shape;
    if (o.shape === undefined) filledDefaults.push(`${at}.shape`);
    let motion = o.motion;
    if (motion === undefined) {
      motion = o.moveVerb ? d.moveDirection : d.motion;
      filledDefaults.push(`${at}.motion`);
    }
    const attrs: ObjectAttributes = { colour, shape, motion };
    if (o.size !== undefined && o.size !== "medium") attrs.size = o.size;
    if (o.position !== undefined) attrs.position = o.position;
    else if (opts.positions !== false) {
      const slot = drafts.length === 1 ? 0 : i + 1;
      attrs.position = DEFAULT_POSITIONS[motion][slot] as Position;
      filledDefaults.push(`${at}.position`);
    }
    return attrs;
  });

  if (!p.background) filledDefaults.push("background");
  let pan: Pan = p.pan ?? "none";
  if (p.pan === undefined && p.panAsked) {
    pan = d.panDirection;
    filledDefaults.push("pan");
  }

  const [left, right] = bgNames as [BackgroundColour, BackgroundColour?];
  const attributes: SceneAttributes = {
    background: right === undefined ? { kind: "plain", colour: left } : { kind: "split", left, right },
    objects,
    pan,
  };
  const caption = captionScene(attributes);
  return {
    caption,
    attributes,
    unknownWords: [...new Set(p.unknown)],
    filledDefaults,
    changed: caption !== text.trim(),
  };
}

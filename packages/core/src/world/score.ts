// A scorer with no learned model: it reads frames and recovers the background,
// each object's colour, shape and motion, and the camera pan, by colour geometry
// alone. Being hand-built, it cannot share a generator's blind spots, and it is
// checked against the world's own ground truth (see score.test.ts).

import type { ObjectAttributes, SceneAttributes } from "../caption/caption.js";
import {
  BACKGROUND_COLOUR_NAMES,
  BACKGROUND_COLOURS,
  type BackgroundColour,
  type Motion,
  OBJECT_COLOUR_NAMES,
  OBJECT_COLOURS,
  type ObjectColour,
  type Pan,
  type Rgb,
  type Shape,
} from "../caption/vocabulary.js";
import type { VideoFrames } from "../video/frames.js";

export interface DetectedObject {
  colour: ObjectColour;
  shape: Shape;
  /** "other" for trajectories outside the vocabulary (e.g. up-left diagonals). */
  motion: Motion | "other";
  /** Mean pixel area over the frames it is seen in. */
  area: number;
  /** Median fill ratio of its extent (triangle 0.5, circle 0.79, square 1). */
  fill: number;
  /** Median skewness of its vertical mass profile (upright triangle -0.57, circle and square 0). */
  skew: number;
  /** Pan-compensated centroid per frame; null where not seen. */
  track: Array<[number, number] | null>;
  areas: number[];
  /** Fraction of frames in which it is one blob whose area changes smoothly. */
  consistency: number;
}

export interface DetectedScene {
  background: SceneAttributes["background"];
  objects: DetectedObject[];
  pan: Pan;
  /** Screen shift of the background per frame (pixels; positive = content moves right). */
  panOffsets: number[];
  /** Fraction of frames whose set of visible objects equals the clip's. */
  consistency: number;
}

const BG_NEAR = 28;
const MIN_ALPHA = 0.2;

function nearest<K extends string>(p: Rgb, table: Record<K, Rgb>, names: readonly K[]): [K, number] {
  let best = names[0] as K;
  let bd = Number.POSITIVE_INFINITY;
  for (const k of names) {
    const c = table[k];
    const d = Math.hypot(p[0] - c[0], p[1] - c[1], p[2] - c[2]);
    if (d < bd) {
      bd = d;
      best = k;
    }
  }
  return [best, bd];
}

/**
 * Background from the frame borders, where objects rarely are: each border pixel
 * votes for its nearest background colour; a second colour with a large share
 * means a split background, and its mean x says which half it is.
 */
function estimateBackground(v: VideoFrames): { attrs: SceneAttributes["background"]; tones: Rgb[] } {
  const { width: w, height: h } = v;
  const votes = new Map<BackgroundColour, { n: number; sx: number; sum: [number, number, number] }>();
  let total = 0;
  const visit = (f: Uint8Array, x: number, y: number) => {
    const i = (y * w + x) * 3;
    const p: Rgb = [f[i] as number, f[i + 1] as number, f[i + 2] as number];
    total++;
    const [k, d] = nearest(p, BACKGROUND_COLOURS, BACKGROUND_COLOUR_NAMES);
    if (d > 70) return;
    const e = votes.get(k) ?? { n: 0, sx: 0, sum: [0, 0, 0] };
    e.n++;
    e.sx += x;
    e.sum[0] += p[0];
    e.sum[1] += p[1];
    e.sum[2] += p[2];
    votes.set(k, e);
  };
  for (const f of v.frames) {
    for (let x = 0; x < w; x++) {
      visit(f, x, 0);
      visit(f, x, h - 1);
    }
    for (let y = 1; y < h - 1; y++) {
      visit(f, 0, y);
      visit(f, w - 1, y);
    }
  }
  const ranked = [...votes.entries()].sort((a, b) => b[1].n - a[1].n);
  const tone = (e: { n: number; sum: [number, number, number] }): Rgb => [
    e.sum[0] / e.n,
    e.sum[1] / e.n,
    e.sum[2] / e.n,
  ];
  const first = ranked[0];
  if (!first) return { attrs: { kind: "plain", colour: "black" }, tones: [BACKGROUND_COLOURS.black] };
  const second = ranked[1];
  if (second && second[1].n >= 0.15 * total) {
    const [l, r] = first[1].sx / first[1].n <= second[1].sx / second[1].n ? [first, second] : [second, first];
    return { attrs: { kind: "split", left: l[0], right: r[0] }, tones: [tone(l[1]), tone(r[1])] };
  }
  return { attrs: { kind: "plain", colour: first[0] }, tones: [tone(first[1])] };
}

interface Labelled {
  /** -1 background, else index into OBJECT_COLOUR_NAMES. */
  label: Int8Array;
  alpha: Float32Array;
  /** Position along left→right tone of background pixels (split backgrounds), else 0. */
  tone: Float32Array;
}

/**
 * Per pixel: background, or a blend of one object colour over a background tone.
 * Unmixing (rather than nearest colour) keeps anti-aliased and blurred edges with
 * their object instead of turning them into rings of some third colour.
 */
function labelFrame(f: Uint8Array, w: number, h: number, tones: Rgb[]): Labelled {
  const n = w * h;
  const label = new Int8Array(n).fill(-1);
  const alpha = new Float32Array(n);
  const tone = new Float32Array(n);
  const a = tones[0] as Rgb;
  const b = (tones[1] ?? tones[0]) as Rgb;
  const d0 = b[0] - a[0];
  const d1 = b[1] - a[1];
  const d2 = b[2] - a[2];
  const dd = d0 * d0 + d1 * d1 + d2 * d2;
  const pairs: Array<{ k: number; bg: Rgb; v: Rgb; vv: number }> = [];
  OBJECT_COLOUR_NAMES.forEach((name, k) => {
    const c = OBJECT_COLOURS[name];
    for (const bg of tones) {
      const v: Rgb = [c[0] - bg[0], c[1] - bg[1], c[2] - bg[2]];
      const vv = v[0] * v[0] + v[1] * v[1] + v[2] * v[2];
      if (vv > 40 * 40) pairs.push({ k, bg, v, vv });
    }
  });
  for (let i = 0; i < n; i++) {
    const r = f[i * 3] as number;
    const g = f[i * 3 + 1] as number;
    const bl = f[i * 3 + 2] as number;
    let t = dd === 0 ? 0 : ((r - a[0]) * d0 + (g - a[1]) * d1 + (bl - a[2]) * d2) / dd;
    t = Math.min(1, Math.max(0, t));
    tone[i] = t;
    const rb = Math.hypot(r - a[0] - t * d0, g - a[1] - t * d1, bl - a[2] - t * d2);
    if (rb < BG_NEAR) continue;
    let best = -1;
    let bestRes = Number.POSITIVE_INFINITY;
    let bestAlpha = 0;
    for (const p of pairs) {
      const q0 = r - p.bg[0];
      const q1 = g - p.bg[1];
      const q2 = bl - p.bg[2];
      let al = (q0 * p.v[0] + q1 * p.v[1] + q2 * p.v[2]) / p.vv;
      al = Math.min(1, Math.max(0, al));
      const e0 = q0 - al * p.v[0];
      const e1 = q1 - al * p.v[1];
      const e2 = q2 - al * p.v[2];
      const res = e0 * e0 + e1 * e1 + e2 * e2;
      if (res < bestRes) {
        bestRes = res;
        best = p.k;
        bestAlpha = al;
      }
    }
    if (best >= 0 && bestAlpha >= MIN_ALPHA) {
      label[i] = best;
      alpha[i] = bestAlpha;
    }
  }
  return { label, alpha, tone };
}

/** Drops 8-connected blobs of one label lighter than `minMass` (stray edge and noise pixels). */
function dropSpecks(lab: Labelled, w: number, h: number, minMass: number): Map<number, number> {
  const seen = new Uint8Array(w * h);
  const blobs = new Map<number, number>();
  const stack: number[] = [];
  for (let s = 0; s < w * h; s++) {
    const k = lab.label[s] as number;
    if (k < 0 || seen[s]) continue;
    const members: number[] = [];
    let mass = 0;
    stack.push(s);
    seen[s] = 1;
    while (stack.length) {
      const i = stack.pop() as number;
      members.push(i);
      mass += lab.alpha[i] as number;
      const x = i % w;
      const y = (i - x) / w;
      for (let dy = -1; dy <= 1; dy++) {
        const yy = y + dy;
        if (yy < 0 || yy >= h) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const xx = x + dx;
          if (xx < 0 || xx >= w) continue;
          const j = yy * w + xx;
          if (!seen[j] && lab.label[j] === k) {
            seen[j] = 1;
            stack.push(j);
          }
        }
      }
    }
    if (mass < minMass) for (const i of members) lab.label[i] = -1;
    else blobs.set(k, (blobs.get(k) ?? 0) + 1);
  }
  return blobs;
}

/** Where a split background's seam is in a frame: median over rows of the summed "leftness" near the crossing. */
function seamOf(lab: Labelled, w: number, h: number): number | null {
  const est: number[] = [];
  const W = 4;
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let x = 1; x < w; x++) {
      const i = row + x;
      if ((lab.tone[i - 1] as number) < 0.5 && (lab.tone[i] as number) >= 0.5) {
        const x0 = x - W;
        const x1 = x + W;
        if (x0 < 0 || x1 > w) break;
        let ok = true;
        let s = 0;
        for (let xx = x0; xx < x1; xx++) {
          if ((lab.label[row + xx] as number) >= 0) ok = false;
          s += 1 - (lab.tone[row + xx] as number);
        }
        if (ok) est.push(x0 + s);
        break;
      }
    }
  }
  if (est.length < h / 8) return null;
  est.sort((p, q) => p - q);
  return est[est.length >> 1] as number;
}

interface FrameStats {
  mass: number;
  cx: number;
  cy: number;
  maxRow: number;
  maxCol: number;
  skew: number;
  blobs: number;
}

function median(xs: number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/**
 * A triangle is told by the skew of its row profile, not by its fill: a symmetric
 * blur adds nothing to the third central moment, while it rounds off the apex and
 * base that the fill ratio depends on. Fill then separates circles from squares,
 * whose straight sides a blur leaves alone.
 */
function classifyShape(fill: number, skew: number): Shape {
  if (skew < -0.3) return "triangle";
  if (fill < 0.9) return "circle";
  return "square";
}

/**
 * Motion from the pan-compensated centroid and the area over time. Order matters:
 * size change first (a growing triangle's centroid barely moves), then vertical
 * reversals (bounces), then the net displacement's direction.
 */
function classifyMotion(
  track: Array<[number, number] | null>,
  areas: number[],
  unit: number,
): Motion | "other" {
  const pts = track
    .map((p, t) => (p ? { t, x: p[0], y: p[1], a: areas[t] as number } : null))
    .filter((p) => p !== null);
  if (pts.length < 3) return "other";
  const k = Math.min(3, Math.floor(pts.length / 3));
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  const a0 = mean(pts.slice(0, k).map((p) => p.a));
  const a1 = mean(pts.slice(-k).map((p) => p.a));
  const first = pts[0] as { x: number; y: number };
  const last = pts[pts.length - 1] as { x: number; y: number };
  const dx = last.x - first.x;
  const dy = last.y - first.y;
  const dist = Math.hypot(dx, dy);
  if (a1 / a0 >= 1.8 && dist < 10 * unit) return "growing";
  if (a0 / a1 >= 1.8 && dist < 10 * unit) return "shrinking";
  // Vertical direction reversals with hysteresis, so noise cannot fake a bounce.
  const hyst = 4 * unit;
  let dir = 0;
  let hi = first.y;
  let lo = first.y;
  let ext = first.y;
  let reversals = 0;
  for (const p of pts) {
    if (dir === 0) {
      hi = Math.max(hi, p.y);
      lo = Math.min(lo, p.y);
      if (p.y > lo + hyst) [dir, ext] = [1, p.y];
      else if (p.y < hi - hyst) [dir, ext] = [-1, p.y];
    } else if (dir === 1) {
      if (p.y > ext) ext = p.y;
      else if (p.y < ext - hyst) [dir, ext, reversals] = [-1, p.y, reversals + 1];
    } else if (p.y < ext) ext = p.y;
    else if (p.y > ext + hyst) [dir, ext, reversals] = [1, p.y, reversals + 1];
  }
  const yr = Math.max(...pts.map((p) => p.y)) - Math.min(...pts.map((p) => p.y));
  const xr = Math.max(...pts.map((p) => p.x)) - Math.min(...pts.map((p) => p.x));
  if (reversals >= 1 && yr >= 12 * unit && xr < 0.5 * yr) return "bouncing";
  if (dist < 8 * unit) return "still";
  if (Math.abs(dy) < 0.5 * Math.abs(dx)) return dx < 0 ? "left" : "right";
  if (Math.abs(dx) < 0.5 * Math.abs(dy)) return dy < 0 ? "up" : "down";
  return dx > 0 && dy > 0 ? "diagonal" : "other";
}

/** Everything the scorer reads from a clip, before comparing with a prompt. */
export function analyzeClip(video: VideoFrames): DetectedScene {
  const { width: w, height: h } = video;
  const T = video.frames.length;
  const unit = Math.min(w, h) / 128;
  const bg = estimateBackground(video);
  const stats: Array<Map<number, FrameStats>> = [];
  const seams: Array<number | null> = [];
  for (const f of video.frames) {
    const lab = labelFrame(f, w, h, bg.tones);
    const blobs = dropSpecks(lab, w, h, 6 * unit * unit);
    seams.push(bg.attrs.kind === "split" ? seamOf(lab, w, h) : null);
    const per = new Map<number, FrameStats>();
    const rows = new Map<number, Float64Array>();
    const cols = new Map<number, Float64Array>();
    for (let i = 0; i < w * h; i++) {
      const k = lab.label[i] as number;
      if (k < 0) continue;
      const al = lab.alpha[i] as number;
      const x = i % w;
      const y = (i - x) / w;
      let s = per.get(k);
      if (!s) {
        s = { mass: 0, cx: 0, cy: 0, maxRow: 0, maxCol: 0, skew: 0, blobs: blobs.get(k) ?? 0 };
        per.set(k, s);
        rows.set(k, new Float64Array(h));
        cols.set(k, new Float64Array(w));
      }
      s.mass += al;
      s.cx += al * (x + 0.5);
      s.cy += al * (y + 0.5);
      const rk = rows.get(k) as Float64Array;
      rk[y] = (rk[y] as number) + al;
      const ck = cols.get(k) as Float64Array;
      ck[x] = (ck[x] as number) + al;
    }
    for (const [k, s] of per) {
      s.cx /= s.mass;
      s.cy /= s.mass;
      s.maxRow = Math.max(...(rows.get(k) as Float64Array));
      s.maxCol = Math.max(...(cols.get(k) as Float64Array));
      let m2 = 0;
      let m3 = 0;
      (rows.get(k) as Float64Array).forEach((a, y) => {
        const d = y + 0.5 - s.cy;
        m2 += a * d * d;
        m3 += a * d * d * d;
      });
      m2 /= s.mass;
      m3 /= s.mass;
      s.skew = m2 > 0 ? m3 / m2 ** 1.5 : 0;
    }
    stats.push(per);
  }

  // Pan: a straight line through the seam's shift (the world pans at constant speed).
  let slope = 0;
  const s0 = seams.find((s) => s !== null);
  if (s0 !== undefined && s0 !== null) {
    const t0 = seams.indexOf(s0);
    let num = 0;
    let den = 0;
    seams.forEach((s, t) => {
      if (s === null) return;
      num += (t - t0) * (s - s0);
      den += (t - t0) * (t - t0);
    });
    slope = den > 0 ? num / den : 0;
  }
  const panOffsets = Array.from({ length: T }, (_, t) => slope * t);
  const panTotal = slope * (T - 1);
  const pan: Pan = Math.abs(panTotal) < 6 * unit ? "none" : panTotal > 0 ? "left" : "right";

  const minMass = 20 * unit * unit;
  const objects: DetectedObject[] = [];
  const present = new Set<number>();
  for (let k = 0; k < OBJECT_COLOUR_NAMES.length; k++) {
    const seen = stats.filter((m) => (m.get(k)?.mass ?? 0) >= minMass).length;
    if (seen < 0.5 * T) continue;
    present.add(k);
    const track: Array<[number, number] | null> = [];
    const areas: number[] = [];
    const fills: number[] = [];
    const skews: number[] = [];
    let maxMass = 0;
    for (const m of stats) maxMass = Math.max(maxMass, m.get(k)?.mass ?? 0);
    let steady = 0;
    let prev = 0;
    stats.forEach((m, t) => {
      const s = m.get(k);
      if (!s || s.mass < minMass) {
        track.push(null);
        areas.push(0);
        prev = 0;
        return;
      }
      track.push([s.cx - (panOffsets[t] as number), s.cy]);
      areas.push(s.mass);
      if (s.mass >= 0.5 * maxMass) {
        fills.push(s.mass / (s.maxRow * s.maxCol));
        skews.push(s.skew);
      }
      const ratio = prev > 0 ? s.mass / prev : 1;
      if (s.blobs === 1 && ratio > 0.7 && ratio < 1.43) steady++;
      prev = s.mass;
    });
    const fill = median(fills);
    const skew = median(skews);
    const seenAreas = areas.filter((a) => a > 0);
    objects.push({
      colour: OBJECT_COLOUR_NAMES[k] as ObjectColour,
      shape: classifyShape(fill, skew),
      motion: classifyMotion(track, areas, unit),
      area: seenAreas.reduce((s, a) => s + a, 0) / seenAreas.length,
      fill,
      skew,
      track,
      areas,
      consistency: steady / T,
    });
  }
  let stable = 0;
  for (const m of stats) {
    const here = new Set([...m.entries()].filter(([, s]) => s.mass >= minMass).map(([k]) => k));
    if (here.size === present.size && [...here].every((k) => present.has(k))) stable++;
  }
  objects.sort((a, b) => b.area - a.area);
  return { background: bg.attrs, objects, pan, panOffsets, consistency: stable / T };
}

export interface ClipScore {
  /** 1/0 for background and camera; fraction of expected objects right for the others. */
  perAttribute: { background: number; colour: number; shape: number; motion: number; camera: number };
  /** Every attribute right and no extra objects. */
  correct: boolean;
  details: {
    detected: DetectedScene;
    /** For each expected object, the detected one it was matched with (index), or null. */
    matches: Array<number | null>;
    extraObjects: number;
    /** Mean of the scene's and matched objects' temporal consistency, in [0, 1]. */
    consistency: number;
  };
}

/** Whether two backgrounds are the same plain colour, or the same two colours in the same order. */
export function sameBackground(a: SceneAttributes["background"], b: SceneAttributes["background"]): boolean {
  if (a.kind === "plain" && b.kind === "plain") return a.colour === b.colour;
  if (a.kind === "split" && b.kind === "split") return a.left === b.left && a.right === b.right;
  return false;
}

function agreement(e: ObjectAttributes, d: DetectedObject): number {
  // Colour weighs most: it is how a prompt names an object.
  return (e.colour === d.colour ? 1.5 : 0) + (e.shape === d.shape ? 1 : 0) + (e.motion === d.motion ? 1 : 0);
}

/** Scores a clip against the attributes its prompt asked for (parseCaption(prompt) or sceneAttributes(scene)). */
export function scoreClip(video: VideoFrames, expected: SceneAttributes): ClipScore {
  const det = analyzeClip(video);
  const E = expected.objects;
  const D = det.objects;
  // At most two objects on each side, so trying every assignment is cheap and exact.
  let best: Array<number | null> = E.map(() => null);
  let bestScore = -1;
  const assign = (i: number, used: Set<number>, cur: Array<number | null>, score: number) => {
    if (i === E.length) {
      if (score > bestScore) {
        bestScore = score;
        best = [...cur];
      }
      return;
    }
    assign(i + 1, used, [...cur, null], score);
    for (let j = 0; j < D.length; j++) {
      if (used.has(j)) continue;
      used.add(j);
      assign(
        i + 1,
        used,
        [...cur, j],
        score + agreement(E[i] as ObjectAttributes, D[j] as DetectedObject) + 0.01,
      );
      used.delete(j);
    }
  };
  assign(0, new Set(), [], 0);
  let colour = 0;
  let shape = 0;
  let motion = 0;
  let cons = det.consistency;
  best.forEach((j, i) => {
    if (j === null) return;
    const e = E[i] as ObjectAttributes;
    const d = D[j] as DetectedObject;
    colour += e.colour === d.colour ? 1 : 0;
    shape += e.shape === d.shape ? 1 : 0;
    motion += e.motion === d.motion ? 1 : 0;
    cons += d.consistency;
  });
  const matched = best.filter((j) => j !== null).length;
  const n = Math.max(1, E.length);
  const perAttribute = {
    background: sameBackground(expected.background, det.background) ? 1 : 0,
    colour: colour / n,
    shape: shape / n,
    motion: motion / n,
    camera: expected.pan === det.pan ? 1 : 0,
  };
  const extraObjects = D.length - matched;
  const correct = Object.values(perAttribute).every((v) => v === 1) && extraObjects === 0;
  return {
    perAttribute,
    correct,
    details: { detected: det, matches: best, extraObjects, consistency: cons / (1 + matched) },
  };
}

export interface PromptResult {
  score: ClipScore;
  /** Whether any object of the prompt is a held-out (colour, shape, motion) triple. */
  heldOut: boolean;
}

export interface AttributeAccuracy {
  n: number;
  background: number;
  colour: number;
  shape: number;
  motion: number;
  camera: number;
  /** Mean of the five attribute accuracies. */
  overall: number;
  /** Fraction of clips with every attribute right. */
  clips: number;
  consistency: number;
}

function accuracy(rs: PromptResult[]): AttributeAccuracy {
  const n = rs.length;
  const m = (f: (r: PromptResult) => number) => (n === 0 ? Number.NaN : rs.reduce((s, r) => s + f(r), 0) / n);
  const a = {
    n,
    background: m((r) => r.score.perAttribute.background),
    colour: m((r) => r.score.perAttribute.colour),
    shape: m((r) => r.score.perAttribute.shape),
    motion: m((r) => r.score.perAttribute.motion),
    camera: m((r) => r.score.perAttribute.camera),
    overall: 0,
    clips: m((r) => (r.score.correct ? 1 : 0)),
    consistency: m((r) => r.score.details.consistency),
  };
  a.overall = (a.background + a.colour + a.shape + a.motion + a.camera) / 5;
  return a;
}

/** Aggregates clip scores: all prompts, and seen vs held-out combinations apart. */
export function scorePrompts(results: PromptResult[]): {
  all: AttributeAccuracy;
  seen: AttributeAccuracy;
  heldOut: AttributeAccuracy;
} {
  return {
    all: accuracy(results),
    seen: accuracy(results.filter((r) => !r.heldOut)),
    heldOut: accuracy(results.filter((r) => r.heldOut)),
  };
}

/** Nearest vocabulary names for an RGB value; handy when inspecting generated clips. */
export function nameColour(p: Rgb): { object: ObjectColour; background: BackgroundColour } {
  return {
    object: nearest(p, OBJECT_COLOURS, OBJECT_COLOUR_NAMES)[0],
    background: nearest(p, BACKGROUND_COLOURS, BACKGROUND_COLOUR_NAMES)[0],
  };
}

// Deterministic renderer: a scene's pixels depend on nothing but the scene JSON.
// Edges are anti-aliased by 4×4 supersampling so the training data has no
// staircase the VAE would spend capacity on.

import { WORLD_FPS } from "../caption/vocabulary.js";
import type { VideoFrames } from "../video/frames.js";
import { backgroundRgb, objectRgb, objectStateAt, panOffset, type Scene, shapeBox } from "./scene.js";

const SS = 4;

function coverage(shape: string, px: number, py: number, x: number, y: number, r: number): number {
  let hit = 0;
  for (let sy = 0; sy < SS; sy++) {
    const qy = py + (sy + 0.5) / SS - y;
    for (let sx = 0; sx < SS; sx++) {
      const qx = px + (sx + 0.5) / SS - x;
      if (shape === "circle") {
        if (qx * qx + qy * qy <= r * r) hit++;
      } else if (shape === "square") {
        if (Math.abs(qx) <= r && Math.abs(qy) <= r) hit++;
      } else {
        // Upright triangle: apex 4r/3 above the centroid, base 2r/3 below, base width 2r.
        const fromApex = qy + (4 * r) / 3;
        if (fromApex >= 0 && fromApex <= 2 * r && Math.abs(qx) <= fromApex / 2) hit++;
      }
    }
  }
  return hit / (SS * SS);
}

export function renderFrame(scene: Scene, t: number): Uint8Array {
  const n = scene.size;
  const buf = new Float32Array(n * n * 3);
  const bg = scene.background;
  if (bg.kind === "plain") {
    const c = backgroundRgb(bg.colour);
    for (let i = 0; i < n * n; i++) {
      buf[i * 3] = c[0];
      buf[i * 3 + 1] = c[1];
      buf[i * 3 + 2] = c[2];
    }
  } else {
    const a = backgroundRgb(bg.left);
    const b = backgroundRgb(bg.right);
    // The seam moves with the pan; its pixel coverage is exact, since it is a vertical line.
    const seam = bg.boundary + panOffset(scene, t);
    for (let x = 0; x < n; x++) {
      const w = Math.min(1, Math.max(0, seam - x));
      const r = a[0] * w + b[0] * (1 - w);
      const g = a[1] * w + b[1] * (1 - w);
      const bl = a[2] * w + b[2] * (1 - w);
      for (let y = 0; y < n; y++) {
        const i = (y * n + x) * 3;
        buf[i] = r;
        buf[i + 1] = g;
        buf[i + 2] = bl;
      }
    }
  }
  for (const o of scene.objects) {
    const s = objectStateAt(scene, o, t);
    const r = o.radius * s.scale;
    const box = shapeBox(o.shape, s.x, s.y, r);
    const c = objectRgb(o.colour);
    const x0 = Math.max(0, Math.floor(box[0]));
    const y0 = Math.max(0, Math.floor(box[1]));
    const x1 = Math.min(n - 1, Math.ceil(box[2]));
    const y1 = Math.min(n - 1, Math.ceil(box[3]));
    for (let py = y0; py <= y1; py++) {
      for (let px = x0; px <= x1; px++) {
        const a = coverage(o.shape, px, py, s.x, s.y, r);
        if (a === 0) continue;
        const i = (py * n + px) * 3;
        buf[i] = (buf[i] as number) * (1 - a) + c[0] * a;
        buf[i + 1] = (buf[i + 1] as number) * (1 - a) + c[1] * a;
        buf[i + 2] = (buf[i + 2] as number) * (1 - a) + c[2] * a;
      }
    }
  }
  const out = new Uint8Array(n * n * 3);
  for (let i = 0; i < out.length; i++) out[i] = Math.round(buf[i] as number);
  return out;
}

/** Renders all frames of a scene (17 × 128×128 RGB8 at 8 fps for world scenes). */
export function renderClip(scene: Scene): VideoFrames {
  const frames: Uint8Array[] = [];
  for (let t = 0; t < scene.frames; t++) frames.push(renderFrame(scene, t));
  return { width: scene.size, height: scene.size, frames, fps: WORLD_FPS };
}

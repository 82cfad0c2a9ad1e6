// The Wan2.2 TI2V trait of the one Wan pipeline (wan.ts): what a model whose
// model_index.json sets `expand_timesteps` (Wan-AI/Wan2.2-TI2V-5B-Diffusers) changes.
//
// - Text-to-video is plain text-to-video: every token has the step's timestep, which
//   is diffusers' per-token timestep with an all-ones mask.
// - Known latent frames (the image of image-to-video, the tail of a clip to extend)
//   are held at their clean encoded value k before every transformer call — not the
//   noised (1 − σ)·k + σ·ε of the rule for other models — and the tokens of those
//   frames get timestep 0: diffusers' WanImageToVideoPipeline with expand_timesteps
//   (latent_model_input = (1 − mask)·condition + mask·latents, timestep = mask·t). The
//   scheduler's update is elementwise, so holding k in the sample between steps
//   leaves every other frame exactly as diffusers computes it, and the final latents
//   hold k, as diffusers' last blend does.
// - Defaults: 1280×704, 121 frames, 24 fps (Wan2.2's TI2V-5B settings).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { StepTime } from "./guided-velocity.js";
import type { GenerationDefaults } from "./options.js";

/** TI2V-5B's generation size and rate (Wan2.2's ti2v-5B config: 1280×704, 121 frames at 24 fps). */
export const TI2V_DEFAULTS: Partial<GenerationDefaults> = { width: 1280, height: 704, frames: 121, fps: 24 };

/** Whether a diffusers folder's model_index.json asks for per-token timesteps (Wan2.2 TI2V). */
export function readExpandTimesteps(dir: string): boolean {
  const index = JSON.parse(readFileSync(join(dir, "model_index.json"), "utf8")) as Record<string, unknown>;
  const v = index.expand_timesteps;
  if (v !== undefined && v !== null && typeof v !== "boolean")
    throw new Error(
      `${join(dir, "model_index.json")}: expand_timesteps must be true or false, got ${JSON.stringify(v)}`,
    );
  return v === true;
}

/**
 * The timestep a step gives the transformer: `t` for every token, or — with per-token
 * timesteps and `known` leading latent frames held — 0 for the token frames of the
 * known frames and `t` for the rest (`tokenFrames` token frames, temporal patch `pt`).
 */
export function stepTime(
  t: number,
  expandTimesteps: boolean,
  known: number,
  tokenFrames: number,
  pt: number,
): StepTime {
  if (!expandTimesteps || known === 0) return t;
  if (known % pt !== 0)
    throw new Error(
      `per-token timesteps: ${known} known latent frames do not fill whole token frames of ${pt} (the transformer's temporal patch)`,
    );
  const k = known / pt;
  return Array.from({ length: tokenFrames }, (_, i) => (i < k ? 0 : t));
}

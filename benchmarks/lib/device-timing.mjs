// What the device benchmarks (benchmarks/gpu/*.mjs, benchmarks/e2e/ours.mjs) time with and
// feed their models: the median, a timed loop between device synchronisations, and random
// inputs in a run dtype. One copy so that every benchmark times a step the same way.
// scripts/gpu/lib/common.sh (stage_js) stages it as .gpu/lib/device-timing.mjs beside the
// staged scripts, so its @tessera/native import resolves from .gpu/node_modules there.
import { cast, concat, randn } from "@tessera/native";

export const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

/**
 * Runs `fn` (which returns a tensor, freed each time) `warmup` times untimed, then `n` times
 * timed on the host clock with the device synchronised before and after each run (ms).
 */
export async function timeRuns(dev, fn, n, warmup = 0) {
  for (let i = 0; i < warmup; i++) {
    const y = fn();
    await dev.synchronize();
    y.dispose();
  }
  const ms = [];
  for (let i = 0; i < n; i++) {
    await dev.synchronize();
    const t = performance.now();
    const y = fn();
    await dev.synchronize();
    ms.push(performance.now() - t);
    y.dispose();
  }
  return { median: median(ms), min: Math.min(...ms), max: Math.max(...ms), all: ms };
}

/** Standard-normal values for `seed` on `dev` in `dtype` (drawn in f32, then cast). */
export function randnAs(dev, shape, seed, dtype) {
  const r = randn(shape, { seed, device: dev, dtype: "f32" });
  if (dtype === "f32") return r;
  const c = cast(r, dtype);
  r.dispose();
  return c;
}

/**
 * The inputs of one guided step of a Wan transformer at a video size: latents [1, F, H/8, W/8, C]
 * in f32 (as the pipeline holds them) and the conditional and unconditional text states of 512
 * tokens joined into one batch of two, in `dtype`.
 */
export function guidedStepInputs(dev, config, size, dtype) {
  const lat = [1, (size.frames - 1) / 4 + 1, size.height / 8, size.width / 8, config.in_channels];
  const latents = randn(lat, { seed: 3, device: dev });
  const c = randnAs(dev, [1, 512, config.text_dim], 7, dtype);
  const u = randnAs(dev, [1, 512, config.text_dim], 8, dtype);
  const context = concat([c, u], 0);
  c.dispose();
  u.dispose();
  return { latents, context };
}

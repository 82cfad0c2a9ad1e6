// What the flow-matching schedulers share: the interface the pipeline drives,
// the shift of the noise schedule, and linear combinations of tensors with
// coefficients worked out in float64 on the host.
import { affine, axpby, cast, type Tensor } from "@tessera/native";

export type SchedulerName = "euler" | "unipc";

/**
 * A sampler for a rectified-flow model: x_σ = (1 − σ)·x0 + σ·noise, and the model
 * predicts the velocity v = noise − x0.
 *
 * Tensor ownership: `step`, `scaleNoise` and `addNoise` never dispose their
 * arguments and return a new tensor that the caller owns. A scheduler that keeps
 * tensors between steps (UniPC) owns copies, freed by `reset()`/`dispose()` and
 * by `setTimesteps()`. Those copies are ordinary tensors: call `step` outside a
 * `scope()` that ends before sampling does, or the scope frees them early.
 */
export interface FlowScheduler {
  readonly name: SchedulerName;
  /** The σ shift: σ' = shift·σ / (1 + (shift − 1)·σ). */
  readonly shift: number;
  readonly numTrainTimesteps: number;
  /** What the model is given at each step (0..numTrainTimesteps), one per step. */
  readonly timesteps: number[];
  /** Noise level before each step, plus the final one (0): length steps + 1. */
  readonly sigmas: number[];
  /** Number of steps set by the last setTimesteps. */
  readonly numSteps: number;
  /**
   * `steps` steps evenly spaced, or an explicit schedule of that many (Euler only, as
   * in diffusers; see ExplicitSchedule).
   */
  setTimesteps(steps: number, schedule?: ExplicitSchedule): void;
  /**
   * Advances `sample` at sigmas[index] to sigmas[index + 1] given the model's
   * velocity at it. Indices must run consecutively from the first one of a run;
   * any other index starts a fresh run (forgetting multistep history).
   */
  step(modelOutput: Tensor, sample: Tensor, index: number): Tensor;
  /** The forward process at noise level σ: σ·noise + (1 − σ)·sample. */
  scaleNoise(sample: Tensor, noise: Tensor, sigma: number): Tensor;
  /** Same as scaleNoise (diffusers has both names, with equal meaning for flow sigmas). */
  addNoise(sample: Tensor, noise: Tensor, sigma: number): Tensor;
  /** Forgets multistep history and frees what it held. */
  reset(): void;
  dispose(): void;
}

/**
 * A schedule given as a list, with the meaning diffusers' FlowMatchEulerDiscreteScheduler
 * .set_timesteps gives its `timesteps` and `sigmas` arguments: from sigmas s, the noise
 * levels are shift(s) and the model is given shift(s)·T; from timesteps t alone, the
 * noise levels are shift(t / T) and the model is given t itself (unshifted); with both,
 * the levels come from sigmas and the model is given timesteps.
 */
export interface ExplicitSchedule {
  timesteps?: readonly number[];
  sigmas?: readonly number[];
}

/** The shift of a flow-matching noise schedule (diffusers, Wan): σ' = s·σ / (1 + (s − 1)·σ). */
export function shiftSigma(sigma: number, shift: number): number {
  return (shift * sigma) / (1 + (shift - 1) * sigma);
}

/** numpy.linspace(start, stop, num) with numpy's endpoint handling (the last value is exactly stop). */
export function linspace(start: number, stop: number, num: number): number[] {
  if (num === 1) return [start];
  const step = (stop - start) / (num - 1);
  const out = new Array<number>(num);
  for (let i = 0; i < num; i++) out[i] = start + i * step;
  out[num - 1] = stop;
  return out;
}

/**
 * The first step of a partial run of `steps` (video-to-video): diffusers'
 * get_timesteps, init = min(floor(steps·strength), steps), start = steps − init.
 */
export function startIndexForStrength(steps: number, strength: number): number {
  const init = Math.min(Math.floor(steps * strength), steps);
  return Math.max(steps - init, 0);
}

/**
 * Σ cᵢ·tᵢ in chained axpby passes, in f32 whatever the inputs' dtype. Terms with
 * a zero coefficient are skipped, so an inf/NaN in a term that does not count
 * cannot leak in.
 */
export function linearCombination(terms: ReadonlyArray<readonly [Tensor, number]>): Tensor {
  const live = terms.filter(([, c]) => c !== 0);
  if (live.length === 0) {
    const [t] = terms[0] ?? [];
    if (!t) throw new Error("linearCombination: no terms");
    return affine(t, 0, 0);
  }
  const [first, c0] = live[0] as readonly [Tensor, number];
  if (live.length === 1) return affine(first, c0, 0);
  const [second, c1] = live[1] as readonly [Tensor, number];
  let acc = axpby(first, second, c0, c1);
  for (let i = 2; i < live.length; i++) {
    const [t, c] = live[i] as readonly [Tensor, number];
    const next = axpby(acc, t, 1, c);
    acc.dispose();
    acc = next;
  }
  return acc;
}

/** A private copy (schedulers must not hold tensors their caller may free). */
export function copyOf(t: Tensor): Tensor {
  return cast(t, t.dtype);
}

export function checkSteps(steps: number): void {
  if (!Number.isInteger(steps) || steps < 1 || steps > 10_000)
    throw new RangeError(`steps must be an integer from 1 to 10000, got ${steps}`);
}

export function checkShift(shift: number): void {
  if (!Number.isFinite(shift) || shift <= 0)
    throw new RangeError(`shift must be a positive number, got ${shift}`);
}

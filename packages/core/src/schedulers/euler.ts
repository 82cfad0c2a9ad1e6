// Euler steps along the flow: diffusers' FlowMatchEulerDiscreteScheduler with a
// static shift (no dynamic shifting, Karras/exponential/beta sigmas or terminal
// stretch, which Wan does not use).
import { axpby, type Tensor } from "@tessera/native";
import {
  checkShift,
  checkSteps,
  type ExplicitSchedule,
  type FlowScheduler,
  linspace,
  shiftSigma,
} from "./common.js";

export interface FlowMatchEulerOptions {
  /** Default 1000. */
  numTrainTimesteps?: number;
  /** Default 1 (diffusers' default); Wan samples with 5. */
  shift?: number;
}

export class FlowMatchEulerScheduler implements FlowScheduler {
  readonly name = "euler" as const;
  readonly shift: number;
  readonly numTrainTimesteps: number;
  timesteps: number[] = [];
  sigmas: number[] = [];
  numSteps = 0;

  constructor(opts: FlowMatchEulerOptions = {}) {
    this.shift = opts.shift ?? 1;
    this.numTrainTimesteps = opts.numTrainTimesteps ?? 1000;
    checkShift(this.shift);
  }

  /**
   * diffusers builds a training table σ = t/T for t = T..1 and shifts it, then at
   * set_timesteps spaces N values linearly between that table's ends (1 and the
   * shifted 1/T) and shifts them again. So the last σ before 0 is shifted twice;
   * that is the reference behaviour, kept here. σ are stored as float32 values,
   * as diffusers keeps them.
   */
  setTimesteps(steps: number, schedule?: ExplicitSchedule): void {
    checkSteps(steps);
    if (schedule && (schedule.timesteps || schedule.sigmas)) {
      this.setExplicit(steps, schedule);
      return;
    }
    const T = this.numTrainTimesteps;
    const sigmaMax = Math.fround(shiftSigma(Math.fround(T / T), this.shift));
    const sigmaMin = Math.fround(shiftSigma(Math.fround(1 / T), this.shift));
    const ts = linspace(sigmaMax * T, sigmaMin * T, steps);
    const sig = ts.map((t) => Math.fround(shiftSigma(t / T, this.shift)));
    this.timesteps = sig.map((s) => Math.fround(s * T));
    this.sigmas = [...sig, 0];
    this.numSteps = steps;
  }

  // diffusers holds a given list as a float32 array and shifts it in float32
  // arithmetic (numpy keeps the python scalars weak), so each operation is rounded to
  // f32 here as numpy rounds it.
  private setExplicit(steps: number, s: ExplicitSchedule): void {
    const f = Math.fround;
    const T = this.numTrainTimesteps;
    for (const [what, list] of [
      ["timesteps", s.timesteps],
      ["sigmas", s.sigmas],
    ] as const)
      if (list && list.length !== steps)
        throw new RangeError(`FlowMatchEulerScheduler: ${what} has ${list.length} values for ${steps} steps`);
    const given = s.timesteps?.map(f);
    const raw = s.sigmas ? s.sigmas.map(f) : (given as number[]).map((t) => f(t / T));
    const shift = f(this.shift);
    const shiftM1 = f(this.shift - 1);
    const sig = raw.map((x) => f(f(shift * x) / f(1 + f(shiftM1 * x))));
    this.timesteps = given ?? sig.map((x) => f(x * T));
    this.sigmas = [...sig, 0];
    this.numSteps = steps;
  }

  step(modelOutput: Tensor, sample: Tensor, index: number): Tensor {
    const sigma = this.sigmaAt(index);
    const next = this.sigmas[index + 1] as number;
    return axpby(sample, modelOutput, 1, next - sigma);
  }

  scaleNoise(sample: Tensor, noise: Tensor, sigma: number): Tensor {
    return axpby(noise, sample, sigma, 1 - sigma);
  }

  addNoise(sample: Tensor, noise: Tensor, sigma: number): Tensor {
    return this.scaleNoise(sample, noise, sigma);
  }

  reset(): void {}
  dispose(): void {}

  private sigmaAt(index: number): number {
    if (!Number.isInteger(index) || index < 0 || index >= this.numSteps)
      throw new RangeError(
        this.numSteps === 0
          ? "FlowMatchEulerScheduler: call setTimesteps() before step()"
          : `FlowMatchEulerScheduler: step index ${index} is outside 0..${this.numSteps - 1}`,
      );
    return this.sigmas[index] as number;
  }
}

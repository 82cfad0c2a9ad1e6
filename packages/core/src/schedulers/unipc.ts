// UniPC (Zhao et al. 2023, arXiv 2302.04867) as Wan samples with it: diffusers'
// UniPCMultistepScheduler configured with use_flow_sigmas, prediction_type
// "flow_prediction", predict_x0, solver_type "bh2", lower_order_final and
// final_sigmas_type "zero". Each step is one predictor (UniP) plus, from the
// second step of a run on, a corrector (UniC) that reuses the model output
// already computed at the predicted point, so it costs no extra model call.
//
// Every coefficient is a float64 scalar worked out on the host; the tensors only
// see linear combinations of the sample and the stored x0 predictions.
import { axpby, type Tensor } from "@tessera/native";
import {
  checkShift,
  checkSteps,
  copyOf,
  type ExplicitSchedule,
  type FlowScheduler,
  linearCombination,
  linspace,
  shiftSigma,
} from "./common.js";

export interface UniPCOptions {
  /** Default 1000. */
  numTrainTimesteps?: number;
  /** diffusers' flow_shift: default 1; Wan's generate.py samples with 5 (3 for 480p image-to-video). */
  shift?: number;
  /** 1, 2 or 3 (default 2, Wan's and diffusers' choice for guided sampling). */
  solverOrder?: number;
  /** B(h) = e^h − 1 ("bh2", default) or h ("bh1"). */
  solverType?: "bh1" | "bh2";
  /**
   * Drop to first order on the last steps (default true). With false and a final
   * σ of 0 the higher-order formulas divide by zero, as they do in diffusers.
   */
  lowerOrderFinal?: boolean;
}

interface Stored {
  x0: Tensor;
  index: number;
}

export class UniPCMultistepScheduler implements FlowScheduler {
  readonly name = "unipc" as const;
  readonly shift: number;
  readonly numTrainTimesteps: number;
  readonly solverOrder: number;
  readonly solverType: "bh1" | "bh2";
  readonly lowerOrderFinal: boolean;
  timesteps: number[] = [];
  sigmas: number[] = [];
  numSteps = 0;

  // Multistep state of the current run.
  #history: Stored[] = [];
  #lastSample: Tensor | null = null;
  #lastOrder = 0;
  #lowerOrderNums = 0;
  #nextIndex = -1;

  constructor(opts: UniPCOptions = {}) {
    this.shift = opts.shift ?? 1;
    this.numTrainTimesteps = opts.numTrainTimesteps ?? 1000;
    this.solverOrder = opts.solverOrder ?? 2;
    this.solverType = opts.solverType ?? "bh2";
    this.lowerOrderFinal = opts.lowerOrderFinal ?? true;
    checkShift(this.shift);
    if (![1, 2, 3].includes(this.solverOrder))
      throw new RangeError(`UniPC solverOrder must be 1, 2 or 3, got ${this.solverOrder}`);
  }

  /**
   * use_flow_sigmas: α = linspace(1, 1/T, N + 1), σ = 1 − α, shifted, reversed,
   * the trailing 0 dropped, then a final σ of 0 appended. So the first σ is
   * shift(1 − 1/T), just under 1. The model's timesteps are σ·T truncated to
   * integers (diffusers casts them to int64), and σ are kept as float32.
   */
  setTimesteps(steps: number, schedule?: ExplicitSchedule): void {
    checkSteps(steps);
    if (schedule && (schedule.timesteps || schedule.sigmas))
      throw new RangeError(
        "UniPCMultistepScheduler takes no explicit timesteps or sigmas (as diffusers' UniPC); use the euler scheduler",
      );
    this.reset();
    const T = this.numTrainTimesteps;
    const alphas = linspace(1, 1 / T, steps + 1);
    const shifted = alphas.map((a) => shiftSigma(1 - a, this.shift)).reverse();
    shifted.pop();
    this.timesteps = shifted.map((s) => Math.trunc(s * T));
    this.sigmas = [...shifted.map((s) => Math.fround(s)), 0];
    this.numSteps = steps;
  }

  step(modelOutput: Tensor, sample: Tensor, index: number): Tensor {
    if (this.numSteps === 0)
      throw new RangeError("UniPCMultistepScheduler: call setTimesteps() before step()");
    if (!Number.isInteger(index) || index < 0 || index >= this.numSteps)
      throw new RangeError(`UniPCMultistepScheduler: step index ${index} is outside 0..${this.numSteps - 1}`);
    if (index !== this.#nextIndex) this.reset();

    const sigma = this.sigmas[index] as number;
    // flow_prediction with predict_x0: x0 = x − σ·v.
    const x0 = axpby(sample, modelOutput, 1, -sigma);

    const base = this.#lastSample !== null ? this.correct(x0, this.#lastSample, index) : copyOf(sample);
    this.#history.push({ x0, index });
    while (this.#history.length > this.solverOrder) this.#history.shift()?.x0.dispose();

    let order = this.lowerOrderFinal ? Math.min(this.solverOrder, this.numSteps - index) : this.solverOrder;
    order = Math.min(order, this.#lowerOrderNums + 1);

    this.#lastSample?.dispose();
    this.#lastSample = base;
    const prev = this.predict(base, index, order);
    this.#lowerOrderNums = Math.min(this.#lowerOrderNums + 1, this.solverOrder);
    this.#lastOrder = order;
    this.#nextIndex = index + 1;
    return prev;
  }

  scaleNoise(sample: Tensor, noise: Tensor, sigma: number): Tensor {
    return axpby(noise, sample, sigma, 1 - sigma);
  }

  addNoise(sample: Tensor, noise: Tensor, sigma: number): Tensor {
    return this.scaleNoise(sample, noise, sigma);
  }

  reset(): void {
    for (const h of this.#history) h.x0.dispose();
    this.#history = [];
    this.#lastSample?.dispose();
    this.#lastSample = null;
    this.#lastOrder = 0;
    this.#lowerOrderNums = 0;
    this.#nextIndex = -1;
  }

  dispose(): void {
    this.reset();
  }

  /** Tensors the scheduler holds between steps (for leak accounting in tests). */
  get heldTensors(): number {
    return this.#history.length + (this.#lastSample ? 1 : 0);
  }

  // UniP from sigmas[i] to sigmas[i + 1], with the newest x0 last in the history.
  private predict(x: Tensor, i: number, order: number): Tensor {
    const sT = this.sigmas[i + 1] as number;
    const s0 = this.sigmas[i] as number;
    const h = lambda(sT) - lambda(s0);
    const hist = this.#history;
    const m0 = (hist[hist.length - 1] as Stored).x0;
    const rks: number[] = [];
    const ms: Tensor[] = [];
    for (let k = 1; k < order; k++) {
      rks.push((lambda(this.sigmas[i - k] as number) - lambda(s0)) / h);
      ms.push((hist[hist.length - 1 - k] as Stored).x0);
    }
    const { hPhi1, bH, b } = this.phiTerms(h, order);
    let rhos: number[] = [];
    if (order === 2) rhos = [0.5];
    else if (order > 2) {
      const R = vandermonde([...rks, 1], order);
      rhos = solve(
        R.slice(0, order - 1).map((row) => row.slice(0, order - 1)),
        b.slice(0, order - 1),
      );
    }
    // x_t = σt/σs0·x − αt·hφ1·m0 − αt·B(h)·Σ ρk·(mk − m0)/rk
    const aT = 1 - sT;
    const terms: [Tensor, number][] = [[x, sT / s0]];
    let c0 = -aT * hPhi1;
    for (let k = 0; k < rks.length; k++) {
      const c = (-aT * bH * (rhos[k] as number)) / (rks[k] as number);
      terms.push([ms[k] as Tensor, c]);
      c0 -= c;
    }
    terms.push([m0, c0]);
    return linearCombination(terms);
  }

  // UniC at sigmas[i]: recomputes the previous step from `last` with the model's
  // x0 at the predicted point (mT) added to the interpolation.
  private correct(mT: Tensor, last: Tensor, i: number): Tensor {
    const order = this.#lastOrder;
    const sT = this.sigmas[i] as number;
    const s0 = this.sigmas[i - 1] as number;
    const h = lambda(sT) - lambda(s0);
    const hist = this.#history;
    const m0 = (hist[hist.length - 1] as Stored).x0;
    const rks: number[] = [];
    const ms: Tensor[] = [];
    for (let k = 1; k < order; k++) {
      rks.push((lambda(this.sigmas[i - 1 - k] as number) - lambda(s0)) / h);
      ms.push((hist[hist.length - 1 - k] as Stored).x0);
    }
    const { hPhi1, bH, b } = this.phiTerms(h, order);
    const rhos = order === 1 ? [0.5] : solve(vandermonde([...rks, 1], order), b);
    const aT = 1 - sT;
    const terms: [Tensor, number][] = [[last, sT / s0]];
    let c0 = -aT * hPhi1;
    for (let k = 0; k < rks.length; k++) {
      const c = (-aT * bH * (rhos[k] as number)) / (rks[k] as number);
      terms.push([ms[k] as Tensor, c]);
      c0 -= c;
    }
    const cT = -aT * bH * (rhos[order - 1] as number);
    terms.push([mT, cT]);
    c0 -= cT;
    terms.push([m0, c0]);
    return linearCombination(terms);
  }

  // hφ₁(−h) = e^{−h} − 1, B(h), and the right-hand side b of the order conditions.
  private phiTerms(h: number, order: number): { hPhi1: number; bH: number; b: number[] } {
    const hh = -h; // predict_x0 works in −h
    const hPhi1 = Math.expm1(hh);
    const bH = this.solverType === "bh1" ? hh : Math.expm1(hh);
    const b: number[] = [];
    let hPhiK = hPhi1 / hh - 1;
    let factorial = 1;
    for (let j = 1; j <= order; j++) {
      b.push((hPhiK * factorial) / bH);
      factorial *= j + 1;
      hPhiK = hPhiK / hh - 1 / factorial;
    }
    return { hPhi1, bH, b };
  }
}

// Half log-SNR of the flow path x = (1 − σ)·x0 + σ·noise: log(α) − log(σ).
function lambda(sigma: number): number {
  return Math.log(1 - sigma) - Math.log(sigma);
}

// Rows r^0 .. r^(n−1).
function vandermonde(r: number[], n: number): number[][] {
  const out: number[][] = [];
  for (let j = 0; j < n; j++) out.push(r.map((x) => x ** j));
  return out;
}

// Gaussian elimination with partial pivoting; the systems here are at most 3×3.
function solve(A: number[][], b: number[]): number[] {
  const n = b.length;
  const M = A.map((row, i) => [...row, b[i] as number]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++)
      if (Math.abs((M[r] as number[])[c] as number) > Math.abs((M[p] as number[])[c] as number)) p = r;
    [M[c], M[p]] = [M[p] as number[], M[c] as number[]];
    const pivot = (M[c] as number[])[c] as number;
    for (let r = c + 1; r < n; r++) {
      const f = ((M[r] as number[])[c] as number) / pivot;
      for (let k = c; k <= n; k++)
        (M[r] as number[])[k] = ((M[r] as number[])[k] as number) - f * ((M[c] as number[])[k] as number);
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = (M[r] as number[])[n] as number;
    for (let k = r + 1; k < n; k++) s -= ((M[r] as number[])[k] as number) * (x[k] as number);
    x[r] = s / ((M[r] as number[])[r] as number);
  }
  return x;
}

import { axpby, liveTensorCount, randn, Tensor } from "@tessera/native";
import { describe, expect, it } from "vitest";
import {
  createScheduler,
  FlowMatchEulerScheduler,
  type FlowScheduler,
  schedulerFromConfig,
  shiftSigma,
  startIndexForStrength,
  UniPCMultistepScheduler,
} from "./index.js";

const f32 = Math.fround;

function expectClose(actual: number[], expected: number[], tol = 1e-7) {
  expect(actual.length).toBe(expected.length);
  actual.forEach((a, i) => {
    expect(Math.abs(a - (expected[i] as number)), `index ${i}: ${a} vs ${expected[i]}`).toBeLessThanOrEqual(
      tol,
    );
  });
}

describe("schedules", () => {
  it("shifts σ as σ' = s·σ / (1 + (s − 1)·σ)", () => {
    expect(shiftSigma(0.5, 1)).toBe(0.5);
    expect(shiftSigma(0.5, 3)).toBeCloseTo(1.5 / 2, 15);
    expect(shiftSigma(1, 7)).toBe(1);
    expect(shiftSigma(0, 7)).toBe(0);
  });

  it("UniPC flow sigmas, 4 steps, shift 1", () => {
    // α = linspace(1, 0.001, 5) = 1, 0.75025, 0.5005, 0.25075, 0.001; σ = 1 − α reversed,
    // the trailing 0 dropped, a final 0 appended; timesteps = trunc(1000·σ).
    const s = new UniPCMultistepScheduler({ shift: 1 });
    s.setTimesteps(4);
    expect(s.timesteps).toEqual([999, 749, 499, 249]);
    expectClose(s.sigmas, [0.999, 0.74925, 0.4995, 0.24975, 0].map(f32), 0);
  });

  it("UniPC flow sigmas, 4 steps, shift 5 (Wan's default)", () => {
    // σ' = 5σ / (1 + 4σ) of the shift-1 values above.
    const expected = [4.995 / 4.996, 3.74625 / 3.997, 2.4975 / 2.998, 1.24875 / 1.999];
    const s = new UniPCMultistepScheduler({ shift: 5 });
    s.setTimesteps(4);
    expect(s.timesteps).toEqual([999, 937, 833, 624]);
    expectClose(s.sigmas, [...expected.map(f32), 0], 1e-7);
    // 50 steps: the first σ is shift(0.999); the last before 0 is shift(1 − α₁) with
    // α₁ = 1 − 0.999/50, i.e. 5·0.01998 / (1 + 4·0.01998) = 0.0999 / 1.07992.
    s.setTimesteps(50);
    expect(s.timesteps.length).toBe(50);
    expect(s.timesteps.slice(0, 6)).toEqual([999, 995, 991, 987, 982, 978]);
    expect(s.sigmas[0]).toBe(f32(4.995 / 4.996));
    expect(s.sigmas[49]).toBeCloseTo(0.0999 / 1.07992, 7);
    expect(s.sigmas[50]).toBe(0);
  });

  it("Euler sigmas, 4 steps, shift 1 and 3", () => {
    // diffusers: σ_min = shift(1/1000) from the training table, t = linspace(1000, 1000·σ_min, N),
    // σ = shift(t/1000) (so the last σ is shifted twice), timesteps = 1000·σ.
    const e1 = new FlowMatchEulerScheduler({ shift: 1 });
    e1.setTimesteps(4);
    expectClose(e1.sigmas, [1, 0.667, 0.334, 0.001, 0].map(f32), 1e-7);
    expectClose(e1.timesteps, [1000, 667, 334, 1], 1e-4);

    const e3 = new FlowMatchEulerScheduler({ shift: 3 });
    e3.setTimesteps(4);
    const smin = 0.003 / 1.002;
    const raw = [1, (2 + smin) / 3, (1 + 2 * smin) / 3, smin];
    const expected = raw.map((x) => (3 * x) / (1 + 2 * x));
    expectClose(e3.sigmas, [...expected, 0], 1e-7);
    expect(e3.sigmas[1]).toBeCloseTo(0.857692301, 7);
    expect(e3.sigmas[3]).toBeCloseTo(0.008928572, 7);
    expectClose(e3.timesteps, [1000, 857.6923217773438, 602.1505737304688, 8.928571701049805], 1e-3);
  });

  it("starts video-to-video where diffusers does", () => {
    expect(startIndexForStrength(50, 1)).toBe(0);
    expect(startIndexForStrength(50, 0.8)).toBe(10);
    expect(startIndexForStrength(10, 0.55)).toBe(5);
    expect(startIndexForStrength(10, 0.05)).toBe(10);
  });

  it("reads diffusers scheduler configs", () => {
    expect(
      schedulerFromConfig({
        _class_name: "UniPCMultistepScheduler",
        flow_shift: 3.0,
        use_flow_sigmas: true,
        prediction_type: "flow_prediction",
      }),
    ).toEqual({ name: "unipc", shift: 3, numTrainTimesteps: 1000 });
    expect(schedulerFromConfig({ _class_name: "FlowMatchEulerDiscreteScheduler", shift: 5 }).name).toBe(
      "euler",
    );
    expect(() => schedulerFromConfig({ _class_name: "DDIMScheduler" })).toThrow(/unsupported/);
    expect(() => createScheduler("heun" as "euler")).toThrow(/unknown scheduler/);
    expect(() => new UniPCMultistepScheduler().setTimesteps(0)).toThrow(/steps/);
  });
});

// Runs a scheduler to the end with a velocity field given on the host.
async function sample(
  s: FlowScheduler,
  steps: number,
  x: Tensor,
  velocity: (x: Tensor, sigma: number) => Tensor,
  start = 0,
): Promise<Tensor> {
  s.setTimesteps(steps);
  let cur = x;
  for (let i = start; i < steps; i++) {
    const v = velocity(cur, s.sigmas[i] as number);
    const next = s.step(v, cur, i);
    v.dispose();
    if (cur !== x) cur.dispose();
    cur = next;
  }
  s.reset();
  return cur;
}

describe("solvers", () => {
  for (const name of ["euler", "unipc"] as const) {
    for (const steps of [1, 2, 5, 20]) {
      it(`${name} recovers x0 of a single-point data distribution (${steps} steps)`, async () => {
        const before = liveTensorCount();
        const x0 = randn([3, 4, 5], { seed: 11 });
        const noise = randn([3, 4, 5], { seed: 12 });
        const s = createScheduler(name, { shift: 5 });
        s.setTimesteps(steps);
        // The exact velocity for data = {x0}: x_σ = (1 − σ)x0 + σ·ε ⇒ v = ε − x0 = (x − x0)/σ.
        const start = s.scaleNoise(x0, noise, s.sigmas[0] as number);
        const out = await sample(s, steps, start, (x, sigma) => axpby(x, x0, 1 / sigma, -1 / sigma));
        const got = await out.toFloat32Array();
        const want = await x0.toFloat32Array();
        for (let i = 0; i < got.length; i++)
          expect(Math.abs((got[i] as number) - (want[i] as number))).toBeLessThan(1e-5);
        for (const t of [x0, noise, start, out]) t.dispose();
        s.dispose();
        expect(liveTensorCount()).toBe(before);
      });
    }
  }

  it("UniPC is more accurate than Euler on a Gaussian data distribution at equal steps", async () => {
    // Data x0 ~ N(μ, s²) elementwise. E[x0 | x_σ] = μ + k(σ)·(x − (1 − σ)μ) with
    // k = (1 − σ)s² / ((1 − σ)²s² + σ²), and the probability-flow ODE has the exact
    // solution x(σ) = (1 − σ)μ + √((1 − σ)²s² + σ²)·z, so x(0) = μ + s·z.
    const n = 64;
    const s2 = 0.25;
    const mu = randn([n], { seed: 5 });
    const z = randn([n], { seed: 6 });
    const muH = await mu.toFloat32Array();
    const zH = await z.toFloat32Array();
    const field = (x: Tensor, sigma: number) => {
      const k = ((1 - sigma) * s2) / ((1 - sigma) ** 2 * s2 + sigma ** 2);
      // v = (x − E[x0|x]) / σ
      return axpby(x, mu, (1 - k) / sigma, -(1 - k * (1 - sigma)) / sigma);
    };
    const errors: Record<string, number[]> = { euler: [], unipc: [] };
    for (const steps of [8, 16, 32]) {
      for (const name of ["euler", "unipc"] as const) {
        const sch = createScheduler(name, { shift: 5 });
        sch.setTimesteps(steps);
        const s0 = sch.sigmas[0] as number;
        const scale = Math.sqrt((1 - s0) ** 2 * s2 + s0 ** 2);
        const startH = muH.map((m, i) => (1 - s0) * m + scale * (zH[i] as number));
        const start = Tensor.from(startH, [n]);
        const out = await sample(sch, steps, start, field);
        const got = await out.toFloat32Array();
        let err = 0;
        for (let i = 0; i < n; i++)
          err = Math.max(
            err,
            Math.abs((got[i] as number) - ((muH[i] as number) + Math.sqrt(s2) * (zH[i] as number))),
          );
        errors[name]?.push(err);
        start.dispose();
        out.dispose();
        sch.dispose();
      }
    }
    for (let i = 0; i < 3; i++)
      expect(errors.unipc?.[i] as number).toBeLessThanOrEqual(errors.euler?.[i] as number);
    // Higher order shows as a faster fall of the error with steps.
    const rate = (e: number[]) => Math.log2((e[0] as number) / (e[2] as number)) / 2;
    expect(rate(errors.unipc as number[])).toBeGreaterThan(rate(errors.euler as number[]));
    mu.dispose();
    z.dispose();
  });

  it("UniPC matches diffusers' predictor-corrector arithmetic step for step", async () => {
    // Reference: a line-by-line numpy (float64) transliteration of diffusers'
    // UniPCMultistepScheduler.step / multistep_uni_p_bh_update / multistep_uni_c_bh_update
    // (flow sigmas, flow_prediction, predict_x0, bh2, lower_order_final), run on the
    // velocity field v(x, σ) = sin(3x) + σx − 0.5 from x = [0.3, −1.2, 0.8, 2.0].
    const reference: [number, number, number, number[]][] = [
      [7, 3, 2, [0.15504744989502536, 0.17637434955033646, 0.17063931576225855, 2.0400096774612524]],
      [12, 5, 2, [0.1567670339352294, 0.15777603465832857, 0.1789407996256613, 2.045522373127626]],
      [5, 1, 2, [0.1655915599556981, 0.07351297358380603, 0.215485106546443, 2.071374088591956]],
      [9, 3, 3, [0.15978330824772755, 0.12387705403796917, 0.1927847914761055, 2.0551230696767373]],
      [6, 2, 1, [0.15720693607302666, 0.13904786328869, 0.1757815412405902, 2.0464504231288307]],
    ];
    for (const [steps, shift, solverOrder, want] of reference) {
      const s = new UniPCMultistepScheduler({ shift, solverOrder });
      s.setTimesteps(steps);
      let x = Tensor.from([0.3, -1.2, 0.8, 2.0], [4]);
      for (let i = 0; i < steps; i++) {
        const sigma = s.sigmas[i] as number;
        const xs = await x.toFloat32Array();
        const v = Tensor.from(
          Array.from(xs, (e) => Math.sin(3 * e) + sigma * e - 0.5),
          [4],
        );
        const next = s.step(v, x, i);
        v.dispose();
        x.dispose();
        x = next;
      }
      expectClose(Array.from(await x.toFloat32Array()), want, 2e-5);
      x.dispose();
      s.dispose();
    }
  });

  it("UniPC frees its history and restarts on a non-consecutive index", async () => {
    const before = liveTensorCount();
    const s = new UniPCMultistepScheduler({ shift: 3 });
    s.setTimesteps(6);
    const x = randn([8], { seed: 1 });
    const v = randn([8], { seed: 2 });
    const a = s.step(v, x, 0);
    const b = s.step(v, a, 1);
    expect(s.heldTensors).toBe(3);
    // A jump (a v2v run starting later) forgets the history: same result as a fresh scheduler.
    const c = s.step(v, x, 3);
    const fresh = new UniPCMultistepScheduler({ shift: 3 });
    fresh.setTimesteps(6);
    const d = fresh.step(v, x, 3);
    expect(Array.from(await c.toFloat32Array())).toEqual(Array.from(await d.toFloat32Array()));
    for (const t of [x, v, a, b, c, d]) t.dispose();
    s.dispose();
    fresh.dispose();
    expect(liveTensorCount()).toBe(before);
  });
});

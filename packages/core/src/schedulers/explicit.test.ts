// An explicit schedule, with the meaning diffusers' FlowMatchEulerDiscreteScheduler
// .set_timesteps gives its timesteps= and sigmas= lists (the values below are what
// diffusers gives for shift 5, num_train_timesteps 1000).
import { describe, expect, it } from "vitest";
import { FlowMatchEulerScheduler, UniPCMultistepScheduler } from "./index.js";

const f32 = Math.fround;

describe("an explicit schedule", () => {
  it("from timesteps: σ = shift(t / 1000) and the model is given t unshifted", () => {
    const s = new FlowMatchEulerScheduler({ shift: 5 });
    s.setTimesteps(4, { timesteps: [1000, 750, 500, 250] });
    expect(s.timesteps).toEqual([1000, 750, 500, 250]);
    // 5σ / (1 + 4σ) for σ = 1, 0.75, 0.5, 0.25, each in float32 arithmetic.
    expect(s.sigmas).toEqual([1, 0.9375, f32(f32(2.5) / f32(3)), 0.625, 0]);
    expect(s.numSteps).toBe(4);
  });

  it("from sigmas: σ = shift(s) and the model is given σ·1000 (lightx2v's step list)", () => {
    const s = new FlowMatchEulerScheduler({ shift: 5 });
    s.setTimesteps(4, { sigmas: [1, 0.75, 0.5, 0.25] });
    expect(s.sigmas).toEqual([1, 0.9375, f32(f32(2.5) / f32(3)), 0.625, 0]);
    expect(s.timesteps[0]).toBe(1000);
    expect(s.timesteps[1]).toBe(937.5);
    expect(s.timesteps[2]).toBeCloseTo(833.3333, 4);
    expect(s.timesteps[3]).toBe(625);
  });

  it("from both: the levels from sigmas, the model given the timesteps", () => {
    const s = new FlowMatchEulerScheduler({ shift: 3 });
    s.setTimesteps(2, { sigmas: [1, 0.5], timesteps: [999, 400] });
    expect(s.timesteps).toEqual([999, 400]);
    expect(s.sigmas).toEqual([1, 0.75, 0]);
  });

  it("with shift 1, a timesteps list is its own σ·1000 (diffusers' two meanings agree)", () => {
    const a = new FlowMatchEulerScheduler({ shift: 1 });
    const b = new FlowMatchEulerScheduler({ shift: 1 });
    a.setTimesteps(3, { timesteps: [900, 600, 300] });
    b.setTimesteps(3, { sigmas: [0.9, 0.6, 0.3] });
    expect(a.sigmas).toEqual(b.sigmas);
    expect(a.timesteps).toEqual(b.timesteps.map((t) => f32(t)));
  });

  it("refuses a list of another length than steps, and UniPC refuses lists (diffusers' UniPC takes none)", () => {
    const s = new FlowMatchEulerScheduler({ shift: 5 });
    expect(() => s.setTimesteps(3, { timesteps: [1000, 500] })).toThrow(/timesteps has 2 values for 3 steps/);
    const u = new UniPCMultistepScheduler({ shift: 5 });
    expect(() => u.setTimesteps(2, { sigmas: [1, 0.5] })).toThrow(/takes no explicit timesteps or sigmas/);
    // No list: the evenly spaced schedule, as before.
    s.setTimesteps(2, {});
    expect(s.timesteps[0]).toBe(1000);
  });
});

// The list-valued parameters: an explicit schedule (timesteps, sigmas) and LoRAs,
// as each surface takes them (library values, CLI text, the request's JSON Schema).
import { describe, expect, it } from "vitest";
import {
  GenerateOptionError,
  type GenerationDefaults,
  type ModelLimits,
  resolveOptions,
} from "../pipelines/options.js";
import {
  cliName,
  param,
  parseText,
  problem,
  rangeText,
  requestBodySchema,
  requestListFields,
  serverName,
} from "./index.js";

const WAN: ModelLimits = {
  sideMultiple: 16,
  temporalFactor: 4,
  temporalPatch: 1,
  maxSide: 4096,
  maxFrames: 1021,
};
const DEFAULTS: GenerationDefaults = {
  width: 832,
  height: 480,
  frames: 81,
  steps: 50,
  guidance: 5,
  shift: 5,
  scheduler: "unipc",
  fps: 16,
};
const resolve = (o: Record<string, unknown>, limits: ModelLimits = WAN) =>
  resolveOptions({ prompt: "a cat", ...o }, DEFAULTS, limits, () => 1);
const optionError = (o: Record<string, unknown>, field: string, message: RegExp, limits?: ModelLimits) => {
  let err: unknown;
  try {
    resolve(o, limits);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(GenerateOptionError);
  expect((err as GenerateOptionError).field).toBe(field);
  expect((err as Error).message).toMatch(message);
};

describe("an explicit schedule", () => {
  it("takes decreasing timesteps in (0, 1000] and sigmas in (0, 1], and refuses the rest naming the entry", () => {
    const t = param("timesteps");
    expect(problem(t, [1000, 750, 500, 250], "timesteps")).toBeNull();
    expect(problem(param("sigmas"), [1, 0.75, 0.5, 0.25], "sigmas")).toBeNull();
    expect(problem(t, [1000, 750, 750], "timesteps")).toMatch(
      /timesteps must decrease: timesteps\[2\] is 750/,
    );
    expect(problem(t, [1001], "timesteps")).toMatch(/timesteps\[0\] must be a number in \(0, 1000\]/);
    expect(problem(t, [500, 0], "timesteps")).toMatch(/timesteps\[1\]/);
    expect(problem(t, [], "timesteps")).toMatch(/a list of 1 to 1000 numbers/);
    expect(problem(t, "1000,750", "timesteps")).toMatch(/a list of 1 to 1000 numbers/);
    expect(problem(param("sigmas"), [1.5], "sigmas")).toMatch(/sigmas\[0\]/);
  });

  it("is a comma-separated list on the CLI", () => {
    const t = param("timesteps");
    expect(parseText(t, "1000,750,500,250", "--timesteps")).toEqual({
      ok: true,
      value: [1000, 750, 500, 250],
    });
    expect(parseText(t, "1000, 750.5", "--timesteps")).toEqual({ ok: true, value: [1000, 750.5] });
    expect(parseText(t, "1000,,500", "--timesteps")).toMatchObject({
      ok: false,
      message: expect.stringMatching(/--timesteps must be a comma-separated list of numbers/),
    });
    expect(parseText(t, "250,500", "--timesteps")).toMatchObject({
      ok: false,
      message: expect.stringMatching(/--timesteps must decrease/),
    });
    expect(rangeText(t)).toBe("up to 1000 values, above 0 to 1000, decreasing");
    expect(cliName("timesteps")).toBe("--timesteps");
    expect(serverName("sigmas")).toBe("sigmas");
  });

  it("sets the step count and the euler sampler; a conflicting steps or scheduler is refused", () => {
    const r = resolve({ timesteps: [1000, 750, 500, 250], guidance: 1 });
    expect(r.steps).toBe(4);
    expect(r.scheduler).toBe("euler");
    expect(r.schedule).toEqual({ timesteps: [1000, 750, 500, 250] });
    expect(resolve({ sigmas: [1, 0.5], steps: 2, scheduler: "euler" }).schedule).toEqual({
      sigmas: [1, 0.5],
    });
    expect(resolve({ steps: 7 }).schedule).toBeNull();
    optionError({ timesteps: [1000, 500], steps: 20 }, "steps", /steps is 20 but timesteps has 2 values/);
    optionError({ sigmas: [1, 0.5], scheduler: "unipc" }, "scheduler", /sigmas runs the euler sampler/);
    optionError({ sigmas: [1, 0.5], timesteps: [900] }, "sigmas", /sigmas has 2 values and timesteps 1/);
    optionError({ timesteps: [10, 20] }, "timesteps", /timesteps must decrease/);
  });

  it("is an array of numbers in the request schema, its length capped by the server's steps", () => {
    const s = requestBodySchema({ timesteps: { maxItems: 100 } });
    expect(s.properties.timesteps).toMatchObject({
      type: "array",
      minItems: 1,
      maxItems: 100,
      items: { type: "number", exclusiveMinimum: 0, maximum: 1000 },
    });
    expect(s.properties.sigmas).toMatchObject({ type: "array", items: { exclusiveMinimum: 0, maximum: 1 } });
    expect(requestListFields()).toEqual(new Set(["timesteps", "sigmas", "loras", "loras_2"]));
  });
});

describe("LoRAs as a parameter", () => {
  const l = param("loras");

  it("takes files or names with strengths in the library, and refuses paths posing as names", () => {
    expect(problem(l, [], "loras")).toBeNull();
    expect(problem(l, [{ path: "/x/a.safetensors" }, { name: "style", strength: 0.8 }], "loras")).toBeNull();
    expect(problem(l, [{ name: "../etc/passwd" }], "loras")).toMatch(
      /loras\[0\]\.name must be a LoRA's name/,
    );
    expect(problem(l, [{ name: "a/b" }], "loras")).toMatch(/not a path/);
    expect(problem(l, [{ name: "a", path: "b" }], "loras")).toMatch(/a name or a path, one of them/);
    expect(problem(l, [{ name: "a", strength: 101 }], "loras")).toMatch(
      /loras\[0\]\.strength must be a number from -100 to 100/,
    );
    expect(problem(l, [{ name: "a", scale: 1 }], "loras")).toMatch(/unknown field 'scale'/);
    expect(problem(l, "style", "loras")).toMatch(/must be a list of LoRAs/);
    expect(
      problem(
        l,
        Array.from({ length: 17 }, (_, i) => ({ name: `l${i}` })),
        "loras",
      ),
    ).toMatch(/at most 16/);
  });

  it("is FILE[:STRENGTH] on the CLI, repeatable, with the strength defaulting to 1", () => {
    expect(parseText(l, "style.safetensors", "--lora")).toEqual({
      ok: true,
      value: [{ path: "style.safetensors" }],
    });
    expect(parseText(l, "/m/x.safetensors:0.8", "--lora")).toEqual({
      ok: true,
      value: [{ path: "/m/x.safetensors", strength: 0.8 }],
    });
    expect(parseText(l, "C:\\m\\x.safetensors:-1.5", "--lora")).toEqual({
      ok: true,
      value: [{ path: "C:\\m\\x.safetensors", strength: -1.5 }],
    });
    expect(parseText(l, "x.safetensors:500", "--lora")).toMatchObject({
      ok: false,
      message: expect.stringMatching(/--lora's strength must be a number from -100 to 100, got 500/),
    });
    expect(parseText(l, ":0.5", "--lora")).toMatchObject({ ok: false });
    expect(l.cli?.repeatable).toBe(true);
    expect(cliName("loras")).toBe("--lora");
    expect(cliName("loras2")).toBe("--lora-2");
    expect(rangeText(l)).toBe("repeatable; strength -100 to 100, default 1");
  });

  it("is a list of { name, strength } in the request schema: names only, never paths", () => {
    const s = requestBodySchema();
    expect(s.properties.loras).toMatchObject({
      type: "array",
      maxItems: 16,
      items: { type: "object", additionalProperties: false, required: ["name"] },
    });
    const item = (s.properties.loras as { items: { properties: Record<string, { pattern?: string }> } })
      .items;
    expect(Object.keys(item.properties)).toEqual(["name", "strength"]);
    const name = new RegExp(item.properties.name?.pattern as string);
    expect(name.test("style")).toBe(true);
    expect(name.test("wan2.1 lightx2v")).toBe(true);
    for (const bad of ["../x", "a/b", "a\\b", ".hidden", ""]) expect(name.test(bad), bad).toBe(false);
  });

  it("refuses LoRAs for a second expert on a model with one", () => {
    optionError({ loras2: [{ path: "/x.safetensors" }] }, "loras2", /this model has one expert/);
    expect(() => resolve({ loras2: [] })).not.toThrow();
    expect(() => resolve({ loras2: [{ path: "/x.safetensors" }] }, { ...WAN, experts: 2 })).not.toThrow();
  });
});

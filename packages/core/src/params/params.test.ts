// The parameter schema: its declarations are consistent, and what the surfaces
// derive from it (checks, typed values, the request's JSON Schema, names) follows
// each declaration.
import { describe, expect, it } from "vitest";
import {
  GenerateOptionError,
  type GenerationDefaults,
  type ModelLimits,
  resolveOptions,
} from "../pipelines/options.js";
import {
  cliName,
  defaultText,
  framesFromSeconds,
  GENERATION_PARAMS,
  type ParamSpec,
  param,
  paramsOn,
  parseText,
  problem,
  rangeText,
  requestBodySchema,
  requestFieldKinds,
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
const all: readonly ParamSpec[] = GENERATION_PARAMS;

describe("the parameter schema", () => {
  it("declares each parameter once, with a name on every surface that carries it", () => {
    const keys = all.map((p) => p.key);
    expect(new Set(keys).size).toBe(keys.length);
    const fields = paramsOn("server").map((p) => p.server?.field);
    const flags = paramsOn("cli").map((p) => p.cli?.flag);
    expect(fields.every((f) => typeof f === "string" && f.length > 0)).toBe(true);
    expect(flags.every((f) => typeof f === "string" && f.length > 0)).toBe(true);
    expect(new Set(fields).size).toBe(fields.length);
    expect(new Set(flags).size).toBe(flags.length);
    for (const p of all) {
      expect(p.description.length, p.key).toBeGreaterThan(0);
      for (const k of [...(p.spells ?? []), ...(p.exclusiveWith ?? [])])
        expect(keys, `${p.key} names ${k}`).toContain(k);
      const d = p.default;
      if (d && "model" in d)
        for (const k of typeof d.model === "string" ? [d.model] : d.model)
          expect(Object.keys(DEFAULTS), p.key).toContain(k);
      if (p.cli?.negates) expect(p.type.kind, p.key).toBe("boolean");
    }
  });

  it("spells width and height as size, and frames as seconds, where the library's names are not used", () => {
    expect(param("size").spells).toEqual(["width", "height"]);
    expect(cliName("width")).toBe("--size");
    expect(cliName("height")).toBe("--size");
    expect(cliName("prompt")).toBe("PROMPT");
    expect(cliName("contextFrames")).toBe("--context");
    expect(cliName("rewrite")).toBe("--no-rewrite");
    expect(serverName("width")).toBe("size");
    expect(serverName("negativePrompt")).toBe("negative_prompt");
    expect(serverName("frames")).toBe("frames");
    // 5 s at 16 fps is 80 frames; the nearest 1 + 4k is 81.
    expect(framesFromSeconds(5, 16, 4)).toBe(81);
    expect(framesFromSeconds(0.01, 16, 4)).toBe(1);
  });
});

describe("checking a value", () => {
  const check = (key: string, v: unknown, limits: Partial<ModelLimits> = WAN) =>
    problem(param(key as "steps"), v, key, limits);

  it("takes what the declaration allows", () => {
    for (const [key, v] of [
      ["steps", 1],
      ["steps", 1000],
      ["guidance", 0],
      ["strength", 1],
      ["stepCache", false],
      ["stepCache", 0.1],
      ["scheduler", "euler"],
      ["width", 832],
      ["frames", 81],
      ["rewrite", false],
      ["size", [832, 480]],
    ] as const)
      expect(check(key, v), `${key} ${v}`).toBeNull();
  });

  it("refuses the rest with a sentence naming the value", () => {
    expect(check("steps", 0)).toBe("steps must be an integer from 1 to 1000, got 0");
    expect(check("steps", 2.5)).toMatch(/integer/);
    expect(check("frames", 0)).toBe("frames must be an integer from 1 to 1021 of the form 1 + 4k, got 0");
    expect(check("frames", 10)).toBe("frames must be 1 + 4k (1, 5, 9, …), got 10");
    expect(check("width", 40)).toMatch(/^width must be a multiple of 16 .*got 40$/);
    expect(check("width", 8192)).toMatch(/4096/);
    expect(check("strength", 0)).toMatch(/strength must be a number in \(0, 1\]/);
    expect(check("shift", 0)).toMatch(/above 0/);
    expect(check("guidance", Number.NaN)).toMatch(/guidance must be a number from 0 to 100/);
    expect(check("stepCache", 11)).toMatch(/false or a number from 0 to 10 \(0\.05 to 0\.2 are typical\)/);
    expect(check("scheduler", "ddim")).toBe("scheduler must be 'unipc' or 'euler', got 'ddim'");
    expect(check("cudaGraph", "yes")).toBe("cudaGraph must be true or false, got 'yes'");
    expect(check("prompt", 5)).toBe("prompt must be a string");
    expect(check("model", "m".repeat(201))).toMatch(/at most 200 characters/);
    expect(check("size", [40, 32])).toBe(
      "size's width and height must be positive multiples of 16 of at most 4096, got 40x32",
    );
  });

  it("checks a model's limits only where they are known", () => {
    const none = {};
    expect(check("frames", 10, none)).toBeNull();
    expect(check("frames", 0, none)).toBe("frames must be an integer of at least 1, got 0");
    expect(check("width", 40, { sideMultiple: 8 })).toBeNull();
    expect(check("size", [40, 32], { sideMultiple: 16 })).toMatch(/multiples of 16, got 40x32/);
  });
});

describe("typed values (flags)", () => {
  it("turns text into the declared type, naming the flag when it cannot", () => {
    expect(parseText(param("steps"), "20", "--steps")).toEqual({ ok: true, value: 20 });
    expect(parseText(param("guidance"), "4.5", "--guidance")).toEqual({ ok: true, value: 4.5 });
    expect(parseText(param("size"), "64x48", "--size")).toEqual({ ok: true, value: [64, 48] });
    expect(parseText(param("steps"), "0", "--steps")).toEqual({
      ok: false,
      message: "--steps must be an integer from 1 to 1000, got '0'",
    });
    expect(parseText(param("guidance"), "lots", "--guidance")).toMatchObject({
      message: "--guidance must be a number from 0 to 100, got 'lots'",
    });
    expect(parseText(param("guidance"), " ", "--guidance").ok).toBe(false);
    expect(parseText(param("stepCache"), "11", "--step-cache")).toMatchObject({
      message: "--step-cache must be a number from 0 to 10 (0.05 to 0.2 are typical), got '11'",
    });
    expect(parseText(param("size"), "100", "--size")).toMatchObject({
      message: "--size must be WIDTHxHEIGHT (e.g. 64x48), got '100'",
    });
    expect(parseText(param("seed"), "99999999999999999999", "--seed").ok).toBe(false);
    // The model's limits wait for the model: 10 frames is a well-formed integer.
    expect(parseText(param("frames"), "10", "--frames")).toEqual({ ok: true, value: 10 });
    expect(parseText(param("frames"), "-1", "--frames").ok).toBe(false);
  });
});

describe("the request's JSON Schema", () => {
  it("has every server field but uploads, in declaration order, with policy on top of the ranges", () => {
    const s = requestBodySchema({
      prompt: { minLength: 1, maxLength: 2000 },
      steps: { maximum: 100 },
      guidance: { maximum: 300 },
      frames: { maximum: 161 },
    });
    expect(s).toMatchObject({ type: "object", additionalProperties: false, required: ["prompt"] });
    expect(Object.keys(s.properties)).toEqual([
      "prompt",
      "negative_prompt",
      "model",
      "size",
      "seconds",
      "frames",
      "steps",
      "guidance",
      "guidance_2",
      "timesteps",
      "sigmas",
      "loras",
      "loras_2",
      "seed",
      "strength",
      "rewrite",
    ]);
    expect(s.properties.prompt).toMatchObject({ type: "string", minLength: 1, maxLength: 2000 });
    expect(s.properties.steps).toMatchObject({ type: "integer", minimum: 1, maximum: 100 });
    // A policy looser than the declaration does not widen it.
    expect(s.properties.guidance).toMatchObject({ type: "number", minimum: 0, maximum: 100 });
    expect(s.properties.frames).toMatchObject({ type: "integer", minimum: 1, maximum: 161 });
    expect(s.properties.strength).toMatchObject({ exclusiveMinimum: 0, maximum: 1 });
    expect(s.properties.size).toMatchObject({ type: "string", pattern: "^[0-9]{1,5}x[0-9]{1,5}$" });
    expect(s.properties.rewrite).toMatchObject({ type: "boolean" });
    expect(s.properties.frames?.description).toMatch(/1 \+ 4k.*Give seconds or frames, not both/);
    expect(s.properties.seconds?.description).toMatch(/Give seconds or frames, not both/);
    // Without a policy, a bound only the model knows is left out.
    expect(requestBodySchema().properties.frames).not.toHaveProperty("maximum");
    expect(requestFieldKinds()).toEqual({
      numeric: new Set(["seconds", "frames", "steps", "guidance", "guidance_2", "seed", "strength"]),
      boolean: new Set(["rewrite"]),
    });
  });
});

describe("ranges and defaults in words", () => {
  it("says each with the model's values where given", () => {
    expect(rangeText(param("steps"))).toBe("1 to 1000");
    expect(rangeText(param("strength"))).toBe("above 0, at most 1");
    expect(rangeText(param("scheduler"))).toBe("unipc|euler");
    expect(rangeText(param("frames"))).toMatch(/^1 \+ 4k/);
    expect(defaultText(param("steps"))).toBe("the model's");
    expect(defaultText(param("size"), DEFAULTS)).toBe("832x480");
    expect(defaultText(param("strength"))).toBe("0.8");
    expect(defaultText(param("stepCache"))).toBe("off");
    expect(defaultText(param("seed"))).toMatch(/random/);
  });
});

describe("the library's checks", () => {
  const resolve = (o: Record<string, unknown>) =>
    resolveOptions({ prompt: "x", ...o } as never, DEFAULTS, WAN, () => 7);

  it("refuses a value of the wrong type for every declared option, naming it", () => {
    for (const spec of paramsOn("library")) {
      if (spec.type.kind === "input") continue;
      const err = (() => {
        try {
          resolve({ [spec.key]: { wrong: true } });
        } catch (e) {
          return e;
        }
        return null;
      })();
      expect(err, spec.key).toBeInstanceOf(GenerateOptionError);
      expect((err as GenerateOptionError).field).toBe(spec.key);
      expect((err as Error).message).toMatch(new RegExp(`^${spec.key} must be`));
    }
  });

  it("fills the declared defaults and the model's", () => {
    const r = resolve({});
    expect(r).toMatchObject({ width: 832, height: 480, frames: 81, steps: 50, negativePrompt: "", seed: 7 });
    expect(r).toMatchObject({ stepCache: false, cudaGraph: true, loop: false, strength: 1 });
  });
});

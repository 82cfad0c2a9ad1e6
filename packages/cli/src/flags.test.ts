// Declared flags parse into typed values, refuse bad ones naming the flag, and
// generate's parameter flags map onto generate() options as the schema declares.
import { describe, expect, it } from "vitest";
import { UsageError } from "./args.js";
import { paramValues } from "./commands/generate/flags.js";
import { readFlags } from "./flags.js";

const FLAGS = {
  port: { kind: "integer", min: 0, max: 65535, default: 8080, description: "" },
  rate: { kind: "number", min: 0, max: 1, exclusiveMin: true, description: "" },
  mode: { kind: "choice", choices: ["a", "b"], description: "" },
  size: { kind: "size", default: [64, 64], description: "" },
  name: { kind: "string", description: "" },
  json: { kind: "boolean", description: "" },
} as const;

describe("readFlags", () => {
  it("gives typed values, defaults where a flag is absent", () => {
    const a = readFlags(
      ["x", "--port", "80", "--rate", "0.5", "--mode", "b", "--size", "32x16", "--json"],
      FLAGS,
    );
    expect(a.positionals).toEqual(["x"]);
    expect(a.values).toEqual({ port: 80, rate: 0.5, mode: "b", size: [32, 16], name: undefined, json: true });
    expect(readFlags([], FLAGS).values).toEqual({
      port: 8080,
      rate: undefined,
      mode: undefined,
      size: [64, 64],
      name: undefined,
      json: false,
    });
  });

  it("refuses a bad value naming the flag", () => {
    for (const [argv, message] of [
      [["--port", "70000"], "--port must be an integer from 0 to 65535, got '70000'"],
      [["--rate", "0"], "--rate must be a number above 0 and at most 1, got '0'"],
      [["--mode", "c"], "--mode must be one of a, b, got 'c'"],
      [["--size", "big"], "--size must look like WIDTHxHEIGHT (e.g. 64x48), got 'big'"],
      [["--bogus"], "Unknown option '--bogus'"],
    ] as const) {
      const e = (() => {
        try {
          readFlags([...argv], FLAGS);
        } catch (x) {
          return x;
        }
      })();
      expect(e, argv.join(" ")).toBeInstanceOf(UsageError);
      expect((e as Error).message).toContain(message);
    }
  });
});

describe("generate's parameter flags", () => {
  it("set the options, inputs and CLI-only values their declarations say", () => {
    const v = paramValues({
      size: [64, 32],
      steps: 4,
      "no-rewrite": true,
      "no-cuda-graph": false,
      extend: true,
      image: "in.png",
      fps: 12,
      negative: "blur",
    });
    expect(v.options).toEqual({
      width: 64,
      height: 32,
      steps: 4,
      rewrite: false,
      extend: true,
      negativePrompt: "blur",
    });
    expect(v.files).toEqual({ image: "in.png" });
    expect(v.cliOnly).toEqual({ fps: 12 });
  });
});

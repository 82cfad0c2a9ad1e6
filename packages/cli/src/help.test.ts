// Every command answers --help and -h (exit 0, stdout) with help written from its
// declared flags; generate's lists every CLI parameter of the schema.
import { GENERATION_PARAMS, type ParamSpec, rangeText } from "@tessera/core/params";
import { describe, expect, it } from "vitest";
import { flagLines } from "./help.js";
import { COMMANDS } from "./main.js";
import { runMain as run } from "./testing/run-main.js";

describe("--help", () => {
  it("lists every command", async () => {
    for (const argv of [["--help"], ["-h"], ["help"], []]) {
      const r = await run(...argv);
      expect(r.code).toBe(0);
      for (const name of Object.keys(COMMANDS)) expect(r.out).toContain(`tessera ${name}`);
    }
  });

  for (const [name, command] of Object.entries(COMMANDS))
    it(`${name} answers --help and -h with its usage and every flag`, async () => {
      const flags =
        typeof command.help.flags === "function" ? await command.help.flags() : command.help.flags;
      for (const h of ["--help", "-h"]) {
        const r = await run(name, h);
        expect(r.code, r.err).toBe(0);
        expect(r.err).toBe("");
        expect(r.out).toMatch(new RegExp(`^usage: tessera ${name}`));
        for (const flag of [...Object.keys(flags), "help"]) expect(r.out).toMatch(new RegExp(`--${flag}\\b`));
      }
    });

  it("takes --help after other arguments, even ones that would be refused", async () => {
    const r = await run("generate", "a red ball", "--steps", "0", "--help");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^usage: tessera generate PROMPT/);
    // After --, --help is a word of the prompt, and the prompt still needs its flags checked.
    const words = await run("generate", "--steps", "0", "--", "--help");
    expect(words.code).toBe(2);
    expect(words.err).toMatch(/--steps/);
  });

  it("lists every CLI parameter of the schema in generate's help, with its range and default", async () => {
    const r = await run("generate", "--help");
    const params: readonly ParamSpec[] = GENERATION_PARAMS;
    const onCli = params.filter((p) => p.surfaces.includes("cli") && !p.cli?.positional);
    expect(onCli.length).toBeGreaterThan(10);
    for (const p of onCli) {
      const line = r.out
        .split("\n")
        .find((l) => l.includes(`--${p.cli?.flag} `) || l.endsWith(`--${p.cli?.flag}`));
      expect(line, p.key).toBeDefined();
      if (!p.cli?.negates && rangeText(p)) expect(line, p.key).toContain(rangeText(p));
    }
    expect(r.out).toMatch(/--steps N +denoising steps — 1 to 1000; default: the model's/);
    expect(r.out).toMatch(/--strength X .*default: 0\.8/);
  });

  it("writes one line per flag with its range and default", () => {
    const lines = flagLines({
      port: { kind: "integer", value: "N", min: 0, max: 65535, default: 8080, description: "the port" },
      mode: { kind: "choice", choices: ["a", "b"], default: "a", description: "the mode" },
      quiet: { kind: "boolean", short: "q", description: "say less" },
    });
    expect(lines).toEqual([
      "      --port N    the port — 0 to 65535; default: 8080",
      "      --mode a|b  the mode — default: a",
      "  -q, --quiet     say less",
      "  -h, --help      show this help",
    ]);
  });
});

// `tessera serve` and `tessera worker` pick their model like `tessera generate`: with
// no --model (and no $TESSERA_MODEL), the bundled demo model. serve's own flags.
import { DEMO_MODEL_DIR, hasDemoModel } from "@tessera/core";
import { afterEach, describe, expect, it } from "vitest";
import { UsageError } from "./args.js";
import { SERVE_HELP } from "./commands/serve.js";
import { generatorFlags, publicUrlsFlag } from "./commands/service.js";
import { bytesValue } from "./flags.js";
import { commandHelp } from "./help.js";

describe("serve and worker's model", () => {
  const saved = process.env.TESSERA_MODEL;
  afterEach(() => {
    if (saved === undefined) delete process.env.TESSERA_MODEL;
    else process.env.TESSERA_MODEL = saved;
  });

  it("is the bundled demo model when no --model is given", () => {
    delete process.env.TESSERA_MODEL;
    if (hasDemoModel()) expect(generatorFlags({}).modelDir).toBe(DEMO_MODEL_DIR);
    else expect(() => generatorFlags({})).toThrow(/no bundled demo model/);
  });

  it("is --model, then $TESSERA_MODEL, when given", () => {
    process.env.TESSERA_MODEL = "/models/from-env";
    expect(generatorFlags({}).modelDir).toBe("/models/from-env");
    expect(generatorFlags({ model: "/models/flag" }).modelDir).toBe("/models/flag");
  });
});

describe("serve's access and admission flags", () => {
  it("are listed by serve --help", async () => {
    const text = await commandHelp(SERVE_HELP);
    for (const flag of ["--public-url URL", "--open", "--memory-budget SIZE", "--max-image-megapixels N"])
      expect(text).toContain(flag);
  });

  it("read --memory-budget as an amount of memory", () => {
    expect(bytesValue("memory-budget", "4GiB")).toBe(4 * 2 ** 30);
    expect(bytesValue("memory-budget", "512M")).toBe(512 * 2 ** 20);
    expect(bytesValue("memory-budget", "1.5 GB")).toBe(1.5e9);
    expect(bytesValue("memory-budget", "0")).toBe(0);
    expect(() => bytesValue("memory-budget", "lots")).toThrow(/--memory-budget must be a size such as 24GiB/);
    expect(() => bytesValue("memory-budget", "4 parsecs")).toThrow(UsageError);
  });

  it("read --public-url as http(s) origins, comma-separated", () => {
    expect(publicUrlsFlag(undefined)).toEqual([]);
    expect(publicUrlsFlag("https://video.example.com/, http://10.0.0.5:8080")).toEqual([
      "https://video.example.com",
      "http://10.0.0.5:8080",
    ]);
    expect(() => publicUrlsFlag("video.example.com")).toThrow(/--public-url must be http/);
  });
});

// `tessera serve` and `tessera worker` pick their model like `tessera generate`: with
// no --model (and no $TESSERA_MODEL), the bundled demo model.
import { DEMO_MODEL_DIR, hasDemoModel } from "@tessera/core";
import { afterEach, describe, expect, it } from "vitest";
import { generatorFlags } from "./commands/service.js";

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

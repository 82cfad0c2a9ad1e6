// LoRA merging against the golden tensors of training/make_golden_lora.py (PEFT, ComfyUI,
// Kohya and full-delta files at two strengths, and several at once): see lora.ts. Skips,
// saying why, where the fixtures have not been generated.
import { describe, expect, it } from "vitest";
import { fmtErr, type GoldenResult } from "./fixture.js";
import { loraGoldenMissing, runLoraGoldenChecks } from "./lora.js";

const missing = loraGoldenMissing();

if (missing) it.skip(`golden LoRA checks: ${missing}`, () => {});

describe.runIf(!missing)("LoRA merging vs the float64 reference (make_golden_lora.py)", () => {
  it("merges every case within 1e-4, removes them exactly, and leaks nothing", async () => {
    const results: GoldenResult[] = await runLoraGoldenChecks();
    for (const r of results)
      console.log(
        `golden ${r.pass ? "PASS" : "FAIL"} ${r.name}: error ${fmtErr(r.error)} (bound ${fmtErr(r.bound)}); ${r.detail}`,
      );
    // Four files at two strengths, several at once, the exact removal, the leak check.
    expect(results.length).toBe(4 * 2 + 1 + 2);
    for (const r of results)
      expect(r.pass, `${r.name}: error ${fmtErr(r.error)}, bound ${fmtErr(r.bound)}; ${r.detail}`).toBe(true);
  }, 120_000);
});

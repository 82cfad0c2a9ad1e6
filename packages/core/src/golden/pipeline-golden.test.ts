// Whole WanPipeline.generate() runs against the float64 reference of
// training/make_golden.py (wan_pipeline): see pipeline.ts. Skips, saying why, where the
// fixtures are absent.
import { describe, expect, it } from "vitest";
import { fmtErr, type GoldenResult } from "./fixture.js";
import { pipelineGoldenMissing, runPipelineGoldenChecks } from "./pipeline.js";

const missing = pipelineGoldenMissing();

if (missing) it.skip(`golden pipeline checks: ${missing}`, () => {});

describe.runIf(!missing)(
  "WanPipeline.generate vs the float64 reference (make_golden.py wan_pipeline)",
  () => {
    it("gives each case's latents within 1e-3 from the same noise and prompt embeddings, and leaks nothing", async () => {
      const results: GoldenResult[] = await runPipelineGoldenChecks();
      for (const r of results)
        console.log(
          `golden ${r.pass ? "PASS" : "FAIL"} ${r.name}: error ${fmtErr(r.error)} (bound ${fmtErr(r.bound)}); ${r.detail}`,
        );
      // UniPC and Euler: the noise and the latents each, then the leak check.
      expect(results.length).toBe(2 * 2 + 1);
      for (const r of results)
        expect(r.pass, `${r.name}: error ${fmtErr(r.error)}, bound ${fmtErr(r.bound)}; ${r.detail}`).toBe(
          true,
        );
    }, 120_000);
  },
);

// Wan2.2 A14B's two-expert schedule against the float64 reference of
// training/make_golden_a14b.py: see experts.ts. In CI it must be there; elsewhere it
// skips, saying why, where the fixture has not been generated.
import { liveTensorCount } from "@tessera/native";
import { describe, expect, it } from "vitest";
import { a14bGoldenMissing, runA14bGoldenChecks } from "./experts.js";
import { fmtErr, type GoldenResult } from "./fixture.js";

const missing = a14bGoldenMissing();

if (missing && !process.env.CI) it.skip(`golden two-expert checks: ${missing}`, () => {});

describe.runIf(!missing || process.env.CI)(
  "two experts vs the float64 reference (make_golden_a14b.py)",
  () => {
    it("hands over at the boundary, each expert with its guidance, within 1e-3; the swap changes no bit", async () => {
      const before = liveTensorCount();
      const results: GoldenResult[] = await runA14bGoldenChecks();
      for (const r of results)
        console.log(
          `golden ${r.pass ? "PASS" : "FAIL"} ${r.name}: error ${fmtErr(r.error)} (bound ${fmtErr(r.bound)}); ${r.detail}`,
        );
      expect(results.map((r) => r.name)).toEqual([
        "a14b noise",
        "a14b schedule",
        "a14b experts per step",
        "a14b swap",
      ]);
      for (const r of results)
        expect(r.pass, `${r.name}: error ${fmtErr(r.error)}, bound ${fmtErr(r.bound)}; ${r.detail}`).toBe(
          true,
        );
      expect(liveTensorCount()).toBe(before);
    }, 120_000);
  },
);

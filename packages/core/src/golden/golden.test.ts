// The TypeScript models against golden tensors from an independent PyTorch
// implementation: the checks and their bounds live in checks.ts (no vitest there, so
// that dist/golden/run.js runs them on a GPU host); this file runs them under vitest.
//
// By default the models run on the CPU in f32 and must agree with the float64 reference
// to ‖out − ref‖ / ‖ref‖ ≤ 1e-4. TESSERA_GOLDEN_DEVICE=cuda TESSERA_GOLDEN_DTYPE=bf16 runs
// the same checks on the GPU, against 2 × PyTorch's own bf16 error (floored at 5e-3).
// TESSERA_GOLDEN_DIR overrides the fixtures' folder.
import type { DType } from "@tessera/native";
import { liveTensorCount } from "@tessera/native";
import { beforeAll, describe, expect, it } from "vitest";
import { GOLDEN_FIXTURES, goldenCheckNames, runGoldenChecks } from "./checks.js";
import { fmtErr, type GoldenResult, goldenDir, goldenRunnable, hasGoldenFixture } from "./fixture.js";

const DEVICE = process.env.TESSERA_GOLDEN_DEVICE ?? "cpu";
const DTYPE = (process.env.TESSERA_GOLDEN_DTYPE ?? "f32") as DType;

const runnable = goldenRunnable(DEVICE, DTYPE);

if (!runnable)
  it.skip(`golden: not run in ${DTYPE} on the CPU (the CPU backend computes in f32; set TESSERA_GOLDEN_DEVICE=cuda)`, () => {});

describe.runIf(runnable)("golden tensors vs the PyTorch reference", () => {
  const results = new Map<string, GoldenResult>();
  let before = 0;
  let after = 0;

  beforeAll(async () => {
    before = liveTensorCount();
    for (const r of await runGoldenChecks({ device: DEVICE, dtype: DTYPE })) results.set(r.name, r);
    after = liveTensorCount();
    for (const r of results.values())
      console.log(
        `golden ${r.pass ? "PASS" : "FAIL"} ${r.name} (${DEVICE} ${DTYPE}): error ${fmtErr(r.error)} (bound ${fmtErr(r.bound)}); ${r.detail}`,
      );
  }, 300_000);

  const names = goldenCheckNames(DEVICE);
  for (const name of names)
    it(name, () => {
      const r = results.get(name);
      expect(r, `${name}: no result`).toBeDefined();
      const { error, bound, pass, detail } = r as GoldenResult;
      expect(pass, `${name}: error ${fmtErr(error)}, bound ${fmtErr(bound)}; ${detail}`).toBe(true);
    });

  it("gives exactly the listed results", () => {
    expect([...results.keys()]).toEqual(names);
  });

  it("releases every tensor the checks made", () => {
    expect(after).toBe(before);
  });

  it("has every fixture", () => {
    for (const n of GOLDEN_FIXTURES)
      expect(hasGoldenFixture(n), `${n}.safetensors in ${goldenDir()}`).toBe(true);
  });
});

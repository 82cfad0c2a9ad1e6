import { describe, expect, it } from "vitest";
import { cudaStatus, Device } from "../device.js";
import { liveTensorCount } from "../scope.js";
import { allCases } from "./cases.js";
import { runCase } from "./conformance.js";
import { freshSeed } from "./random.js";

const cuda = cudaStatus();
const backends = [
  { device: Device.cpu, available: true, reason: "" },
  { device: Device.cuda(0), available: cuda.available, reason: cuda.reason },
];

for (const b of backends) {
  const label = b.available ? b.device.name : `${b.device.name} (skipped: ${b.reason})`;
  describe(`conformance on ${label}`, () => {
    for (const c of allCases) {
      const dtypes = b.device.kind === "cpu" ? (["f32"] as const) : c.dtypes;
      for (const dtype of dtypes) {
        it.skipIf(!b.available)(`${c.name} [${dtype}]`, async () => {
          const before = liveTensorCount();
          const r = await runCase(c, b.device, dtype, freshSeed());
          expect(r.message ?? "", r.message).toBe("");
          expect(r.pass).toBe(true);
          expect(liveTensorCount()).toBe(before);
        });
      }
    }
  });
}

// Standalone conformance runner for the GPU host (no test framework there):
//   node dist/testing/run-conformance.js [--out result.json] [--filter substr]
// Runs every case on every available backend and writes one record per run.
import { writeFileSync } from "node:fs";
import { cudaStatus, Device } from "../device.js";
import { allCases } from "./cases.js";
import { type CaseResult, runCase } from "./conformance.js";
import { freshSeed } from "./random.js";

const args = process.argv.slice(2);
const outPath = args.includes("--out") ? args[args.indexOf("--out") + 1] : undefined;
const filter = args.includes("--filter") ? (args[args.indexOf("--filter") + 1] ?? "") : "";
const only = args.includes("--device") ? (args[args.indexOf("--device") + 1] ?? "") : "";
const commit = args.includes("--commit") ? (args[args.indexOf("--commit") + 1] ?? "") : "";
// Under compute-sanitizer every kernel runs far slower: skip the CPU side and the largest cases.
const sanitizer = args.includes("--sanitizer");

const status = cudaStatus();
const devices = [Device.cpu];
if (status.available) for (let i = 0; i < status.count && i < 1; i++) devices.push(Device.cuda(i));
else console.log(`cuda: not available (${status.reason})`);

const results: CaseResult[] = [];
for (const device of devices) {
  if (only && device.kind !== only) continue;
  for (const c of allCases) {
    if (filter && !c.name.includes(filter)) continue;
    if (sanitizer && c.heavy) continue;
    const dtypes = device.kind === "cpu" ? (["f32"] as const) : c.dtypes;
    for (const dtype of dtypes) {
      const r = await runCase(c, device, dtype, freshSeed());
      results.push(r);
      const mark = r.pass ? "PASS" : "FAIL";
      console.log(
        `${mark} ${device.name} ${c.name} [${dtype}] err=${r.error.toExponential(2)} tol=${r.tolerance}${r.message ? ` ${r.message}` : ""}`,
      );
    }
  }
}
const failed = results.filter((r) => !r.pass).length;
console.log(`${results.length - failed} passed, ${failed} failed`);
if (outPath) {
  const info = devices.map((d) => d.info());
  const record = {
    date: new Date().toISOString(),
    commit,
    node: process.version,
    devices: info,
    summary: { passed: results.length - failed, failed },
    results,
  };
  writeFileSync(outPath, `${JSON.stringify(record, null, 1)}\n`);
}
process.exitCode = failed ? 1 : 0;

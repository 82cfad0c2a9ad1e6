// The golden checks (checks.ts) without a test framework, for the GPU host:
//   node dist/golden/run.js [--device cpu|cuda|cuda:N] [--dtype f32|bf16|f16] [--out result.json]
// Prints a PASS/FAIL line per check and "N passed, N failed"; exits 1 when any check
// fails (or nothing could run). The JSON holds the date, the device's info, the commit
// (env COMMIT) and every result. Fixtures: ../../test-fixtures/golden from this file,
// or TESSERA_GOLDEN_DIR.
import { writeFileSync } from "node:fs";
import { Device, type DType } from "@tessera/native";
import { runGoldenChecks } from "./checks.js";
import { a14bGoldenMissing, runA14bGoldenChecks } from "./experts.js";
import { fmtErr, type GoldenResult, goldenDir } from "./fixture.js";
import { pipelineGoldenMissing, runPipelineGoldenChecks } from "./pipeline.js";

const USAGE =
  "usage: node dist/golden/run.js [--device cpu|cuda|cuda:N] [--dtype f32|bf16|f16] [--out file.json]";

function parseArgs(argv: readonly string[]): { device: string; dtype: DType; out?: string } {
  const opts: { device: string; dtype: DType; out?: string } = { device: "cpu", dtype: "f32" };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i] as string;
    const value = argv[i + 1];
    if (flag === "--help" || flag === "-h") {
      console.log(USAGE);
      process.exit(0);
    }
    if (!["--device", "--dtype", "--out"].includes(flag))
      throw new Error(`unknown argument '${flag}'\n${USAGE}`);
    if (value === undefined || value.startsWith("--")) throw new Error(`${flag} needs a value\n${USAGE}`);
    i++;
    if (flag === "--device") opts.device = value;
    else if (flag === "--out") opts.out = value;
    else if (value === "f32" || value === "bf16" || value === "f16") opts.dtype = value;
    else throw new Error(`--dtype: '${value}' is not f32, bf16 or f16`);
  }
  return opts;
}

async function main(): Promise<number> {
  const { device, dtype, out } = parseArgs(process.argv.slice(2));
  const info = Device.parse(device).info();
  const commit = process.env.COMMIT ?? "unknown";
  console.log(`golden checks on ${info.name} (${info.description}) in ${dtype}, fixtures ${goldenDir()}`);
  const started = performance.now();
  const results: GoldenResult[] = await runGoldenChecks({
    device,
    dtype,
    onResult: (r) =>
      console.log(
        `${r.pass ? "PASS" : "FAIL"} ${r.name}: error ${fmtErr(r.error)} (bound ${fmtErr(r.bound)}); ${r.detail}`,
      ),
  });
  // Whole pipeline runs (pipeline.ts), where their fixture is present.
  if (pipelineGoldenMissing() === null)
    for (const r of await runPipelineGoldenChecks({ device, dtype })) {
      console.log(
        `${r.pass ? "PASS" : "FAIL"} ${r.name}: error ${fmtErr(r.error)} (bound ${fmtErr(r.bound)}); ${r.detail}`,
      );
      results.push(r);
    }
  // The two-expert schedule (experts.ts), where its fixture is present.
  if (a14bGoldenMissing() === null)
    for (const r of await runA14bGoldenChecks({ device, dtype })) {
      console.log(
        `${r.pass ? "PASS" : "FAIL"} ${r.name}: error ${fmtErr(r.error)} (bound ${fmtErr(r.bound)}); ${r.detail}`,
      );
      results.push(r);
    }
  const seconds = (performance.now() - started) / 1000;
  const failed = results.filter((r) => !r.pass).length;
  const passed = results.length - failed;
  console.log(`${passed} passed, ${failed} failed (${seconds.toFixed(1)} s)`);
  if (out) {
    const json = {
      date: new Date().toISOString(),
      device: info,
      dtype,
      commit,
      node: process.version,
      fixtures: goldenDir(),
      seconds: Number(seconds.toFixed(3)),
      passed,
      failed,
      // NaN (nothing measured) is written as null.
      results,
    };
    writeFileSync(out, `${JSON.stringify(json, null, 1)}\n`);
  }
  return failed || results.length === 0 ? 1 : 0;
}

try {
  process.exitCode = await main();
} catch (e) {
  console.error(`golden checks: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
}

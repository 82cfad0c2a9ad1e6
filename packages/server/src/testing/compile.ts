// Child-process tests run plain JS: compile this package (only this package) into
// `outDir`, next to its node_modules so that its imports resolve.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

export const serverPackageDir = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Compiles the package into `outDir` (under node_modules/.cache) and checks `script` came out. */
export async function compileForChildProcesses(outDir: string, script: string): Promise<void> {
  const require = createRequire(import.meta.url);
  const tsc = join(dirname(require.resolve("typescript/package.json")), "bin", "tsc");
  await rm(outDir, { recursive: true, force: true });
  await promisify(execFile)(
    process.execPath,
    [
      tsc,
      "-p",
      join(serverPackageDir, "tsconfig.build.json"),
      "--outDir",
      outDir,
      "--declaration",
      "false",
      "--sourceMap",
      "false",
    ],
    { cwd: serverPackageDir },
  ).catch((e: { stdout?: string }) => {
    // Type errors still emit JavaScript; only a missing output is fatal.
    if (!existsSync(script))
      throw new Error(`could not compile the server for child processes: ${e.stdout ?? e}`);
  });
}

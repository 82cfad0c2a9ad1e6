// What every result file records about the run: the commit and the CPU it ran on.
import { execSync } from "node:child_process";
import { availableParallelism, cpus } from "node:os";

/** `git describe --always --dirty` of the checkout, or "unknown" outside one. */
export function gitCommit() {
  try {
    return execSync("git describe --always --dirty", { encoding: "utf8" }).trim();
  } catch {
    return "unknown";
  }
}

/** "cpu: <model> x<threads>", the device string of CPU results. */
export function cpuDevice() {
  return `cpu: ${cpus()[0]?.model ?? "?"} x${availableParallelism()}`;
}

// How much memory a generation may take: a request whose estimate (the model's own,
// VideoGenerator.estimateMemory) is above it is refused at submission, instead of
// being accepted and then killing the server (and, restarted, killing it again).
// On a GPU the budget is the card's memory; on the CPU it is the container's limit
// (the cgroup's, which the kernel enforces by killing) or else the machine's RAM.
import { readFileSync } from "node:fs";
import { totalmem } from "node:os";
import { join } from "node:path";
import type { GeneratorInfo } from "./generator.js";

/** The share of the device's memory a generation may plan on; the rest is the server's own and the headroom. */
export const BUDGET_SHARE = 0.9;
// cgroup v1 writes "no limit" as a huge page-aligned number.
const NO_LIMIT_V1 = 2 ** 60;

function readNumber(path: string): number | null {
  try {
    const v = readFileSync(path, "utf8").trim();
    if (v === "max") return null;
    const n = Number(v);
    return Number.isFinite(n) && n > 0 && n < NO_LIMIT_V1 ? n : null;
  } catch {
    return null;
  }
}

/**
 * The memory limit of this process's cgroup (the tightest of it and its parents), in
 * bytes, or null when there is none. Reads cgroup v2 (memory.max, at /sys/fs/cgroup or,
 * on hybrid hosts, /sys/fs/cgroup/unified) and v1 (memory.limit_in_bytes) from the path
 * /proc/self/cgroup gives. `root` is where / is (for tests).
 */
export function cgroupMemoryLimit(root = "/"): number | null {
  let lines: string[] = [];
  try {
    lines = readFileSync(join(root, "proc/self/cgroup"), "utf8").split("\n");
  } catch {}
  const pathOf = (match: (controllers: string[], hierarchy: string) => boolean): string | null => {
    for (const l of lines) {
      const [hierarchy = "", controllers = "", ...rest] = l.split(":");
      if (rest.length > 0 && match(controllers.split(","), hierarchy)) return rest.join(":") || "/";
    }
    return null;
  };
  let limit: number | null = null;
  // Inside a container the namespace's root is the container's cgroup; outside, walk up from ours.
  const walk = (base: string, own: string | null, file: string) => {
    for (let p = own ?? "/"; ; p = p.slice(0, p.lastIndexOf("/")) || "/") {
      const n = readNumber(join(root, base, p, file));
      if (n !== null && (limit === null || n < limit)) limit = n;
      if (p === "/") break;
    }
  };
  const v2 = pathOf((_c, h) => h === "0");
  walk("sys/fs/cgroup", v2, "memory.max");
  walk("sys/fs/cgroup/unified", v2, "memory.max");
  walk(
    "sys/fs/cgroup/memory",
    pathOf((c) => c.includes("memory")),
    "memory.limit_in_bytes",
  );
  return limit;
}

/** The default budget for a generator: its device's memory, or the container's (else the machine's) on the CPU. */
export function defaultMemoryBudget(info: GeneratorInfo, root = "/"): { bytes: number; from: string } {
  if (info.deviceMemory !== undefined && info.deviceMemory > 0)
    return { bytes: Math.floor(BUDGET_SHARE * info.deviceMemory), from: `${info.device}'s memory` };
  const cg = cgroupMemoryLimit(root);
  if (cg !== null) return { bytes: Math.floor(BUDGET_SHARE * cg), from: "the container's memory limit" };
  return { bytes: Math.floor(BUDGET_SHARE * totalmem()), from: "the machine's memory" };
}

export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(1)} GiB`;
  return `${Math.round(n / 2 ** 20)} MiB`;
}

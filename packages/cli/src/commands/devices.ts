// `tessera devices`: the devices Tessera can run on, the CPU first, and why CUDA
// is unavailable when it is.
import { cudaStatus, devices } from "@tessera/native";
import { type Flags, noArguments, readFlags } from "../flags.js";
import type { CommandHelp } from "../help.js";

const FLAGS = {
  json: { kind: "boolean", description: "print the devices and CUDA's status as JSON" },
} as const satisfies Flags;

export const DEVICES_HELP: CommandHelp = {
  usage: ["devices [--json]"],
  summary: "List the devices Tessera can run on (the CPU, then each CUDA GPU), with their memory.",
  flags: FLAGS,
};

export function devicesCommand(argv: string[], out: (s: string) => void): number {
  const { values, positionals } = readFlags(argv, FLAGS);
  noArguments("devices", positionals);
  const list = devices().map((d) => ({ ...d.info(), memory: d.memoryStats() }));
  const cuda = cudaStatus();
  if (values.json) {
    out(JSON.stringify({ devices: list, cuda }, null, 2));
    return 0;
  }
  for (const d of list) {
    const extra =
      d.name === "cpu"
        ? `${d.threads} threads`
        : `${(d.totalMemory / 2 ** 30).toFixed(1)} GiB, sm_${d.sm}${d.hasBlas ? ", cuBLASLt" : ""}`;
    out(`${d.name.padEnd(8)} ${d.description} (${extra})`);
  }
  if (!cuda.available) out(`cuda     unavailable: ${cuda.reason}`);
  return 0;
}

import { cudaStatus, devices } from "@tessera/native";
import { parse } from "../args.js";

export function devicesCommand(argv: string[], out: (s: string) => void): number {
  const { values } = parse(argv, { json: { type: "boolean" } });
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

// Weight offload's load-time choice (the mechanism is models/wan/block-offload.ts):
// a memory cap as the user writes it ("24GiB"), and whether a model must offload
// its transformer blocks to fit under it.

import type { WanTransformerConfig } from "../models/wan/config.js";
import { wanTransformerParams } from "../models/wan/params.js";

const UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 2 ** 10,
  kb: 1e3,
  kib: 2 ** 10,
  m: 2 ** 20,
  mb: 1e6,
  mib: 2 ** 20,
  g: 2 ** 30,
  gb: 1e9,
  gib: 2 ** 30,
  t: 2 ** 40,
  tb: 1e12,
  tib: 2 ** 40,
};

/**
 * Bytes from a size such as "24GiB", "24G" (binary, as nvidia-smi's GiB), "24GB"
 * (decimal), "512MiB" or a plain number of bytes. Throws a RangeError saying what
 * it expected; `what` names the option in the message.
 */
export function parseByteSize(v: string | number, what = "maxGpuMemory"): number {
  if (typeof v === "number") {
    if (!Number.isFinite(v) || v <= 0)
      throw new RangeError(`${what} must be a positive number of bytes, got ${v}`);
    return Math.floor(v);
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(v);
  const unit = m ? UNITS[(m[2] as string).toLowerCase()] : undefined;
  const bytes = m && unit !== undefined ? Math.floor(Number(m[1]) * unit) : Number.NaN;
  if (!(bytes > 0))
    throw new RangeError(
      `${what} must be a size such as 24GiB, 24G, 24GB or 512MiB (a positive number and a unit), got '${v}'`,
    );
  return bytes;
}

/** Parameters of one transformer block (every block has the same). */
export function blockParameterCount(c: WanTransformerConfig): number {
  let n = 0;
  for (const [name, spec] of wanTransformerParams(c))
    if (name.startsWith("blocks.0.")) n += spec.shape.reduce((a, b) => a * b, 1);
  return n;
}

/**
 * Whether to offload: `mode` true or false decides; left undefined ("auto"), offload
 * when the estimated peak of a resident run exceeds `cap` (no cap: never).
 */
export function chooseOffload(mode: boolean | undefined, cap: number | null, residentTotal: number): boolean {
  if (mode !== undefined) return mode;
  return cap !== null && residentTotal > cap;
}

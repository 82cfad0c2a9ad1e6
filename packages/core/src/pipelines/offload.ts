// Weight offload's load-time choice (the mechanism is models/wan/block-offload.ts):
// a memory cap as the user writes it ("24GiB"), and whether a model must offload
// its transformer blocks to fit under it.

import type { WanTransformerConfig } from "../models/wan/config.js";
import { wanTransformerParams } from "../models/wan/params.js";

export { parseByteSize } from "../params/bytes.js";

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

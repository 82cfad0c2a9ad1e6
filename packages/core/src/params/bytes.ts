// Sizes of memory as users write them ("24GiB", "512MiB", "3G"), for every surface that
// takes one (the CLI's memory flags, WanPipeline.load's maxGpuMemory): one parser, one set of units.

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
 * it expected; `what` names the option in the message. `allowZero`: 0 is a value (an
 * option whose 0 means "off").
 */
export function parseByteSize(v: string | number, what = "maxGpuMemory", allowZero = false): number {
  const ok = (b: number) => b > 0 || (allowZero && b === 0);
  if (typeof v === "number") {
    if (!Number.isFinite(v) || !ok(v))
      throw new RangeError(`${what} must be a positive number of bytes, got ${v}`);
    return Math.floor(v);
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(v);
  const unit = m ? UNITS[(m[2] as string).toLowerCase()] : undefined;
  const bytes = m && unit !== undefined ? Math.floor(Number(m[1]) * unit) : Number.NaN;
  if (!ok(bytes))
    throw new RangeError(
      `${what} must be a size such as 24GiB, 24G, 24GB or 512MiB (a positive number and a unit), got '${v}'`,
    );
  return bytes;
}

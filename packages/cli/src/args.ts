// Flag parsing and validation for the CLI: every bad flag is a UsageError that
// names the flag, printed without a stack trace, exit code 2.
import { type ParseArgsConfig, parseArgs } from "node:util";

type Options = NonNullable<ParseArgsConfig["options"]>;
type Parsed<T extends Options> = ReturnType<
  typeof parseArgs<{ options: T; allowPositionals: true; strict: true }>
>;

export class UsageError extends Error {
  override name = "UsageError";
}

export function parse<const T extends Options>(argv: string[], options: T): Parsed<T> {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true } as const);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

export function intFlag(name: string, v: string | undefined, def: number, min: number, max: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!/^-?\d+$/.test(v) || !Number.isSafeInteger(n) || n < min || n > max)
    throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got '${v}'`);
  return n;
}

export function sizeFlag(v: string | undefined, def: [number, number]): [number, number] {
  if (v === undefined) return def;
  const m = /^(\d{1,5})x(\d{1,5})$/.exec(v);
  if (!m) throw new UsageError(`--size must look like WIDTHxHEIGHT (e.g. 64x48), got '${v}'`);
  return [Number(m[1]), Number(m[2])];
}

export function choiceFlag<T extends string>(
  name: string,
  v: string | undefined,
  choices: readonly T[],
  def: T,
): T {
  if (v === undefined) return def;
  if (!(choices as readonly string[]).includes(v))
    throw new UsageError(`--${name} must be one of ${choices.join(", ")}, got '${v}'`);
  return v as T;
}

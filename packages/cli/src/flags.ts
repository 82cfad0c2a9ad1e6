// Declared flags: each command lists its flags once (kind, range, default, one
// line of help), and the same declaration parses argv, checks each value (a
// UsageError naming the flag) and writes the command's --help.
import type { ParamSpec } from "@tessera/core/params";
import { parseByteSize, parseText } from "@tessera/core/params";
import { choiceFlag, intFlag, parse, sizeFlag, UsageError } from "./args.js";

interface FlagBase {
  short?: string;
  /** What the value looks like in help: N, DIR, FILE. */
  value?: string;
  /** The default in words where it is worked out at run time ("bf16 on a GPU, f32 on the CPU"). */
  defaultText?: string;
  /** The range in words where the kind does not say it. */
  range?: string;
}

/** One line of help: what the flag does. */
type Said = { description: string };

export type FlagSpec = FlagBase &
  (
    | ({ kind: "string"; default?: string } & Said)
    | ({ kind: "boolean" } & Said)
    | ({ kind: "integer"; min: number; max: number; default?: number } & Said)
    | ({ kind: "number"; min: number; max: number; exclusiveMin?: boolean; default?: number } & Said)
    | ({ kind: "choice"; choices: readonly string[]; default?: string } & Said)
    | ({ kind: "size"; default?: readonly [number, number] } & Said)
    /** An amount of memory: 4GiB, 512MiB, 3G, or plain bytes; parsed to bytes. */
    | ({ kind: "bytes"; default?: number } & Said)
    /**
     * A generation parameter: parsed, checked and described as its declaration in
     * @tessera/core/params says.
     */
    | { kind: "param"; param: ParamSpec; description?: string }
  );

export type Flags = Record<string, FlagSpec>;

type ValueOf<F extends FlagSpec> = F extends { kind: "boolean" }
  ? boolean
  : F extends { kind: "integer" | "number" | "bytes" }
    ? number
    : F extends { kind: "choice"; choices: readonly (infer C)[] }
      ? C
      : F extends { kind: "size" }
        ? [number, number]
        : F extends { kind: "param" }
          ? unknown
          : string;

/** The parsed values: a flag with a default (and a boolean) always has one. */
export type FlagValues<T extends Flags> = {
  [K in keyof T]: T[K] extends { kind: "boolean" } | { default: unknown }
    ? ValueOf<T[K]>
    : ValueOf<T[K]> | undefined;
};

/** A number flag within [min, max] (or (min, max] with exclusiveMin). */
function numberValue(name: string, v: string, f: Extract<FlagSpec, { kind: "number" }>): number {
  const n = Number(v);
  const low = f.exclusiveMin ? n > f.min : n >= f.min;
  if (v.trim() === "" || !Number.isFinite(n) || !low || n > f.max)
    throw new UsageError(
      `--${name} must be a number ${f.exclusiveMin ? "above" : "from"} ${f.min} ${f.exclusiveMin ? "and at most" : "to"} ${f.max}, got '${v}'`,
    );
  return n;
}

export function bytesValue(name: string, v: string): number {
  try {
    return parseByteSize(v, `--${name}`, true);
  } catch (e) {
    if (e instanceof RangeError) throw new UsageError(e.message);
    throw e;
  }
}

/** A flag that takes no value: present is true (a boolean generation parameter included). */
export function isSwitch(f: FlagSpec): boolean {
  return f.kind === "boolean" || (f.kind === "param" && f.param.type.kind === "boolean");
}

/** A generation parameter whose flag may be given more than once (--lora A --lora B). */
export function isRepeatable(f: FlagSpec): boolean {
  return f.kind === "param" && f.param.cli?.repeatable === true;
}

function flagValue(name: string, f: FlagSpec, v: string | boolean | string[] | undefined): unknown {
  if (isSwitch(f)) return v === true;
  if (Array.isArray(v)) {
    // A repeatable parameter: each occurrence parsed on its own, the values joined in order.
    const all: unknown[] = [];
    for (const one of v) all.push(...(flagValue(name, f, one) as unknown[]));
    return all;
  }
  if (v === undefined || typeof v === "boolean") return "default" in f ? f.default : undefined;
  switch (f.kind) {
    case "string":
      return v;
    case "integer":
      return intFlag(name, v, 0, f.min, f.max);
    case "number":
      return numberValue(name, v, f);
    case "choice":
      return choiceFlag(name, v, f.choices, v);
    case "size":
      return sizeFlag(v, [0, 0]);
    case "bytes":
      return bytesValue(name, v);
    case "param": {
      const p = parseText(f.param, v, `--${name}`);
      if (!p.ok) throw new UsageError(p.message);
      return p.value;
    }
  }
}

/** Parses argv against the declared flags: typed values (UsageError naming a bad flag) and positionals. */
export function readFlags<const T extends Flags>(
  argv: string[],
  flags: T,
): { values: FlagValues<T>; positionals: string[] } {
  const options: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }> = {};
  for (const [name, f] of Object.entries(flags))
    options[name] = {
      type: isSwitch(f) ? "boolean" : "string",
      ...(f.short ? { short: f.short } : {}),
      ...(isRepeatable(f) ? { multiple: true } : {}),
    };
  const { values, positionals } = parse(argv, options);
  const typed: Record<string, unknown> = {};
  for (const [name, f] of Object.entries(flags))
    typed[name] = flagValue(
      name,
      f,
      (values as Record<string, string | boolean | string[] | undefined>)[name],
    );
  return { values: typed as FlagValues<T>, positionals };
}

/** Refuses positionals for a command that takes none. */
export function noArguments(command: string, positionals: string[]): void {
  if (positionals.length > 0) throw new UsageError(`${command} takes no arguments, got '${positionals[0]}'`);
}

// `tessera COMMAND --help`, written from the command's declared flags: the usage
// line, what the command does, then one line per flag with its range and default.
import { defaultText, rangeText } from "@tessera/core/params";
import { type FlagSpec, type Flags, isSwitch } from "./flags.js";

export interface CommandHelp {
  /** The usage line(s), each after "tessera ". */
  usage: readonly string[];
  /** What the command does, one line. */
  summary: string;
  /** The flags, or how to get them where their defaults need a module loaded (serve's limits). */
  flags: Flags | (() => Promise<Flags>);
  /** Lines said after the flags (sub-commands, environment variables, examples). */
  notes?: readonly string[];
}

/** "--steps N", "-o, --output FILE", "--dtype f32|bf16|f16". */
function flagNames(name: string, f: FlagSpec): string {
  let value = f.value;
  if (value === undefined && f.kind === "param") value = f.param.cli?.value;
  if (value === undefined && f.kind === "choice") value = f.choices.join("|");
  if (value === undefined && f.kind === "size") value = "WxH";
  if (value === undefined && f.kind === "bytes") value = "SIZE";
  if (isSwitch(f)) value = undefined;
  else value ??= "VALUE";
  return `${f.short ? `-${f.short}, ` : "    "}--${name}${value ? ` ${value}` : ""}`;
}

function flagRange(f: FlagSpec): string {
  if (f.range !== undefined) return f.range;
  switch (f.kind) {
    case "integer":
      return `${f.min} to ${f.max}`;
    case "number":
      return f.exclusiveMin ? `above ${f.min}, at most ${f.max}` : `${f.min} to ${f.max}`;
    case "choice":
      // Said by the value's spelling (--dtype f32|bf16|f16), unless it has its own.
      return f.value === undefined ? "" : f.choices.join("|");
    case "param":
      return f.param.cli?.negates ? "" : rangeText(f.param);
    default:
      return "";
  }
}

function flagDefault(f: FlagSpec): string {
  if (f.defaultText !== undefined) return f.defaultText;
  switch (f.kind) {
    case "boolean":
      return "";
    case "param":
      return f.param.cli?.negates ? "" : defaultText(f.param);
    case "size":
      return f.default ? f.default.join("x") : "";
    default:
      return f.default === undefined ? "" : String(f.default);
  }
}

function flagDescription(f: FlagSpec): string {
  if (f.description !== undefined) return f.description;
  if (f.kind !== "param") return "";
  // A parameter's description is a sentence; a help line starts in lower case, like the others.
  const d = (f.param.cli?.description ?? f.param.description).replace(/\.$/, "");
  return /^[A-Z][a-z]/.test(d) ? `${d[0]?.toLowerCase()}${d.slice(1)}` : d;
}

/** One line per flag: names, what it does, then its range and default. */
export function flagLines(flags: Flags): string[] {
  const all: [string, FlagSpec][] = [
    ...Object.entries(flags),
    ["help", { kind: "boolean", short: "h", description: "show this help" }],
  ];
  const names = all.map(([n, f]) => flagNames(n, f));
  const width = Math.min(28, Math.max(...names.map((n) => n.length)));
  return all.map(([, f], i) => {
    const range = flagRange(f);
    const def = flagDefault(f);
    const tail = [range, def ? `default: ${def}` : ""].filter((s) => s !== "").join("; ");
    const name = names[i] as string;
    const pad = name.length > width ? `\n  ${"".padEnd(width)}` : "".padEnd(width - name.length);
    return `  ${name}${pad}  ${flagDescription(f)}${tail ? ` — ${tail}` : ""}`;
  });
}

export async function commandHelp(c: CommandHelp): Promise<string> {
  const [first, ...more] = c.usage;
  const flags = typeof c.flags === "function" ? await c.flags() : c.flags;
  return [
    `usage: tessera ${first}`,
    ...more.map((u) => `       tessera ${u}`),
    "",
    c.summary,
    "",
    "options:",
    ...flagLines(flags),
    ...(c.notes && c.notes.length > 0 ? ["", ...c.notes] : []),
  ].join("\n");
}

/** `tessera --help`: each command's usage and what it does. */
export function overview(title: string, commands: readonly CommandHelp[]): string {
  return [
    title,
    "",
    "commands:",
    ...commands.flatMap((c) => [...c.usage.map((u) => `  tessera ${u}`), `      ${c.summary}`]),
    "  tessera help",
    "      This text. `tessera COMMAND --help` lists a command's flags, their ranges and defaults.",
  ].join("\n");
}

/** `--help` or `-h` among a command's arguments (before a `--` that ends the flags). */
export function wantsHelp(argv: readonly string[]): boolean {
  for (const a of argv) {
    if (a === "--") return false;
    if (a === "--help" || a === "-h") return true;
  }
  return false;
}

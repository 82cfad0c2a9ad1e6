// Result-file helpers of the GPU suites (lib/common.sh's `results`); no dependencies, so it runs
// with the Node that prepare.sh carries.
//   node results.mjs stamp FILE KEY=VALUE...
//       sets top-level fields of a JSON result (the date, device and commit a runner does not record).
//   node results.mjs sanitizer OUT KEY=VALUE... --log TOOL=FILE...
//       one record of compute-sanitizer runs over the conformance suite: per tool, the runner's
//       "N passed, M failed" line and the tool's summary line, from its log.
//   node results.mjs merge OUT KEY=VALUE... --part NAME=FILE...
//       one record holding several result files, each under its name (a dotted name nests:
//       golden.bf16); a part's per-case "results" list is replaced by its failed cases.
import { existsSync, readFileSync, writeFileSync } from "node:fs";

const [cmd, file, ...rest] = process.argv.slice(2);

function parse(args) {
  const fields = {};
  const named = { log: [], part: [] };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--log" || a === "--part") {
      const spec = args[++i] ?? "";
      const eq = spec.indexOf("=");
      if (eq < 1) fail(`${a} takes NAME=FILE, got '${spec}'`);
      named[a.slice(2)].push([spec.slice(0, eq), spec.slice(eq + 1)]);
      continue;
    }
    const eq = a.indexOf("=");
    if (eq < 1) fail(`expected KEY=VALUE, got '${a}'`);
    fields[a.slice(0, eq)] = a.slice(eq + 1);
  }
  return { fields, ...named };
}

function fail(message) {
  console.error(`results.mjs ${cmd ?? ""}: ${message}`);
  process.exit(2);
}

const readJson = (path) => JSON.parse(readFileSync(path, "utf8"));
const write = (path, value) => writeFileSync(path, `${JSON.stringify(value, null, 1)}\n`);

function lastMatch(text, re) {
  const lines = text.split("\n").filter((l) => re.test(l));
  return (
    lines
      .at(-1)
      ?.replace(/^=+\s*/, "")
      .trim() ?? null
  );
}

function slim(part) {
  if (!part || typeof part !== "object" || !Array.isArray(part.results)) return part;
  const { results, ...restOfPart } = part;
  return { ...restOfPart, failed: results.filter((r) => !r.pass) };
}

function setPath(target, dotted, value) {
  const keys = dotted.split(".");
  let node = target;
  for (const k of keys.slice(0, -1)) node = node[k] ??= {};
  node[keys.at(-1)] = value;
}

if (!file) fail("usage: results.mjs stamp|sanitizer|merge FILE ...");
const { fields, log, part } = parse(rest);
if (cmd === "stamp") {
  if (!existsSync(file)) fail(`${file} does not exist (did the run that writes it fail?)`);
  write(file, { ...readJson(file), ...fields });
} else if (cmd === "sanitizer") {
  const record = { ...fields };
  for (const [tool, path] of log) {
    if (!existsSync(path)) {
      record[tool] = { missing: `${path} was not written` };
      continue;
    }
    const text = readFileSync(path, "utf8");
    record[tool] = {
      cases: lastMatch(text, /^\d+ passed, \d+ failed/),
      summary:
        lastMatch(text, /(ERROR|RACECHECK) SUMMARY/) ?? "no summary: the run stopped early (see the log)",
    };
  }
  write(file, record);
} else if (cmd === "merge") {
  const record = { ...fields };
  for (const [name, path] of part)
    setPath(record, name, existsSync(path) ? slim(readJson(path)) : { missing: `${path} was not written` });
  write(file, record);
} else {
  fail(`unknown command '${cmd}'; use stamp, sanitizer or merge`);
}

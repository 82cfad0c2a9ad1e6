// The CLI in-process for tests: main() with its stdout and stderr lines collected.
import { main } from "../main.js";

export interface CliRun {
  code: number;
  out: string;
  err: string;
}

export async function runMain(...argv: string[]): Promise<CliRun> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(
    argv,
    (s) => out.push(s),
    (s) => err.push(s),
  );
  return { code, out: out.join("\n"), err: err.join("\n") };
}

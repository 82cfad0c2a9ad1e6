// What a generation says on stderr while it runs: the prompt as the model gets it,
// then a progress bar on a terminal or a plain line per step elsewhere.
import type { GenerateProgress, PreparedPrompt } from "@tessera/core";
import { formatDuration } from "../model-args.js";

/** Redraws one line on a terminal; prints a plain line per step otherwise. */
export function progressPrinter(tty: boolean, quiet: boolean, err: (s: string) => void) {
  let last = 0;
  return (p: GenerateProgress) => {
    const rate = p.elapsed / p.step;
    const tail = `${p.step}/${p.total}  ${formatDuration(rate)}/step  eta ${formatDuration(p.eta)}`;
    if (tty) {
      const width = 24;
      const filled = Math.round((p.step / p.total) * width);
      const line = `\rdenoising [${"#".repeat(filled)}${".".repeat(width - filled)}] ${tail}`;
      process.stderr.write(line.padEnd(last));
      last = line.length;
      if (p.step === p.total) process.stderr.write("\n");
    } else if (!quiet) err(`step ${tail}`);
    if (p.step === p.total && (tty || !quiet)) err("decoding with the VAE");
  };
}

/** For a model trained on one caption style: the rewritten prompt, so the user sees what the model is asked. */
export function sayRewrite(prepared: PreparedPrompt, say: (s: string) => void): void {
  const r = prepared.rewrite;
  if (!r) return;
  if (r.changed) say(`prompt rewritten for this model: "${r.caption}" (--no-rewrite sends it as typed)`);
  if (r.unknownWords.length > 0)
    say(`not understood, left out: ${r.unknownWords.map((w) => `"${w}"`).join(", ")}`);
  if (r.filledDefaults.length > 0) say(`filled in: ${r.filledDefaults.join(", ")}`);
}

// Command dispatch; kept apart from bin.ts so tests can call it in-process.
import { OpError, TesseraError } from "@tessera/native";
import { UsageError } from "./args.js";
import { devicesCommand } from "./commands/devices.js";
import { forwardCommand } from "./commands/forward.js";

export const HELP = `tessera — text-to-video on a diffusion transformer over spacetime patches

usage:
  tessera devices [--json]            list the devices Tessera can run on
  tessera forward [options]           run one forward pass of a Wan-family transformer with random weights
      --device cpu|cuda[:N]  (cpu)    --config tiny|wan2.1-1.3b (tiny)   --layers N
      --frames N (5)   --size WxH (64x64)   --dtype f32|bf16|f16   --seed N   --json
  tessera help                        this text
`;

export async function main(
  argv: string[],
  out = (s: string) => console.log(s),
  err = (s: string) => console.error(s),
) {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case "devices":
        return devicesCommand(rest, out);
      case "forward":
        return await forwardCommand(rest, out);
      case undefined:
      case "help":
      case "--help":
      case "-h":
        out(HELP);
        return 0;
      default:
        throw new UsageError(`unknown command '${cmd}'; run 'tessera help'`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      err(`tessera: ${e.message}`);
      return 2;
    }
    if (e instanceof OpError || e instanceof TesseraError) {
      err(`tessera: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

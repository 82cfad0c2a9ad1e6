// Command dispatch; kept apart from bin.ts so tests can call it in-process. Every
// command answers --help (and -h) with the help written from its declared flags.
import { OpError, TesseraError } from "@tessera/native";
import { UsageError } from "./args.js";
import { CREATE_MODEL_HELP, createModelCommand } from "./commands/create-model.js";
import { DEVICES_HELP, devicesCommand } from "./commands/devices.js";
import { FORWARD_HELP, forwardCommand } from "./commands/forward.js";
import { GENERATE_HELP, generateCommand } from "./commands/generate.js";
import { INFO_HELP, infoCommand } from "./commands/info.js";
import { KEYS_HELP, keysCommand } from "./commands/keys.js";
import { MODELS_HELP, modelsCommand } from "./commands/models.js";
import { SERVE_HELP, serveCommand } from "./commands/serve.js";
import { WORKER_HELP, workerCommand } from "./commands/worker.js";
import { type CommandHelp, commandHelp, overview, wantsHelp } from "./help.js";

type Print = (s: string) => void;

interface Command {
  help: CommandHelp;
  run(argv: string[], out: Print, err: Print): number | Promise<number>;
}

/** The commands, in the order `tessera --help` lists them. */
export const COMMANDS: Readonly<Record<string, Command>> = {
  generate: { help: GENERATE_HELP, run: generateCommand },
  models: { help: MODELS_HELP, run: (argv, out) => modelsCommand(argv, out) },
  info: { help: INFO_HELP, run: infoCommand },
  devices: { help: DEVICES_HELP, run: (argv, out) => devicesCommand(argv, out) },
  forward: { help: FORWARD_HELP, run: (argv, out) => forwardCommand(argv, out) },
  "create-model": { help: CREATE_MODEL_HELP, run: createModelCommand },
  serve: { help: SERVE_HELP, run: serveCommand },
  worker: { help: WORKER_HELP, run: workerCommand },
  keys: { help: KEYS_HELP, run: (argv, out) => keysCommand(argv, out) },
};

export const HELP = overview(
  "tessera — text-to-video on a diffusion transformer over spacetime patches",
  Object.values(COMMANDS).map((c) => c.help),
);

export async function main(
  argv: string[],
  out = (s: string) => console.log(s),
  err = (s: string) => console.error(s),
) {
  const [cmd, ...rest] = argv;
  try {
    if (cmd === undefined || cmd === "help" || cmd === "--help" || cmd === "-h") {
      out(HELP);
      return 0;
    }
    const command = Object.hasOwn(COMMANDS, cmd) ? COMMANDS[cmd] : undefined;
    if (!command) throw new UsageError(`unknown command '${cmd}'; run 'tessera help'`);
    if (wantsHelp(rest)) {
      out(await commandHelp(command.help));
      return 0;
    }
    return await command.run(rest, out, err);
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

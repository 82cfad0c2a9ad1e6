// `tessera worker`: takes jobs from the Redis queue that `tessera serve --queue`
// fills, one at a time, on one model. Run any number, on any hosts; each must see
// the serve's data folder (a shared mount) at --data, where inputs are read and
// outputs written. A killed worker's job is run again by another after about
// --lock-seconds + --stalled-seconds.
import type { QueueWorker, VideoGenerator } from "@tessera/server";
import { UsageError } from "../args.js";
import { type Flags, noArguments, readFlags } from "../flags.js";
import type { CommandHelp } from "../help.js";
import { runtimeFailure } from "./model-args.js";
import {
  dataFlag,
  GENERATOR_FLAGS,
  generatorFlags,
  loadGenerator,
  queueFlag,
  redactUrl,
  SERVICE_FLAGS,
  untilSignalled,
} from "./service.js";

const WORKER_FLAGS = {
  ...SERVICE_FLAGS,
  ...GENERATOR_FLAGS,
  // The lock is renewed every half of it from the event loop; it must outlast any step that blocks it.
  "lock-seconds": {
    kind: "integer",
    value: "N",
    min: 5,
    max: 86_400,
    default: 60,
    description: "how long a job stays locked to this worker between renewals",
  },
  "stalled-seconds": {
    kind: "integer",
    value: "N",
    min: 1,
    max: 86_400,
    default: 30,
    description: "how often a job whose worker died is looked for",
  },
} as const satisfies Flags;

export const WORKER_HELP: CommandHelp = {
  usage: ["worker --queue redis://HOST:PORT [options]"],
  summary:
    "Take jobs from serve's Redis queue, one at a time, on one model (any number of workers, on any hosts).",
  flags: WORKER_FLAGS,
  notes: [
    "--data must be serve's data folder (a shared mount): inputs are read and outputs written there",
    "--loras must hold the LoRAs serve's --loras folder offers (jobs name them; the worker reads its own copy)",
  ],
};

export async function workerCommand(
  argv: string[],
  out: (s: string) => void,
  err: (s: string) => void,
): Promise<number> {
  const { values, positionals } = readFlags(argv, WORKER_FLAGS);
  noArguments("worker", positionals);
  if (values.queue === undefined)
    throw new UsageError("worker needs --queue redis://HOST:PORT (the one `tessera serve --queue` uses)");
  const queue = queueFlag(values.queue) as string;
  const dataDir = dataFlag(values.data);
  const drainSeconds = values["drain-seconds"];
  const gen = generatorFlags(values);

  const { DataDir, startQueueWorker } = await import("@tessera/server");
  let generator: VideoGenerator;
  let worker: QueueWorker;
  try {
    generator = await loadGenerator(gen, err);
    worker = await startQueueWorker({
      url: queue,
      dataDir: new DataDir(dataDir),
      generator,
      lockDurationMs: values["lock-seconds"] * 1000,
      stalledIntervalMs: values["stalled-seconds"] * 1000,
      log: out,
    });
  } catch (e) {
    return runtimeFailure(e, err);
  }
  out(
    `tessera: worker for ${generator.info.model} on ${gen.device.name}, taking jobs from ${redactUrl(queue)} (data: ${dataDir})`,
  );

  return untilSignalled({
    stopping: `taking no more jobs, letting the running one finish (up to ${drainSeconds} s)…`,
    stop: () => worker.close(drainSeconds * 1000).then(() => generator.close?.()),
    err,
  });
}

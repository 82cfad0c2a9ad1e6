// `tessera worker`: takes jobs from the Redis queue that `tessera serve --queue`
// fills, one at a time, on one model. Run any number, on any hosts; each must see
// the serve's data folder (a shared mount) at --data, where inputs are read and
// outputs written. A killed worker's job is run again by another after about
// --lock-seconds + --stalled-seconds.
import { resolve } from "node:path";
import type { QueueWorker, VideoGenerator } from "@tessera/server";
import { intFlag, parse, UsageError } from "../args.js";
import { GENERATOR_FLAGS, generatorFlags, loadGenerator, runtimeFailure } from "./model-args.js";
import { dataFlag, queueFlag, redactUrl } from "./serve.js";

export async function workerCommand(
  argv: string[],
  out: (s: string) => void,
  err: (s: string) => void,
): Promise<number> {
  const { values, positionals } = parse(argv, {
    queue: { type: "string" },
    data: { type: "string" },
    ...GENERATOR_FLAGS,
    "drain-seconds": { type: "string" },
    "lock-seconds": { type: "string" },
    "stalled-seconds": { type: "string" },
  });
  if (positionals.length > 0) throw new UsageError(`worker takes no arguments, got '${positionals[0]}'`);
  if (values.queue === undefined)
    throw new UsageError("worker needs --queue redis://HOST:PORT (the one `tessera serve --queue` uses)");
  const queue = queueFlag(values.queue) as string;
  const dataDir = dataFlag(values.data);
  const drainSeconds = intFlag("drain-seconds", values["drain-seconds"], 30, 0, 86_400);
  // The lock is renewed every half of it from the event loop; it must outlast any step that blocks it.
  const lockSeconds = intFlag("lock-seconds", values["lock-seconds"], 60, 5, 86_400);
  const stalledSeconds = intFlag("stalled-seconds", values["stalled-seconds"], 30, 1, 86_400);
  const gen = generatorFlags(values);

  const { DataDir, startQueueWorker } = await import("@tessera/server");
  let generator: VideoGenerator;
  let worker: QueueWorker;
  try {
    generator = await loadGenerator(gen, err);
    const data = new DataDir(resolve(dataDir));
    worker = await startQueueWorker({
      url: queue,
      dataDir: data,
      generator,
      lockDurationMs: lockSeconds * 1000,
      stalledIntervalMs: stalledSeconds * 1000,
      log: out,
    });
  } catch (e) {
    return runtimeFailure(e, err);
  }
  out(
    `tessera: worker for ${generator.info.model} on ${gen.device.name}, taking jobs from ${redactUrl(queue)} (data: ${dataDir})`,
  );

  return new Promise<number>((done) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        err(`tessera: ${signal} again, exiting without waiting`);
        process.exit(130);
      }
      stopping = true;
      err(
        `tessera: ${signal}: taking no more jobs, letting the running one finish (up to ${drainSeconds} s)…`,
      );
      worker
        .close(drainSeconds * 1000)
        .then(() => generator.close?.())
        .then(
          () => {
            err("tessera: stopped");
            done(0);
          },
          (e) => done(runtimeFailure(e, err)),
        );
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
  });
}

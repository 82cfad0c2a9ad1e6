// `tessera worker`: takes jobs from the Redis queue that `tessera serve --queue`
// fills, one at a time, on one model. Run any number, on any hosts; each must see
// the serve's data folder (a shared mount) at --data, where inputs are read and
// outputs written. A killed worker's job is run again by another after about
// --lock-seconds + --stalled-seconds.
import { resolve } from "node:path";
import { Device } from "@tessera/native";
import type { QueueWorker, VideoGenerator } from "@tessera/server";
import { choiceFlag, intFlag, parse, UsageError } from "../args.js";
import { deviceFlag, resolveModel, runtimeFailure } from "./model-args.js";
import { dataFlag, queueFlag, redactUrl } from "./serve.js";

export async function workerCommand(
  argv: string[],
  out: (s: string) => void,
  err: (s: string) => void,
): Promise<number> {
  const { values, positionals } = parse(argv, {
    queue: { type: "string" },
    data: { type: "string" },
    model: { type: "string" },
    device: { type: "string" },
    dtype: { type: "string" },
    format: { type: "string" },
    "drain-seconds": { type: "string" },
    "lock-seconds": { type: "string" },
    "stalled-seconds": { type: "string" },
  });
  if (positionals.length > 0) throw new UsageError(`worker takes no arguments, got '${positionals[0]}'`);
  if (values.queue === undefined)
    throw new UsageError("worker needs --queue redis://HOST:PORT (the one `tessera serve --queue` uses)");
  const queue = queueFlag(values.queue) as string;
  const dataDir = dataFlag(values.data);
  const dtype =
    values.dtype === undefined ? undefined : choiceFlag("dtype", values.dtype, ["f32", "bf16", "f16"], "f32");
  const format = choiceFlag("format", values.format, ["mp4", "gif"] as const, "mp4");
  const drainSeconds = intFlag("drain-seconds", values["drain-seconds"], 30, 0, 86_400);
  // The lock is renewed every half of it from the event loop; it must outlast any step that blocks it.
  const lockSeconds = intFlag("lock-seconds", values["lock-seconds"], 60, 5, 86_400);
  const stalledSeconds = intFlag("stalled-seconds", values["stalled-seconds"], 30, 1, 86_400);
  const modelDir = resolveModel(values.model);
  const device = deviceFlag(values.device, () => Device.cpu);

  const { DataDir, loadPipelineGenerator, startQueueWorker } = await import("@tessera/server");
  let generator: VideoGenerator;
  let worker: QueueWorker;
  try {
    err(`tessera: loading ${modelDir} on ${device.name}…`);
    generator = await loadPipelineGenerator({
      modelDir,
      device: device.name,
      ...(dtype ? { dtype } : {}),
      format,
    });
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
    `tessera: worker for ${generator.info.model} on ${device.name}, taking jobs from ${redactUrl(queue)} (data: ${dataDir})`,
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

// A `tessera worker` in its own process over the fake generator, for tests that
// run several and SIGKILL one mid-job. Appends "start <prompt>" and "done <prompt>"
// lines to --log (one line per write, so concurrent workers can share the file)
// and prints "READY" once it takes jobs.
import { appendFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type { GenerateContext, GenerationRequest } from "../generator.js";
import { DataDir } from "../paths.js";
import { startQueueWorker } from "../redis-queue.js";
import { FakeVideoGenerator } from "./fake-generator.js";

const { values } = parseArgs({
  options: {
    queue: { type: "string" },
    data: { type: "string" },
    log: { type: "string" },
    "step-ms": { type: "string", default: "50" },
    "lock-ms": { type: "string", default: "2000" },
    "stalled-ms": { type: "string", default: "1000" },
    /** The fake acts as a model with a caption style (FakeGeneratorOptions.rewrites). */
    rewrites: { type: "boolean", default: false },
  },
});
if (!values.queue || !values.data || !values.log)
  throw new Error("child-worker: --queue, --data and --log are required");
const logFile = values.log;

class CountingGenerator extends FakeVideoGenerator {
  override async generate(req: GenerationRequest, ctx: GenerateContext) {
    appendFileSync(logFile, `start ${req.prompt} ${process.pid}\n`);
    const out = await super.generate(req, ctx);
    appendFileSync(logFile, `done ${req.prompt} ${process.pid}\n`);
    return out;
  }
}

const dataDir = new DataDir(values.data);
const w = await startQueueWorker({
  url: values.queue,
  dataDir,
  generator: new CountingGenerator({ stepMs: Number(values["step-ms"]), rewrites: values.rewrites }),
  lockDurationMs: Number(values["lock-ms"]),
  stalledIntervalMs: Number(values["stalled-ms"]),
  reportIntervalMs: 20,
  log: (s) => console.log(s),
});
console.log(`READY ${process.pid}`);
process.once("SIGTERM", () => {
  w.close(0).then(
    () => process.exit(0),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
});

// `tessera serve`: the HTTP video API on one model, jobs kept in the data folder
// (SQLite), run here or, with --queue, put on Redis for `tessera worker`s.
// @tessera/server (fastify, SQLite) is imported only by the service commands, so
// the others start as fast as before.
import { mkdirSync } from "node:fs";
import type { Limits, TesseraServer, VideoGenerator } from "@tessera/server";
import { type Flags, noArguments, readFlags } from "../flags.js";
import type { CommandHelp } from "../help.js";
import { runtimeFailure } from "./model-args.js";
import {
  API_FLAGS,
  dataFlag,
  GENERATOR_FLAGS,
  generatorFlags,
  loadGenerator,
  publicUrlsFlag,
  queueFlag,
  redactUrl,
  SERVICE_FLAGS,
  untilSignalled,
} from "./service.js";

/** serve's flags; the limits' defaults are the server's own. */
function serveFlags(limits: Limits) {
  return {
    port: {
      kind: "integer",
      value: "N",
      min: 0,
      max: 65535,
      default: 8080,
      description: "the port to listen on (0: any free port)",
    },
    host: {
      kind: "string",
      value: "HOST",
      default: "127.0.0.1",
      description: "the address to listen on (0.0.0.0: every interface)",
    },
    ...SERVICE_FLAGS,
    ...GENERATOR_FLAGS,
    ...API_FLAGS,
    "max-queue": {
      kind: "integer",
      value: "N",
      min: 1,
      max: 1_000_000,
      default: 100,
      description: "jobs waiting at most; more are refused with 429",
    },
    "max-upload-mb": {
      kind: "integer",
      value: "N",
      min: 1,
      max: 4096,
      default: limits.maxUploadBytes / 2 ** 20,
      description: "largest image or video upload, in MiB",
    },
    "max-frames": {
      kind: "integer",
      value: "N",
      min: 1,
      max: 1021,
      default: limits.maxFrames,
      description: "most frames a request may ask for",
    },
    "max-steps": {
      kind: "integer",
      value: "N",
      min: 1,
      max: 1000,
      default: limits.maxSteps,
      description: "most denoising steps a request may ask for",
    },
    "rate-limit": {
      kind: "integer",
      value: "N",
      min: 0,
      max: 1_000_000,
      default: 600,
      description: "requests per minute per client (0: no limit)",
    },
    verbose: { kind: "boolean", description: "log every request" },
  } as const satisfies Flags;
}

export const SERVE_HELP: CommandHelp = {
  usage: ["serve [options]"],
  summary:
    "Serve the HTTP video API (POST /v1/videos, progress over SSE, /openapi.json) on one model; SIGTERM drains.",
  flags: async () => serveFlags((await import("@tessera/server")).DEFAULT_LIMITS),
  notes: [
    "with --queue, jobs go to Redis and `tessera worker --queue URL --data DIR` processes them (any number, any host)",
    "API keys: `tessera keys create` (with none ever made, the server runs in open mode; once every key is revoked, only with --open)",
    "one server per --data folder: a second one exits, naming the first's pid",
  ],
};

export async function serveCommand(
  argv: string[],
  out: (s: string) => void,
  err: (s: string) => void,
): Promise<number> {
  const { createServer, DataLock, DEFAULT_LIMITS } = await import("@tessera/server");
  const { values, positionals } = readFlags(argv, serveFlags(DEFAULT_LIMITS));
  noArguments("serve", positionals);
  const queue = queueFlag(values.queue);
  const dataDir = dataFlag(values.data);
  const gen = generatorFlags(values);
  const drainSeconds = values["drain-seconds"];
  const perMinute = values["rate-limit"];
  const publicUrls = publicUrlsFlag(values["public-url"]);
  const budget = values["memory-budget"];

  let srv: TesseraServer;
  let generator: VideoGenerator;
  let dataLock: Awaited<ReturnType<typeof DataLock.acquire>>;
  try {
    // Before the model loads (minutes for a large one): a folder another server holds fails now.
    mkdirSync(dataDir, { recursive: true });
    dataLock = await DataLock.acquire(dataDir);
  } catch (e) {
    return runtimeFailure(e, err);
  }
  try {
    generator = await loadGenerator(gen, err);
    srv = await createServer({
      dataLock,
      dataDir,
      generator,
      host: values.host,
      port: values.port,
      maxQueued: values["max-queue"],
      limits: {
        maxUploadBytes: values["max-upload-mb"] * 2 ** 20,
        maxFrames: values["max-frames"],
        maxSteps: values["max-steps"],
        maxImagePixels: Math.round(values["max-image-megapixels"] * 1e6),
      },
      publicUrls,
      open: values.open,
      ...(budget !== undefined ? { memoryBudgetBytes: budget === 0 ? (false as const) : budget } : {}),
      rateLimit: perMinute === 0 ? false : { perMinute, burst: Math.max(1, Math.ceil(perMinute / 5)) },
      drainTimeoutMs: drainSeconds * 1000,
      ...(queue ? { queue } : {}),
      logger: { level: values.verbose ? "info" : "warn" },
    });
  } catch (e) {
    await dataLock.release();
    return runtimeFailure(e, err);
  }
  let url: string;
  try {
    url = await srv.listen();
  } catch (e) {
    await srv.close({ graceMs: 0 });
    return runtimeFailure(e, err);
  }
  const keys = srv.store.hasActiveKeys();
  out(`tessera: serving ${generator.info.model} on ${url} (data: ${dataDir})`);
  if (generator.info.captionStyle)
    out(
      `tessera: ${generator.info.model} knows only ${generator.info.captionStyle} captions: prompts are rewritten onto them (a job's "rewrite": false sends them as typed)`,
    );
  const loras = generator.listLoras?.() ?? [];
  if (gen.loraDir)
    out(
      `tessera: ${loras.length} LoRA(s) in ${gen.loraDir}${loras.length ? `: ${loras.join(", ")}` : ""} (requests pick them by name; GET /v1/loras lists them)`,
    );
  if (queue)
    out(
      `tessera: jobs go to the queue at ${redactUrl(queue)}; run \`tessera worker --queue … --data ${dataDir}\` (the same data folder, shared) to process them`,
    );
  if (srv.requeuedAtStart > 0)
    out(`tessera: ${srv.requeuedAtStart} job(s) interrupted by the last shutdown are queued again`);
  const keyState = srv.store.keyState();
  out(
    keys
      ? "tessera: API keys required (Authorization: Bearer <key>)"
      : keyState === "revoked" && !values.open
        ? "tessera: every API key is revoked, so every /v1 request is refused; `tessera keys create` makes one (or restart with --open to serve without keys)"
        : "tessera: open mode — no API key exists, so anyone who can reach this address can submit; `tessera keys create` turns keys on",
  );
  if (srv.memoryBudget)
    out(
      `tessera: requests the model estimates above ${(srv.memoryBudget.bytes / 2 ** 30).toFixed(1)} GiB of memory are refused (${srv.memoryBudget.from}; --memory-budget)`,
    );
  out(`tessera: API document at ${url}/openapi.json`);

  return untilSignalled({
    stopping: `refusing new jobs, letting the running one finish (up to ${drainSeconds} s)…`,
    stop: () => srv.close().then(() => generator.close?.()),
    err,
  });
}

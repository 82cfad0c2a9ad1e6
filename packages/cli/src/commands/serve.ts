// `tessera serve`: the HTTP video API on one model, and `tessera keys`: the API
// keys it accepts. Both work on a data folder (jobs database, inputs, outputs),
// so keys can be made and revoked while the server runs. @tessera/server (fastify,
// SQLite) is imported only by these commands, so the others start as fast as before.
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Store, TesseraServer, VideoGenerator } from "@tessera/server";
import { intFlag, parse, UsageError } from "../args.js";
import { GENERATOR_FLAGS, generatorFlags, loadGenerator, runtimeFailure } from "./model-args.js";

/** --queue: a redis:// or rediss:// URL (checked without loading the server). */
export function queueFlag(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  let u: URL | null = null;
  try {
    u = new URL(v);
  } catch {}
  if (!u || (u.protocol !== "redis:" && u.protocol !== "rediss:") || !u.hostname)
    throw new UsageError(`--queue must be a redis://HOST:PORT or rediss://HOST:PORT URL, got '${v}'`);
  return v;
}

/** The URL without its password, for logs. */
export function redactUrl(v: string): string {
  const u = new URL(v);
  if (u.password) u.password = "***";
  return u.toString();
}

export function dataFlag(v: string | undefined): string {
  return resolve(v ?? process.env.TESSERA_DATA ?? "tessera-data");
}

async function openStore(dataDir: string): Promise<Store> {
  const { Store } = await import("@tessera/server");
  mkdirSync(dataDir, { recursive: true });
  return new Store(join(dataDir, "tessera.db"));
}

export async function serveCommand(
  argv: string[],
  out: (s: string) => void,
  err: (s: string) => void,
): Promise<number> {
  const { values, positionals } = parse(argv, {
    port: { type: "string" },
    host: { type: "string" },
    data: { type: "string" },
    ...GENERATOR_FLAGS,
    "max-queue": { type: "string" },
    "max-upload-mb": { type: "string" },
    "max-frames": { type: "string" },
    "max-steps": { type: "string" },
    "rate-limit": { type: "string" },
    "drain-seconds": { type: "string" },
    verbose: { type: "boolean" },
    queue: { type: "string" },
  });
  if (positionals.length > 0) throw new UsageError(`serve takes no arguments, got '${positionals[0]}'`);
  const queue = queueFlag(values.queue);
  const { createServer, DEFAULT_LIMITS } = await import("@tessera/server");
  const port = intFlag("port", values.port, 8080, 0, 65535);
  const host = values.host ?? "127.0.0.1";
  const dataDir = dataFlag(values.data);
  const gen = generatorFlags(values);
  const maxQueued = intFlag("max-queue", values["max-queue"], 100, 1, 1_000_000);
  const maxUploadMb = intFlag(
    "max-upload-mb",
    values["max-upload-mb"],
    DEFAULT_LIMITS.maxUploadBytes / 2 ** 20,
    1,
    4096,
  );
  const maxFrames = intFlag("max-frames", values["max-frames"], DEFAULT_LIMITS.maxFrames, 1, 1021);
  const maxSteps = intFlag("max-steps", values["max-steps"], DEFAULT_LIMITS.maxSteps, 1, 1000);
  const perMinute = intFlag("rate-limit", values["rate-limit"], 600, 0, 1_000_000);
  const drainSeconds = intFlag("drain-seconds", values["drain-seconds"], 30, 0, 86_400);

  let srv: TesseraServer;
  let generator: VideoGenerator;
  try {
    generator = await loadGenerator(gen, err);
    srv = await createServer({
      dataDir,
      generator,
      host,
      port,
      maxQueued,
      limits: { maxUploadBytes: maxUploadMb * 2 ** 20, maxFrames, maxSteps },
      rateLimit: perMinute === 0 ? false : { perMinute, burst: Math.max(1, Math.ceil(perMinute / 5)) },
      drainTimeoutMs: drainSeconds * 1000,
      ...(queue ? { queue } : {}),
      logger: { level: values.verbose ? "info" : "warn" },
    });
  } catch (e) {
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
  if (queue)
    out(
      `tessera: jobs go to the queue at ${redactUrl(queue)}; run \`tessera worker --queue … --data ${dataDir}\` (the same data folder, shared) to process them`,
    );
  if (srv.requeuedAtStart > 0)
    out(`tessera: ${srv.requeuedAtStart} job(s) interrupted by the last shutdown are queued again`);
  out(
    keys
      ? "tessera: API keys required (Authorization: Bearer <key>)"
      : "tessera: open mode — no API key exists, so anyone who can reach this address can submit; `tessera keys create` turns keys on",
  );
  out(`tessera: API document at ${url}/openapi.json`);

  return new Promise<number>((done) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        // A second Ctrl-C means "now": the running job is requeued by the next start anyway.
        err(`tessera: ${signal} again, exiting without waiting`);
        process.exit(130);
      }
      stopping = true;
      err(`tessera: ${signal}: refusing new jobs, letting the running one finish (up to ${drainSeconds} s)…`);
      srv
        .close()
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

export async function keysCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case "create": {
      const { values, positionals } = parse(rest, { name: { type: "string" }, data: { type: "string" } });
      if (positionals.length > 0)
        throw new UsageError(`keys create takes no arguments, got '${positionals[0]}'`);
      const store = await openStore(dataFlag(values.data));
      try {
        const { key, info } = store.createKey(values.name ?? "");
        out(key);
        out(
          `# ${info.id}${info.name ? ` (${info.name})` : ""}: shown once, only its SHA-256 is stored. Use it as Authorization: Bearer <key>.`,
        );
        return 0;
      } finally {
        store.close();
      }
    }
    case "list": {
      const { values } = parse(rest, { data: { type: "string" }, json: { type: "boolean" } });
      const store = await openStore(dataFlag(values.data));
      try {
        const keys = store.listKeys();
        if (values.json) {
          out(JSON.stringify(keys, null, 2));
          return 0;
        }
        if (keys.length === 0) out("no API keys: the server runs in open mode");
        const when = (ms: number | null) =>
          ms === null ? "-" : new Date(ms).toISOString().slice(0, 19).replace("T", " ");
        for (const k of keys)
          out(
            `${k.id}  ${k.prefix.padEnd(12)} ${(k.name || "-").padEnd(16)} created ${when(k.createdAt)}  last used ${when(k.lastUsedAt)}${k.revokedAt ? `  REVOKED ${when(k.revokedAt)}` : ""}`,
          );
        return 0;
      } finally {
        store.close();
      }
    }
    case "revoke": {
      const { values, positionals } = parse(rest, { data: { type: "string" } });
      const target = positionals[0];
      if (!target || positionals.length > 1)
        throw new UsageError("keys revoke takes one key id (key_…) or the key itself");
      const store = await openStore(dataFlag(values.data));
      try {
        if (!store.revokeKey(target))
          throw new UsageError(`no active key '${target.slice(0, 12)}'; see tessera keys list`);
        out(`revoked ${target.startsWith("tsk_") ? `${target.slice(0, 10)}…` : target}`);
        if (!store.hasActiveKeys()) out("no active key is left: the server is in open mode");
        return 0;
      } finally {
        store.close();
      }
    }
    default:
      throw new UsageError(`keys needs create, list or revoke${sub ? `, got '${sub}'` : ""}`);
  }
}

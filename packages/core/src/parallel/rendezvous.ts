// How the rank processes of one multi-GPU run find each other: torchrun's environment
// (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), and a
// rendezvous that hands rank 0's bytes (NCCL's unique id) to every other rank —
// through a small TCP server on rank 0, or a file every rank can see.
//
// TCP protocol: a rank connects and sends "TSRN", u32 rank, u32 world size (big
// endian); rank 0 answers a status byte (0 ok, 1 error), u32 length, then the payload
// (or a UTF-8 error). Rank 0 closes its server once every other rank has its answer.
import { randomBytes } from "node:crypto";
import { readFile, rename, writeFile } from "node:fs/promises";
import { createConnection, createServer, type Socket } from "node:net";

export interface DistributedEnv {
  rank: number;
  worldSize: number;
  /** Rank on this host (picks the GPU); torchrun's LOCAL_RANK. */
  localRank: number;
  /** Ranks on this host. */
  localWorldSize: number;
  /** Rank 0's host and the rendezvous port (absent when a file rendezvous is used). */
  masterAddr?: string;
  masterPort?: number;
  /** TESSERA_NCCL_ID_FILE: rendezvous through this file instead of TCP (one host or a shared mount). */
  idFile?: string;
}

export class DistributedEnvError extends Error {
  override name = "DistributedEnvError";
}

export class RendezvousError extends Error {
  override name = "RendezvousError";
}

function intVar(env: NodeJS.ProcessEnv, name: string, min: number, max: number): number | undefined {
  const v = env[name];
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min || n > max)
    throw new DistributedEnvError(`${name} must be an integer from ${min} to ${max}, got '${v}'`);
  return n;
}

/**
 * The rank's place in a multi-process run, from torchrun's variables; null when
 * WORLD_SIZE and RANK are both unset (a single-process run). Throws
 * DistributedEnvError naming the variable that is missing or wrong.
 */
export function distributedEnv(env: NodeJS.ProcessEnv = process.env): DistributedEnv | null {
  const world = intVar(env, "WORLD_SIZE", 1, 65_536);
  const rank = intVar(env, "RANK", 0, 65_535);
  if (world === undefined && rank === undefined) return null;
  if (world === undefined)
    throw new DistributedEnvError("RANK is set but WORLD_SIZE is not; set both (torchrun does)");
  if (rank === undefined)
    throw new DistributedEnvError("WORLD_SIZE is set but RANK is not; set both (torchrun does)");
  if (rank >= world) throw new DistributedEnvError(`RANK ${rank} must be below WORLD_SIZE ${world}`);
  const localWorld = intVar(env, "LOCAL_WORLD_SIZE", 1, world) ?? world;
  const localRank = intVar(env, "LOCAL_RANK", 0, 65_535) ?? (localWorld === world ? rank : undefined);
  if (localRank === undefined)
    throw new DistributedEnvError("LOCAL_RANK is not set (it picks this rank's GPU); torchrun sets it");
  if (localRank >= localWorld)
    throw new DistributedEnvError(`LOCAL_RANK ${localRank} must be below LOCAL_WORLD_SIZE ${localWorld}`);
  const out: DistributedEnv = { rank, worldSize: world, localRank, localWorldSize: localWorld };
  const idFile = env.TESSERA_NCCL_ID_FILE;
  if (idFile) out.idFile = idFile;
  const addr = env.MASTER_ADDR;
  // TESSERA_RENDEZVOUS_PORT: under torchrun, whose agent already listens on MASTER_PORT.
  const port = intVar(env, "TESSERA_RENDEZVOUS_PORT", 1, 65_535) ?? intVar(env, "MASTER_PORT", 1, 65_535);
  if (addr) out.masterAddr = addr;
  if (port !== undefined) out.masterPort = port;
  if (world > 1 && !idFile && (!addr || port === undefined))
    throw new DistributedEnvError(
      `${!addr ? "MASTER_ADDR" : "MASTER_PORT"} is not set: ranks meet at MASTER_ADDR:MASTER_PORT (rank 0's host and a free port), or through a shared file named by TESSERA_NCCL_ID_FILE`,
    );
  return out;
}

/**
 * This rank's CUDA device index: 0 when the process sees one GPU (the launcher sets
 * CUDA_VISIBLE_DEVICES per rank), else LOCAL_RANK (torchrun leaves every GPU visible).
 */
export function rankDeviceIndex(env: DistributedEnv, visibleGpus: number): number {
  if (visibleGpus < 1) throw new DistributedEnvError(`rank ${env.rank}: no CUDA device is visible`);
  if (visibleGpus === 1) return 0;
  if (env.localRank >= visibleGpus)
    throw new DistributedEnvError(
      `rank ${env.rank}: LOCAL_RANK ${env.localRank} needs a GPU of that index, but ${visibleGpus} are visible`,
    );
  return env.localRank;
}

export interface TcpRendezvousOptions {
  rank: number;
  worldSize: number;
  host: string;
  port: number;
  /** Rank 0 only: the bytes to hand out (called once). */
  payload?: () => Uint8Array;
  /** Default 120 s: how long rank 0 waits for all ranks, and the others for rank 0. */
  timeoutMs?: number;
  /** Rank 0 only: where to listen (default `host`). */
  listenHost?: string;
  /** Called on rank 0 once it listens (tests; a launcher may start the others then). */
  onListening?: (port: number) => void;
}

const MAGIC = Buffer.from("TSRN");
const MAX_PAYLOAD = 1 << 20;

/** Rank 0's payload on every rank (rank 0 serves it on host:port; the others fetch it). */
export function tcpRendezvous(o: TcpRendezvousOptions): Promise<Uint8Array> {
  if (!Number.isInteger(o.worldSize) || o.worldSize < 1)
    throw new RendezvousError(`rendezvous: world size must be a positive integer, got ${o.worldSize}`);
  if (!Number.isInteger(o.rank) || o.rank < 0 || o.rank >= o.worldSize)
    throw new RendezvousError(`rendezvous: rank ${o.rank} is outside [0, ${o.worldSize})`);
  return o.rank === 0 ? serve(o) : fetchPayload(o);
}

function serve(o: TcpRendezvousOptions): Promise<Uint8Array> {
  if (!o.payload) throw new RendezvousError("rendezvous: rank 0 needs a payload to hand out");
  const payload = o.payload();
  const timeoutMs = o.timeoutMs ?? 120_000;
  const where = `${o.listenHost ?? o.host}:${o.port}`;
  return new Promise<Uint8Array>((resolve, reject) => {
    if (o.worldSize === 1) {
      resolve(payload);
      return;
    }
    const served = new Set<number>();
    const pending = new Set<Socket>(); // connected, not answered yet
    let settled = false;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      server.close();
      if (err) {
        for (const s of pending) s.destroy();
        reject(err);
      } else resolve(payload);
    };
    const reply = (sock: Socket, ok: boolean, body: Uint8Array) => {
      pending.delete(sock);
      const head = Buffer.alloc(5);
      head[0] = ok ? 0 : 1;
      head.writeUInt32BE(body.length, 1);
      sock.end(Buffer.concat([head, body]));
    };
    const server = createServer((sock) => {
      pending.add(sock);
      sock.on("close", () => pending.delete(sock));
      sock.on("error", () => {});
      let buf = Buffer.alloc(0);
      sock.on("data", (d) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length < 12) return;
        sock.removeAllListeners("data");
        if (!buf.subarray(0, 4).equals(MAGIC)) {
          sock.destroy(); // not one of ours (a port scanner, another program): ignore it
          return;
        }
        const rank = buf.readUInt32BE(4);
        const world = buf.readUInt32BE(8);
        if (world !== o.worldSize) {
          const msg = `rank ${rank} says the world has ${world} ranks but rank 0 has ${o.worldSize}; every rank needs the same WORLD_SIZE`;
          reply(sock, false, Buffer.from(msg));
          finish(new RendezvousError(`rendezvous at ${where}: ${msg}`));
          return;
        }
        if (rank === 0 || rank >= world || served.has(rank)) {
          const msg = `rank ${rank} ${served.has(rank) ? "joined twice" : `is not a rank rank 0 waits for (1..${world - 1})`}; check RANK`;
          reply(sock, false, Buffer.from(msg));
          finish(new RendezvousError(`rendezvous at ${where}: ${msg}`));
          return;
        }
        served.add(rank);
        reply(sock, true, payload);
        if (served.size === o.worldSize - 1) finish();
      });
    });
    const timer = setTimeout(() => {
      const missing = Array.from({ length: o.worldSize - 1 }, (_, i) => i + 1).filter((r) => !served.has(r));
      finish(
        new RendezvousError(
          `rendezvous at ${where}: rank(s) ${missing.join(", ")} of ${o.worldSize} did not connect within ${timeoutMs / 1000} s; are they running with MASTER_ADDR/MASTER_PORT pointing here?`,
        ),
      );
    }, timeoutMs);
    server.on("error", (e: NodeJS.ErrnoException) =>
      finish(
        new RendezvousError(
          e.code === "EADDRINUSE"
            ? `rendezvous: ${where} is in use (under torchrun its agent holds MASTER_PORT: set TESSERA_RENDEZVOUS_PORT to a free port on every rank)`
            : `rendezvous: rank 0 cannot listen on ${where}: ${e.message}`,
        ),
      ),
    );
    server.listen(o.port, o.listenHost ?? o.host, () => {
      const addr = server.address();
      o.onListening?.(typeof addr === "object" && addr ? addr.port : o.port);
    });
  });
}

function fetchPayload(o: TcpRendezvousOptions): Promise<Uint8Array> {
  const timeoutMs = o.timeoutMs ?? 120_000;
  const deadline = Date.now() + timeoutMs;
  const where = `${o.host}:${o.port}`;
  let lastError = "";
  const attempt = () =>
    new Promise<Uint8Array>((resolve, reject) => {
      const sock = createConnection({ host: o.host, port: o.port });
      let buf = Buffer.alloc(0);
      let done = false;
      const fail = (e: Error & { retry?: boolean }) => {
        if (done) return;
        done = true;
        sock.destroy();
        reject(e);
      };
      sock.setTimeout(Math.max(1000, deadline - Date.now()), () =>
        fail(Object.assign(new Error("no answer"), { retry: true })),
      );
      sock.on("connect", () => {
        const hello = Buffer.alloc(12);
        MAGIC.copy(hello, 0);
        hello.writeUInt32BE(o.rank, 4);
        hello.writeUInt32BE(o.worldSize, 8);
        sock.write(hello);
      });
      sock.on("data", (d) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= 5) {
          const len = buf.readUInt32BE(1);
          if (len > MAX_PAYLOAD)
            fail(new RendezvousError(`rendezvous at ${where}: a ${len}-byte answer is not ours`));
          else if (buf.length >= 5 + len) {
            done = true;
            sock.destroy();
            const body = buf.subarray(5, 5 + len);
            if (buf[0] === 0) resolve(new Uint8Array(body));
            else
              reject(
                new RendezvousError(
                  `rendezvous at ${where}: rank 0 refused rank ${o.rank}: ${body.toString()}`,
                ),
              );
          }
        }
      });
      sock.on("error", (e: NodeJS.ErrnoException) => fail(Object.assign(e, { retry: true })));
      sock.on("close", () => fail(Object.assign(new Error("closed before answering"), { retry: true })));
    });
  return (async () => {
    for (;;) {
      try {
        return await attempt();
      } catch (e) {
        const err = e as Error & { retry?: boolean; code?: string };
        if (!err.retry) throw err;
        lastError = err.code ?? err.message;
      }
      if (Date.now() >= deadline)
        throw new RendezvousError(
          `rank ${o.rank}: could not reach rank 0's rendezvous at ${where} within ${timeoutMs / 1000} s (last: ${lastError}); is rank 0 running, and do MASTER_ADDR/MASTER_PORT name its host and a free port?`,
        );
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
}

export interface FileRendezvousOptions {
  path: string;
  rank: number;
  /** Rank 0 only. */
  payload?: () => Uint8Array;
  /** Bytes the others wait for (the payload's length). */
  bytes: number;
  timeoutMs?: number;
}

/** Rank 0 writes the payload to path (via a temporary file and a rename); the others poll for it. */
export async function fileRendezvous(o: FileRendezvousOptions): Promise<Uint8Array> {
  if (o.rank === 0) {
    if (!o.payload) throw new RendezvousError("rendezvous: rank 0 needs a payload to hand out");
    const p = o.payload();
    const tmp = `${o.path}.tmp.${process.pid}.${randomBytes(4).toString("hex")}`;
    await writeFile(tmp, p);
    await rename(tmp, o.path);
    return p;
  }
  const timeoutMs = o.timeoutMs ?? 120_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const b = await readFile(o.path);
      if (b.length === o.bytes) return new Uint8Array(b);
    } catch {
      // not there yet
    }
    if (Date.now() >= deadline)
      throw new RendezvousError(
        `rank ${o.rank}: rank 0's id file ${o.path} did not appear within ${timeoutMs / 1000} s; is rank 0 running, and is the path on a folder every rank sees?`,
      );
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Rank 0's bytes on every rank, by the rendezvous `env` names (file, else TCP). */
export function rendezvous(
  env: DistributedEnv,
  payload: () => Uint8Array,
  bytes: number,
  timeoutMs?: number,
): Promise<Uint8Array> {
  const t = timeoutMs === undefined ? {} : { timeoutMs };
  if (env.idFile) return fileRendezvous({ path: env.idFile, rank: env.rank, payload, bytes, ...t });
  if (env.worldSize === 1) return Promise.resolve(payload());
  return tcpRendezvous({
    rank: env.rank,
    worldSize: env.worldSize,
    host: env.masterAddr as string,
    port: env.masterPort as number,
    ...(env.rank === 0 ? { payload } : {}),
    ...t,
  });
}

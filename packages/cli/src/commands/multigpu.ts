// `tessera generate --gpus N`: one process per GPU. The command the user runs is the
// launcher: it checks that N GPUs and NCCL are there, then starts N copies of the
// same command as ranks (torchrun's variables, one GPU each through
// CUDA_VISIBLE_DEVICES, rank 0's rendezvous on a free loopback port) and waits;
// if any rank fails the others are stopped. A rank (WORLD_SIZE > 1 in its
// environment, set by this launcher or by torchrun) joins the NCCL communicator and
// runs the pipeline under parallelPlan(comm); rank 0 writes the output and prints
// the report.
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { type DistributedEnv, distributedEnv, NcclCommunicator } from "@tessera/core";
import { cudaStatus, type Device, ncclStatus } from "@tessera/native";
import { intFlag, UsageError } from "../args.js";

/** What generate does about --gpus. */
export type MultiGpu =
  | { kind: "single" }
  | { kind: "launched"; exitCode: number }
  | { kind: "rank"; env: DistributedEnv; comm: NcclCommunicator; device: Device };

export interface MultiGpuOptions {
  /** The --gpus flag. */
  gpus: string | undefined;
  /** The command's arguments as given (the ranks get them less --gpus, plus --seed). */
  argv: string[];
  /** The --device flag, if any. */
  device: string | undefined;
  /** The --seed flag's value, if given (else the launcher draws one: every rank needs the same). */
  seed: number | undefined;
  err: (s: string) => void;
  /** The process's environment (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/**
 * Decides, before the model loads: a plain single-process run; a launcher that has
 * run N ranks to completion (their exit code); or this process being one rank (with
 * its communicator joined). Throws UsageError for a bad --gpus; an unusable machine
 * (no CUDA, too few GPUs, no NCCL) is a message and exit code 1.
 */
export async function multiGpu(o: MultiGpuOptions): Promise<MultiGpu> {
  const env = o.env ?? process.env;
  const rankEnv = distributedEnvOrUsage(env);
  if (rankEnv && rankEnv.worldSize > 1) {
    const { comm, device } = await NcclCommunicator.fromEnv({ env });
    return { kind: "rank", env: rankEnv, comm, device };
  }
  if (o.gpus === undefined) return { kind: "single" };
  const n = intFlag("gpus", o.gpus, 1, 1, 1024);
  if (o.device !== undefined && o.device !== "cuda")
    throw new UsageError(`--gpus ${n} picks the GPUs itself; drop --device ${o.device}`);
  const problem = gpuProblem(n);
  if (problem) {
    o.err(`tessera: ${problem}`);
    return { kind: "launched", exitCode: 1 };
  }
  if (n === 1) return { kind: "single" };
  const seed = o.seed ?? Math.floor(Math.random() * 2 ** 32);
  const args = [...withoutFlag(o.argv, "gpus"), ...(o.seed === undefined ? ["--seed", String(seed)] : [])];
  const script = fileURLToPath(new URL("../bin.js", import.meta.url));
  const exitCode = await launchRanks({
    worldSize: n,
    command: [process.execPath, script, "generate", ...withoutFlag(args, "device")],
    gpuIds: visibleGpuIds(env, cudaStatus().count),
    err: o.err,
    env,
  });
  return { kind: "launched", exitCode };
}

function distributedEnvOrUsage(env: NodeJS.ProcessEnv): DistributedEnv | null {
  try {
    return distributedEnv(env);
  } catch (e) {
    throw new UsageError(`multi-GPU environment: ${(e as Error).message}`);
  }
}

/** Why N GPUs cannot be used here (null when they can). */
export function gpuProblem(n: number): string | null {
  const cuda = cudaStatus();
  if (!cuda.available)
    return `--gpus ${n} needs ${n} CUDA GPU(s), but CUDA is not available here: ${cuda.reason}. Run without --gpus to generate on one device, or on a host with ${n} GPUs`;
  if (cuda.count < n)
    return `--gpus ${n}: only ${cuda.count} CUDA GPU(s) are visible${process.env.CUDA_VISIBLE_DEVICES !== undefined ? ` (CUDA_VISIBLE_DEVICES=${process.env.CUDA_VISIBLE_DEVICES})` : ""}; use --gpus ${cuda.count} or fewer`;
  if (n > 1) {
    const nccl = ncclStatus();
    if (!nccl.available) return `--gpus ${n} needs NCCL between the GPUs: ${nccl.reason}`;
  }
  return null;
}

/** The GPU ids ranks are given through CUDA_VISIBLE_DEVICES: the parent's list, else 0..count−1. */
export function visibleGpuIds(env: NodeJS.ProcessEnv, count: number): string[] {
  const v = env.CUDA_VISIBLE_DEVICES;
  if (v !== undefined && v.trim() !== "")
    return v
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "");
  return Array.from({ length: count }, (_, i) => String(i));
}

/** argv without --name VALUE / --name=VALUE. */
export function withoutFlag(argv: string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === `--${name}`) i++;
    else if (!a.startsWith(`--${name}=`)) out.push(a);
  }
  return out;
}

/** A free TCP port on the loopback interface (for rank 0's rendezvous). */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export interface LaunchOptions {
  worldSize: number;
  /** The program and arguments every rank runs. */
  command: string[];
  /** One CUDA_VISIBLE_DEVICES value per rank (rank r gets gpuIds[r]). */
  gpuIds: string[];
  err: (s: string) => void;
  env?: NodeJS.ProcessEnv;
  /** Grace before SIGKILL when stopping the ranks (default 10 s). */
  killAfterMs?: number;
}

/**
 * Runs worldSize ranks of `command` and resolves with the run's exit code: 0 when
 * every rank exits 0; else the first failing rank's code, after stopping the others
 * (a rank left alone would wait in NCCL for ever). Rank 0's stdout and stderr pass
 * through; the other ranks' stderr is printed with a "[rank r]" prefix. SIGINT and
 * SIGTERM are passed on to every rank.
 */
export async function launchRanks(o: LaunchOptions): Promise<number> {
  const n = o.worldSize;
  if (o.gpuIds.length < n) throw new Error(`launchRanks: ${n} ranks but only ${o.gpuIds.length} GPU ids`);
  const port = await freeLoopbackPort();
  const base = { ...(o.env ?? process.env) };
  const [prog, ...args] = o.command as [string, ...string[]];
  const children = Array.from({ length: n }, (_, rank) => {
    const child = spawn(prog, args, {
      env: {
        ...base,
        RANK: String(rank),
        WORLD_SIZE: String(n),
        LOCAL_RANK: String(rank),
        LOCAL_WORLD_SIZE: String(n),
        MASTER_ADDR: "127.0.0.1",
        MASTER_PORT: String(port),
        CUDA_VISIBLE_DEVICES: o.gpuIds[rank] as string,
      },
      stdio: rank === 0 ? ["ignore", "inherit", "inherit"] : ["ignore", "ignore", "pipe"],
    });
    if (rank > 0) {
      let partial = "";
      child.stderr?.on("data", (d: Buffer) => {
        const lines = (partial + d.toString()).split("\n");
        partial = lines.pop() ?? "";
        for (const l of lines) if (l.trim() !== "") o.err(`[rank ${rank}] ${l}`);
      });
      child.stderr?.on("end", () => {
        if (partial.trim() !== "") o.err(`[rank ${rank}] ${partial}`);
      });
    }
    return child;
  });
  const exits = children.map(
    (c) =>
      new Promise<number>((resolve) => {
        c.on("error", (e) => {
          o.err(`tessera: could not start a rank: ${e.message}`);
          resolve(1);
        });
        c.on("exit", (code, signal) => resolve(code ?? (signal === "SIGINT" ? 130 : 1)));
      }),
  );
  let stopping = false;
  const stopAll = (signal: NodeJS.Signals) => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill(signal);
    const t = setTimeout(() => {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    }, o.killAfterMs ?? 10_000);
    t.unref();
  };
  const onSignal = (signal: NodeJS.Signals) => {
    stopping = true;
    stopAll(signal);
  };
  const onInt = () => onSignal("SIGINT");
  const onTerm = () => onSignal("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  let failed = null as number | null;
  try {
    for (const [rank, p] of exits.entries())
      void p.then((code) => {
        if (code !== 0 && failed === null) {
          failed = code;
          if (!stopping) {
            o.err(`tessera: rank ${rank} exited with code ${code}; stopping the other ranks`);
            stopping = true;
            stopAll("SIGTERM");
          }
        }
      });
    const codes = await Promise.all(exits);
    return failed ?? codes.find((c) => c !== 0) ?? 0;
  } finally {
    process.removeListener("SIGINT", onInt);
    process.removeListener("SIGTERM", onTerm);
  }
}

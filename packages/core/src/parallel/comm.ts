// Collective communication between the ranks of a parallel forward pass.
//
// `Communicator` is what the parallel models are written against; `InProcessGroup`
// implements it for N ranks living in one process (one async task per rank), so
// the partitioning can be tested on the CPU backend without several GPUs. Tensors
// are exchanged with slice/concat/copy on their device: no host copies.
//
// Ownership: a collective never takes ownership of its input, and always returns a
// fresh tensor owned by the calling rank (created in the caller's async context, so
// it lands in the caller's scope()). Every collective ends with a rendezvous, so an
// input stays alive until every rank has read from it.
import { add, affine, cast, concat, maximum, minimum, slice, type Tensor } from "@tessera/native";

export interface AllToAllOptions {
  /** The dim cut into worldSize equal chunks; chunk j goes to rank j. */
  splitDim: number;
  /** The dim along which the chunks received from ranks 0..N-1 are joined, in rank order. */
  concatDim: number;
}

export interface Communicator {
  readonly rank: number;
  readonly worldSize: number;
  /**
   * All-to-all: x (same shape on every rank) is cut along splitDim into worldSize
   * chunks; rank r receives chunk r of every rank, joined along concatDim in rank order.
   * x.shape[splitDim] must be divisible by worldSize.
   */
  allToAll(x: Tensor, opts: AllToAllOptions): Promise<Tensor>;
  /** Every rank's x joined along dim in rank order (the other dims must agree). */
  allGather(x: Tensor, dim: number): Promise<Tensor>;
  /**
   * One ring step: every rank sends x to rank (rank + shift) mod N and returns what
   * it receives from rank (rank − shift) mod N. Shapes may differ between ranks.
   */
  ringShift(x: Tensor, shift?: number): Promise<Tensor>;
  /**
   * Element-wise reduction over every rank's x (same shape and dtype on all ranks);
   * every rank gets the result. Default op "sum".
   */
  allReduce(x: Tensor, op?: ReduceOp): Promise<Tensor>;
  /** Resolves once every rank has reached it. */
  barrier(): Promise<void>;
}

export type ReduceOp = "sum" | "max" | "min" | "avg";

export class CommError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CommError";
  }
}

function normDim(op: string, dim: number, ndim: number, what: string): number {
  const d = dim < 0 ? dim + ndim : dim;
  if (!Number.isInteger(d) || d < 0 || d >= ndim)
    throw new CommError(`${op}: ${what} ${dim} is out of range for a tensor of ${ndim} dims`);
  return d;
}

function shapeStr(s: readonly number[]): string {
  return `[${s.join(", ")}]`;
}

interface Round {
  values: unknown[];
  arrived: number;
  waiters: { resolve: (v: unknown[]) => void; reject: (e: unknown) => void }[];
  op: string;
}

/**
 * N ranks in one process. `group.comm(r)` is rank r's communicator; each rank's
 * collectives must be called in the same order on every rank (as with NCCL).
 * `abort(err)` rejects every pending and future collective (a failed rank must
 * call it, or the others wait forever; `runRanks` does so).
 */
export class InProcessGroup {
  readonly #comms: InProcessComm[];
  readonly #rounds = new Map<number, Round>();
  #aborted: unknown = undefined;

  constructor(readonly worldSize: number) {
    if (!Number.isInteger(worldSize) || worldSize < 1)
      throw new CommError(`InProcessGroup: worldSize must be a positive integer, got ${worldSize}`);
    this.#comms = Array.from({ length: worldSize }, (_, r) => new InProcessComm(this, r));
  }

  comm(rank: number): Communicator {
    const c = this.#comms[rank];
    if (!c) throw new CommError(`InProcessGroup: rank ${rank} is outside [0, ${this.worldSize})`);
    return c;
  }

  abort(reason: unknown): void {
    if (this.#aborted !== undefined) return;
    this.#aborted = reason ?? new CommError("aborted");
    for (const round of this.#rounds.values())
      for (const w of round.waiters) w.reject(new CommError(`collective aborted: ${errText(this.#aborted)}`));
    this.#rounds.clear();
  }

  /** Rendezvous number `seq`: resolves, on every rank, with the values all ranks brought. */
  exchange(seq: number, rank: number, op: string, value: unknown): Promise<unknown[]> {
    if (this.#aborted !== undefined)
      return Promise.reject(new CommError(`collective aborted: ${errText(this.#aborted)}`));
    let round = this.#rounds.get(seq);
    if (!round) {
      round = { values: new Array(this.worldSize), arrived: 0, waiters: [], op };
      this.#rounds.set(seq, round);
    }
    const r = round;
    return new Promise<unknown[]>((resolve, reject) => {
      if (r.op !== op) {
        const err = new CommError(
          `collective #${seq}: rank ${rank} called ${op} while another rank called ${r.op} (ranks must issue collectives in the same order)`,
        );
        this.abort(err);
        reject(err);
        return;
      }
      r.values[rank] = value;
      r.arrived++;
      r.waiters.push({ resolve, reject });
      if (r.arrived === this.worldSize) {
        this.#rounds.delete(seq);
        for (const w of r.waiters) w.resolve(r.values);
      }
    });
  }
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

class InProcessComm implements Communicator {
  #seq = 0;

  constructor(
    readonly group: InProcessGroup,
    readonly rank: number,
  ) {}

  get worldSize(): number {
    return this.group.worldSize;
  }

  // Two rendezvous per collective: the first shares inputs, the second (after this
  // rank has built its output) keeps every input alive until all ranks have read it.
  async #collective<T>(op: string, value: unknown, build: (all: unknown[]) => T): Promise<T> {
    const all = await this.group.exchange(this.#seq++, this.rank, op, value);
    let out: T;
    try {
      out = build(all);
    } catch (e) {
      this.group.abort(e);
      throw e;
    }
    await this.group.exchange(this.#seq++, this.rank, `${op}:done`, null);
    return out;
  }

  async allToAll(x: Tensor, opts: AllToAllOptions): Promise<Tensor> {
    const n = this.worldSize;
    const sd = normDim("allToAll", opts.splitDim, x.ndim, "splitDim");
    const cd = normDim("allToAll", opts.concatDim, x.ndim, "concatDim");
    const len = x.shape[sd] as number;
    if (len % n !== 0)
      throw new CommError(
        `allToAll: dim ${sd} of ${shapeStr(x.shape)} (${len}) is not divisible by the world size ${n}`,
      );
    const c = len / n;
    const r = this.rank;
    return this.#collective("allToAll", x, (all) => {
      const xs = all as Tensor[];
      for (const [j, t] of xs.entries())
        if (shapeStr(t.shape) !== shapeStr(x.shape) || t.dtype !== x.dtype)
          throw new CommError(
            `allToAll: rank ${j} brought ${t.dtype} ${shapeStr(t.shape)}, rank ${r} ${x.dtype} ${shapeStr(x.shape)}; all ranks must agree`,
          );
      const parts = xs.map((t) => slice(t, sd, r * c, (r + 1) * c));
      if (parts.length === 1) return parts[0] as Tensor;
      const out = concat(parts, cd);
      for (const p of parts) p.dispose();
      return out;
    });
  }

  async allGather(x: Tensor, dim: number): Promise<Tensor> {
    const d = normDim("allGather", dim, x.ndim, "dim");
    const r = this.rank;
    return this.#collective("allGather", x, (all) => {
      const xs = all as Tensor[];
      for (const [j, t] of xs.entries()) {
        const ok =
          t.ndim === x.ndim && t.dtype === x.dtype && t.shape.every((s, i) => i === d || s === x.shape[i]);
        if (!ok)
          throw new CommError(
            `allGather: rank ${j} brought ${t.dtype} ${shapeStr(t.shape)}, rank ${r} ${x.dtype} ${shapeStr(x.shape)}; all dims but ${d} must agree`,
          );
      }
      return xs.length === 1 ? cast(x, x.dtype) : concat(xs, d);
    });
  }

  async ringShift(x: Tensor, shift = 1): Promise<Tensor> {
    const n = this.worldSize;
    if (!Number.isInteger(shift)) throw new CommError(`ringShift: shift must be an integer, got ${shift}`);
    const from = (((this.rank - shift) % n) + n) % n;
    // A contiguous copy: the receiver owns what it gets.
    return this.#collective("ringShift", x, (all) => cast(all[from] as Tensor, (all[from] as Tensor).dtype));
  }

  async allReduce(x: Tensor, op: ReduceOp = "sum"): Promise<Tensor> {
    const r = this.rank;
    if (!["sum", "max", "min", "avg"].includes(op))
      throw new CommError(`allReduce: op must be one of sum, max, min, avg, got '${String(op)}'`);
    return this.#collective("allReduce", x, (all) => {
      const xs = all as Tensor[];
      for (const [j, t] of xs.entries())
        if (shapeStr(t.shape) !== shapeStr(x.shape) || t.dtype !== x.dtype)
          throw new CommError(
            `allReduce: rank ${j} brought ${t.dtype} ${shapeStr(t.shape)}, rank ${r} ${x.dtype} ${shapeStr(x.shape)}; all ranks must agree`,
          );
      // In rank order on every rank, so all ranks hold the same values.
      const fold = op === "max" ? maximum : op === "min" ? minimum : add;
      let acc = cast(xs[0] as Tensor, x.dtype);
      for (const t of xs.slice(1)) {
        const next = fold(acc, t);
        acc.dispose();
        acc = next;
      }
      if (op !== "avg" || xs.length === 1) return acc;
      const out = affine(acc, 1 / xs.length, 0);
      acc.dispose();
      return out;
    });
  }

  async barrier(): Promise<void> {
    await this.group.exchange(this.#seq++, this.rank, "barrier", null);
  }
}

/**
 * Runs fn on every rank of a fresh InProcessGroup and returns the per-rank results.
 * If any rank fails, the group is aborted (so the others stop waiting) and the
 * first error is thrown, after every rank has settled.
 */
export async function runRanks<T>(
  worldSize: number,
  fn: (comm: Communicator) => Promise<T>,
  /** Rank r's communicator over the group (default: the group's own). */
  makeComm: (group: InProcessGroup, rank: number) => Communicator = (g, r) => g.comm(r),
): Promise<T[]> {
  const group = new InProcessGroup(worldSize);
  const settled = await Promise.allSettled(
    Array.from({ length: worldSize }, (_, r) =>
      fn(makeComm(group, r)).catch((e: unknown) => {
        group.abort(e);
        throw e;
      }),
    ),
  );
  const failed = settled.find((s) => s.status === "rejected");
  if (failed) {
    // Dispose what the ranks that did finish returned, so a failure leaks nothing.
    for (const s of settled) if (s.status === "fulfilled") disposeDeep(s.value);
    // Prefer the original error over the "collective aborted" echoes of it.
    const errs = settled
      .filter((s): s is PromiseRejectedResult => s.status === "rejected")
      .map((s) => s.reason);
    throw errs.find((e) => !(e instanceof CommError && /collective aborted/.test(e.message))) ?? errs[0];
  }
  return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
}

function disposeDeep(v: unknown): void {
  if (v && typeof v === "object") {
    if ("dispose" in v && typeof (v as { dispose: unknown }).dispose === "function")
      (v as { dispose(): void }).dispose();
    else if (Array.isArray(v)) for (const x of v) disposeDeep(x);
  }
}

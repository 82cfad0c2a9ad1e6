// A Communicator over raw, NCCL-shaped collectives: the layout work NCCL leaves to its
// caller. NCCL moves flat buffers — chunk j of an all-to-all goes to rank j, an
// all-gather lays the ranks' buffers end to end, send/recv sizes must match — so
// every collective here moves the dim it cuts (or joins) to the front, runs the raw
// collective on a contiguous tensor, and moves the dims back.
//
// `RawCollectives` is implemented by NCCL (nccl.ts) and, for tests on the CPU, by
// `inProcessRaw` below over an InProcessGroup: the same layout code then runs the
// parallel models on one machine, so what reaches NCCL on a GPU host is what the CPU
// tests checked, short of NCCL itself.
import { cast, concat, slice, Tensor, zeros } from "@tessera/native";
import {
  type AllToAllOptions,
  CommError,
  type Communicator,
  type InProcessGroup,
  type ReduceOp,
} from "./comm.js";

/** NCCL's collectives on contiguous tensors; dim 0 is the rank-major axis. Each returns a fresh tensor. */
export interface RawCollectives {
  readonly rank: number;
  readonly worldSize: number;
  /** send [N·c, …] → recv [N·c, …]: recv's rows [j·c, (j+1)·c) are rows [rank·c, (rank+1)·c) of rank j's send. */
  allToAll(send: Tensor): Promise<Tensor>;
  /** send [a, …] (the same shape on every rank) → [N·a, …], rank j's rows at [j·a, (j+1)·a). */
  allGather(send: Tensor): Promise<Tensor>;
  /** Element-wise reduction; the same shape on every rank. */
  allReduce(send: Tensor, op: ReduceOp): Promise<Tensor>;
  /** Sends to rank `to`, returns what rank `from` sent (the same shape as send on every rank). */
  sendRecv(send: Tensor, to: number, from: number): Promise<Tensor>;
  /** Resolves once every rank has reached it and this rank's device work is done. */
  barrier(): Promise<void>;
}

const META = 10; // dtype code, ndim, up to 8 dims
const DTYPES = ["f32", "bf16", "f16", "i32", "u8"] as const;

function shapeStr(s: readonly number[]): string {
  return `[${s.join(", ")}]`;
}

function normDim(op: string, dim: number, ndim: number, what: string): number {
  const d = dim < 0 ? dim + ndim : dim;
  if (!Number.isInteger(d) || d < 0 || d >= ndim)
    throw new CommError(`${op}: ${what} ${dim} is out of range for a tensor of ${ndim} dims`);
  return d;
}

/** x with its dims reordered by perm, contiguous: a view when only size-1 dims move, else a copy. */
function reorder(x: Tensor, perm: readonly number[]): Tensor {
  if (perm.every((p, i) => p === i)) return x.contiguous();
  const v = x.permuteView(perm);
  try {
    return v.contiguous();
  } finally {
    v.dispose();
  }
}

/**
 * The tensor `joined` [N, c_0, rest…] (N ranks' chunks, each in the order `front`
 * (dim d first, then the others)) laid out in x's dim order with the N chunks joined
 * along dim `cd`: one reorder and a reshape.
 */
function joinChunks(joined: Tensor, front: readonly number[], shape: readonly number[], cd: number): Tensor {
  // Axes of `joined`: 0 = rank, 1 + k = original dim front[k].
  const axisOf = new Map<number, number>(front.map((d, k) => [d, k + 1]));
  const perm: number[] = [];
  for (let d = 0; d < shape.length; d++) {
    if (d === cd) perm.push(0);
    perm.push(axisOf.get(d) as number);
  }
  const out = reorder(joined, perm);
  const s = [...shape];
  s[cd] = (s[cd] as number) * (joined.shape[0] as number);
  try {
    return out.reshape(s);
  } finally {
    out.dispose();
  }
}

export class CollectiveCommunicator implements Communicator {
  constructor(readonly raw: RawCollectives) {}

  get rank(): number {
    return this.raw.rank;
  }

  get worldSize(): number {
    return this.raw.worldSize;
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
    if (n === 1) return x.contiguous();
    const front = [sd, ...x.shape.map((_, i) => i).filter((i) => i !== sd)];
    const send = reorder(x, front);
    let recv: Tensor;
    try {
      recv = await this.raw.allToAll(send);
    } finally {
      send.dispose();
    }
    // recv = [N, c, rest…] in `front` order; chunk j came from rank j.
    const shape = [...x.shape];
    shape[sd] = len / n;
    const chunked = recv.reshape([n, ...front.map((d) => shape[d] as number)]);
    recv.dispose();
    try {
      return joinChunks(chunked, front, shape, cd);
    } finally {
      chunked.dispose();
    }
  }

  /**
   * Every rank's x joined along dim. The ranks first exchange their shapes (a tiny
   * all-gather read back to the host: one device sync), so a mismatch is an error on
   * every rank rather than a hang, and shards of unequal length along dim are padded
   * to the longest for NCCL and trimmed after.
   */
  async allGather(x: Tensor, dim: number): Promise<Tensor> {
    const n = this.worldSize;
    const d = normDim("allGather", dim, x.ndim, "dim");
    const shapes = await this.#exchangeShapes(x);
    for (const [j, s] of shapes.entries()) {
      const ok =
        s.dtype === x.dtype &&
        s.shape.length === x.ndim &&
        s.shape.every((v, i) => i === d || v === x.shape[i]);
      if (!ok)
        throw new CommError(
          `allGather: rank ${j} brought ${s.dtype} ${shapeStr(s.shape)}, rank ${this.rank} ${x.dtype} ${shapeStr(x.shape)}; all dims but ${d} must agree`,
        );
    }
    if (n === 1) return cast(x, x.dtype);
    const lens = shapes.map((s) => s.shape[d] as number);
    const longest = Math.max(...lens);
    const mine = x.shape[d] as number;
    const front = [d, ...x.shape.map((_, i) => i).filter((i) => i !== d)];
    let padded = x;
    if (mine < longest) {
      const ps = [...x.shape];
      ps[d] = longest - mine;
      const pad = zeros(ps, { dtype: x.dtype, device: x.device });
      padded = mine === 0 ? pad : concat([x, pad], d);
      if (padded !== pad) pad.dispose();
    }
    const send = reorder(padded, front);
    if (padded !== x) padded.dispose();
    let recv: Tensor;
    try {
      recv = await this.raw.allGather(send);
    } finally {
      send.dispose();
    }
    const shape = [...x.shape];
    shape[d] = longest;
    const chunked = recv.reshape([n, ...front.map((i) => shape[i] as number)]);
    recv.dispose();
    let joined: Tensor;
    try {
      joined = joinChunks(chunked, front, shape, d);
    } finally {
      chunked.dispose();
    }
    if (lens.every((l) => l === longest)) return joined;
    // Trim each rank's padding: rank j's rows are [j·longest, j·longest + lens[j]).
    const parts = lens.flatMap((l, j) => (l > 0 ? [slice(joined, d, j * longest, j * longest + l)] : []));
    joined.dispose();
    if (parts.length === 1) return parts[0] as Tensor;
    const out = concat(parts, d);
    for (const p of parts) p.dispose();
    return out;
  }

  /** One ring step; on NCCL the receiver allocates its own shape, so every rank's x must have the same shape. */
  async ringShift(x: Tensor, shift = 1): Promise<Tensor> {
    const n = this.worldSize;
    if (!Number.isInteger(shift)) throw new CommError(`ringShift: shift must be an integer, got ${shift}`);
    const to = (((this.rank + shift) % n) + n) % n;
    const from = (((this.rank - shift) % n) + n) % n;
    if (to === this.rank) return cast(x, x.dtype);
    const send = x.contiguous();
    try {
      return await this.raw.sendRecv(send, to, from);
    } finally {
      send.dispose();
    }
  }

  async allReduce(x: Tensor, op: ReduceOp = "sum"): Promise<Tensor> {
    if (!["sum", "max", "min", "avg"].includes(op))
      throw new CommError(`allReduce: op must be one of sum, max, min, avg, got '${String(op)}'`);
    if (this.worldSize === 1) return cast(x, x.dtype);
    const send = x.contiguous();
    try {
      return await this.raw.allReduce(send, op);
    } finally {
      send.dispose();
    }
  }

  barrier(): Promise<void> {
    return this.raw.barrier();
  }

  async #exchangeShapes(x: Tensor): Promise<{ dtype: string; shape: number[] }[]> {
    if (x.ndim > META - 2) throw new CommError(`allGather: at most ${META - 2} dims, got ${x.ndim}`);
    const meta = new Int32Array(META);
    meta[0] = DTYPES.indexOf(x.dtype as (typeof DTYPES)[number]);
    meta[1] = x.ndim;
    x.shape.forEach((v, i) => {
      meta[2 + i] = v;
    });
    const t = Tensor.from(meta, [1, META], { dtype: "i32", device: x.device });
    let all: Tensor;
    try {
      all = this.worldSize === 1 ? cast(t, "i32") : await this.raw.allGather(t);
    } finally {
      t.dispose();
    }
    let v: Int32Array;
    try {
      v = (await all.toTypedArray()) as Int32Array;
    } finally {
      all.dispose();
    }
    return Array.from({ length: this.worldSize }, (_, j) => {
      const row = v.subarray(j * META, (j + 1) * META);
      return {
        dtype: DTYPES[row[0] as number] ?? `dtype#${row[0]}`,
        shape: Array.from(row.subarray(2, 2 + (row[1] as number))),
      };
    });
  }
}

/**
 * RawCollectives for rank `rank` of an InProcessGroup (CPU tests of the layout code):
 * the byte movement NCCL does, with slice/concat on the ranks' tensors.
 */
export function inProcessRaw(group: InProcessGroup, rank: number): RawCollectives {
  const comm = group.comm(rank);
  const n = group.worldSize;
  return {
    rank,
    worldSize: n,
    // An all-to-all along dim 0, joined along dim 0: the in-process one, which checks shapes.
    allToAll: (send) => comm.allToAll(send, { splitDim: 0, concatDim: 0 }),
    async allGather(send) {
      const all = await comm.allGather(send, 0);
      // NCCL's contract is equal sizes on every rank (it would hang or corrupt; here it throws).
      if ((all.shape[0] as number) !== (send.shape[0] as number) * n) {
        all.dispose();
        throw new CommError("allGather: ranks brought tensors of different sizes");
      }
      return all;
    },
    allReduce: (send, op) => comm.allReduce(send, op),
    async sendRecv(send, to, from) {
      // Every rank sends to rank + k and receives from rank − k for one k (a ring step).
      const k = (((to - rank) % n) + n) % n;
      if ((((rank - from) % n) + n) % n !== k)
        throw new CommError(`sendRecv: to ${to} and from ${from} are not one ring step from rank ${rank}`);
      const got = await comm.ringShift(send, k);
      if (got.shape.join() !== send.shape.join()) {
        got.dispose();
        throw new CommError(
          `sendRecv: rank ${from} sent ${shapeStr(got.shape)} but rank ${rank} expects ${shapeStr(send.shape)}`,
        );
      }
      return got;
    },
    barrier: () => comm.barrier(),
  };
}

/** For runRanks: rank r's CollectiveCommunicator over the group (the NCCL layout code, on the CPU). */
export function collectiveComm(group: InProcessGroup, rank: number): Communicator {
  return new CollectiveCommunicator(inProcessRaw(group, rank));
}

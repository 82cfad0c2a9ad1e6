// NCCL communicators (multi-GPU, one process per GPU): the thin typed layer over the
// addon. Collectives are enqueued on the device stream of the tensors they move and
// return at once, like ops; the caller allocates `recv`. The layout work (which dim
// is split, joined, padded) is @tessera/core's NcclCommunicator.
//
// A build without NCCL (no CUDA compiler, or CMake found no nccl.h/libnccl) loads as
// before: ncclStatus() says why, and every other call throws NcclUnavailableError.
import { type NativeNcclComm, native } from "./binding.js";
import { Device, type DeviceLike } from "./device.js";
import { callNative, NcclUnavailableError, translateError } from "./errors.js";
import type { Tensor } from "./tensor.js";

/** Bytes of an NCCL unique id. */
export const NCCL_ID_BYTES = 128;

export interface NcclStatus {
  /** libtessera_nccl.so exists next to the addon. */
  built: boolean;
  /** It loaded (with its libnccl.so.2): communicators can be made where CUDA devices exist. */
  available: boolean;
  /** NCCL's version code, e.g. 22203 for 2.22.3 (0 when not available). */
  version: number;
  /** Why not available ("" when it is). */
  reason: string;
}

export function ncclStatus(): NcclStatus {
  return native.ncclStatus();
}

/** Throws NcclUnavailableError (with what to do) unless this build can use NCCL. */
export function requireNccl(): void {
  const s = ncclStatus();
  if (!s.available) throw new NcclUnavailableError(s.reason);
}

/** A fresh unique id: rank 0 makes it and every rank must receive it (see core's rendezvous). */
export function ncclUniqueId(): Uint8Array {
  return new Uint8Array(callNative(() => native.ncclUniqueId()));
}

export type NcclReduceOp = "sum" | "prod" | "max" | "min" | "avg";

/** One rank's NCCL communicator on one CUDA device. */
export class NcclComm {
  private constructor(
    readonly native: NativeNcclComm,
    readonly device: Device,
  ) {}

  /**
   * Joins the communicator of `worldSize` ranks as `rank`, on `device` (a CUDA device).
   * Resolves once every rank has joined (NCCL's init waits for all of them; it runs
   * off the JS thread).
   */
  static async init(id: Uint8Array, worldSize: number, rank: number, device: DeviceLike): Promise<NcclComm> {
    const dev = Device.parse(device);
    let c: NativeNcclComm;
    try {
      c = await callNative(() => native.ncclInit(id, worldSize, rank, dev.name));
    } catch (e) {
      throw translateError(e);
    }
    return new NcclComm(c, dev);
  }

  get rank(): number {
    return this.native.rank;
  }

  get worldSize(): number {
    return this.native.worldSize;
  }

  get destroyed(): boolean {
    return this.native.destroyed;
  }

  /** recv (send's size) gets chunk `rank` of every rank's send, in rank order (chunks: send cut in worldSize equal parts). */
  allToAll(send: Tensor, recv: Tensor): void {
    callNative(() => this.native.allToAll(send.handle("allToAll", "send"), recv.handle("allToAll", "recv")));
  }

  /** recv (worldSize × send) = every rank's send, in rank order. */
  allGather(send: Tensor, recv: Tensor): void {
    callNative(() =>
      this.native.allGather(send.handle("allGather", "send"), recv.handle("allGather", "recv")),
    );
  }

  /** recv = op over every rank's send, element-wise (recv may be send). */
  allReduce(send: Tensor, recv: Tensor, op: NcclReduceOp = "sum"): void {
    callNative(() =>
      this.native.allReduce(send.handle("allReduce", "send"), recv.handle("allReduce", "recv"), op),
    );
  }

  /** recv = root's send on every rank. */
  broadcast(send: Tensor, recv: Tensor, root: number): void {
    callNative(() =>
      this.native.broadcast(send.handle("broadcast", "send"), recv.handle("broadcast", "recv"), root),
    );
  }

  /** Sends `send` to rank `to` and receives `recv` from rank `from` (one ring step). */
  sendRecv(send: Tensor, to: number, recv: Tensor, from: number): void {
    callNative(() =>
      this.native.sendRecv(send.handle("sendRecv", "send"), to, recv.handle("sendRecv", "recv"), from),
    );
  }

  /** Frees the communicator (after the device has finished its collectives). */
  destroy(): void {
    callNative(() => this.native.destroy());
  }
}

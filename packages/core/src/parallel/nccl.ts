// The Communicator of a multi-GPU run: one process per GPU, NCCL between them.
//
//   const { comm, device } = await NcclCommunicator.fromEnv();   // torchrun's variables
//   ... new UlyssesWanTransformer(model, comm) ...
//   comm.destroy();
//
// Collectives are enqueued on the device stream of their tensors (no host sync),
// except allGather, which first exchanges shapes (see CollectiveCommunicator).
import {
  cudaStatus,
  Device,
  full,
  NCCL_ID_BYTES,
  NcclComm,
  ncclUniqueId,
  requireNccl,
  Tensor,
} from "@tessera/native";
import { CollectiveCommunicator, type RawCollectives } from "./collective.js";
import type { ReduceOp } from "./comm.js";
import { type DistributedEnv, distributedEnv, rankDeviceIndex, rendezvous } from "./rendezvous.js";

/** RawCollectives on an NCCL communicator: each call allocates its output and enqueues the collective. */
export class NcclRaw implements RawCollectives {
  constructor(readonly comm: NcclComm) {}

  get rank(): number {
    return this.comm.rank;
  }

  get worldSize(): number {
    return this.comm.worldSize;
  }

  #empty(shape: number[], like: Tensor): Tensor {
    return Tensor.empty(shape, { dtype: like.dtype, device: like.device });
  }

  async allToAll(send: Tensor): Promise<Tensor> {
    const recv = this.#empty(send.shape, send);
    return this.#run(recv, () => this.comm.allToAll(send, recv));
  }

  async allGather(send: Tensor): Promise<Tensor> {
    const s = [...send.shape];
    s[0] = (s[0] as number) * this.worldSize;
    const recv = this.#empty(s, send);
    return this.#run(recv, () => this.comm.allGather(send, recv));
  }

  async allReduce(send: Tensor, op: ReduceOp): Promise<Tensor> {
    const recv = this.#empty(send.shape, send);
    return this.#run(recv, () => this.comm.allReduce(send, recv, op));
  }

  async sendRecv(send: Tensor, to: number, from: number): Promise<Tensor> {
    const recv = this.#empty(send.shape, send);
    return this.#run(recv, () => this.comm.sendRecv(send, to, recv, from));
  }

  async barrier(): Promise<void> {
    const one = full([1], 1, { device: this.comm.device });
    try {
      this.comm.allReduce(one, one, "sum");
      // The reduction completes only once every rank has enqueued it.
      await this.comm.device.synchronize();
    } finally {
      one.dispose();
    }
  }

  #run(recv: Tensor, fn: () => void): Tensor {
    try {
      fn();
    } catch (e) {
      recv.dispose();
      throw e;
    }
    return recv;
  }
}

export interface NcclFromEnvOptions {
  /** Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Rendezvous timeout (default 120 s). */
  timeoutMs?: number;
}

export class NcclCommunicator extends CollectiveCommunicator {
  constructor(
    readonly nccl: NcclComm,
    readonly device: Device,
  ) {
    super(new NcclRaw(nccl));
  }

  /**
   * Joins the run described by torchrun's variables (see distributedEnv): picks this
   * rank's GPU, hands rank 0's NCCL id to every rank (TCP on MASTER_ADDR:MASTER_PORT,
   * or TESSERA_NCCL_ID_FILE), and inits the communicator. Throws NcclUnavailableError
   * (saying what to do) on a build without NCCL, DistributedEnvError on bad variables.
   */
  static async fromEnv(
    opts: NcclFromEnvOptions = {},
  ): Promise<{ comm: NcclCommunicator; env: DistributedEnv; device: Device }> {
    const env = distributedEnv(opts.env ?? process.env) ?? {
      rank: 0,
      worldSize: 1,
      localRank: 0,
      localWorldSize: 1,
    };
    requireNccl();
    const s = cudaStatus();
    if (!s.available) throw new Error(`rank ${env.rank}: no CUDA device: ${s.reason}`);
    const device = Device.cuda(rankDeviceIndex(env, s.count));
    const id = await rendezvous(env, ncclUniqueId, NCCL_ID_BYTES, opts.timeoutMs);
    const nccl = await NcclComm.init(id, env.worldSize, env.rank, device);
    return { comm: new NcclCommunicator(nccl, device), env, device };
  }

  /** Frees the NCCL communicator (after this rank's device work is done). */
  async destroy(): Promise<void> {
    if (this.nccl.destroyed) return;
    await this.device.synchronize();
    this.nccl.destroy();
  }
}

// Two experts that share the denoising (Wan2.2 A14B): the first, diffusers'
// `transformer` (the high-noise expert), runs every step whose timestep is at or
// above the boundary, boundary_ratio × num_train_timesteps; the second,
// `transformer_2` (the low-noise expert), runs the rest, each with its own guidance
// scale (guidance_scale_2, the first's when unset). That is diffusers' WanPipeline
// rule; the choice looks at the timestep alone, so it composes with any conditioning
// (text only, or Wan2.2 I2V-A14B's image latents) and gives every rank of a parallel
// plan the same expert at the same step.
//
// Both experts need not sit on the device. A 14B expert in bf16 is 28.6 GB, and two
// of them with umT5-XXL and a step's activations crowd an 80 GB GPU, so where memory
// requires it (or when asked) only the expert that runs is resident: the idle one
// waits in page-locked host memory, and the swap at the boundary copies it in at bus
// speed. The host copy of an expert is kept once made, so a swap copies one expert
// to the device and merely frees the other; only an expert whose weights changed
// while resident (a LoRA merged) is copied back to the host first.
import { copyAsync, Device, pinnedEmpty, Tensor } from "@tessera/native";
import type { WeightStore } from "../weights/store.js";

/** The boundary timestep of a two-expert model (diffusers: boundary_ratio × num_train_timesteps). */
export function boundaryTimestep(boundaryRatio: number, numTrainTimesteps: number): number {
  return boundaryRatio * numTrainTimesteps;
}

/** The expert that denoises at timestep `t`: 0 (the first, high-noise) at or above the boundary, else 1. */
export function expertAt(t: number, boundary: number | null): 0 | 1 {
  return boundary === null || t >= boundary ? 0 : 1;
}

/**
 * The guidance an expert's step combines its branches with. When the run has both
 * branches (some expert guides above 1) an expert at 1 or below takes the conditional
 * branch alone (scale 1: exactly it), as a one-branch run would.
 */
export function expertGuidance(scale: number, bothBranches: boolean): number {
  return bothBranches && scale <= 1 ? 1 : scale;
}

/**
 * Whether to keep only the running expert on the device: "always", "never", or
 * "auto" — when the second expert and the run's working memory would not fit beside
 * the first in the device's memory (never on the CPU, whose "device" is host memory).
 */
export type ExpertSwap = "auto" | "always" | "never";

export const EXPERT_SWAPS: readonly ExpertSwap[] = ["auto", "always", "never"];

/** What the "auto" choice needs to know (bytes). */
export interface SwapBudget {
  device: Device;
  /** Bytes of the second expert's weights. */
  expertBytes: number;
  /** Bytes a generation needs besides the weights (activations, the VAE decode), as estimated. */
  workingBytes: number;
}

/** True when the idle expert must wait in host memory. */
export function needsSwap(mode: ExpertSwap, b: SwapBudget): boolean {
  if (mode !== "auto") return mode === "always";
  if (b.device.kind === "cpu") return false;
  const total = b.device.info().totalMemory;
  const used = b.device.memoryStats().inUse;
  // A margin for the CUDA context, cuBLASLt's workspace and fragmentation.
  const margin = 2 * 2 ** 30;
  return used + b.expertBytes + b.workingBytes + margin > total;
}

/** The experts' weights and where they are: both on the device, or the running one only. */
export class ExpertResidency {
  readonly #stores: readonly WeightStore[];
  /** Each expert's host copy (page-locked), once one was made. */
  readonly #host: (Map<string, Tensor> | null)[];
  /** The store version each host copy holds. */
  readonly #hostVersion: number[];
  readonly #resident: boolean[];
  /** Swaps done since the pipeline was made. */
  swaps = 0;

  /**
   * `stores`: each expert's weights, the first on `device`; with `swap`, the second's
   * in host memory as loaded (adopt() moves them to page-locked memory), else on the
   * device too.
   */
  constructor(
    stores: readonly WeightStore[],
    readonly device: Device,
    readonly swap: boolean,
    /** Which stores are on the device now (default: all without swap, else the first). */
    resident?: readonly boolean[],
  ) {
    this.#stores = stores;
    this.#host = stores.map(() => null);
    this.#hostVersion = stores.map(() => -1);
    this.#resident = stores.map((_, i) => resident?.[i] ?? (!swap || i === 0));
  }

  isResident(i: number): boolean {
    return this.#resident[i] === true;
  }

  /** Moves the idle experts' tensors, as loaded on the host, into page-locked memory for the device. */
  async adopt(): Promise<void> {
    for (const [i, store] of this.#stores.entries()) {
      if (this.#resident[i]) continue;
      const moved = new Map<string, Tensor>();
      for (const name of store.names()) {
        const t = store.get(name);
        const p = pinnedEmpty(t.shape, { dtype: t.dtype, forDevice: this.device });
        copyAsync(p, t);
        moved.set(name, p);
      }
      for (const t of store.relocate(moved).values()) t.dispose();
      this.#host[i] = moved;
      this.#hostVersion[i] = store.version;
    }
    // Host to host: the copies run in the CPU's queue, which a CUDA device does not wait on.
    await Device.cpu.synchronize();
  }

  /**
   * Makes expert `i` resident: with swapping on, the other goes to host memory first
   * (its device memory is what `i` then takes). Resolves to the milliseconds it took,
   * the copies waited for; 0 when `i` was resident already.
   */
  async ensure(i: number): Promise<number> {
    if (this.#resident[i]) return 0;
    const t0 = performance.now();
    for (const [j, resident] of this.#resident.entries()) if (resident && j !== i) this.#offload(j);
    this.#restore(i);
    await this.device.synchronize();
    this.swaps++;
    return performance.now() - t0;
  }

  /**
   * Moves expert `i` to host memory now (a no-op when it is there), freeing its device
   * memory; resolves to the milliseconds it took, the copy waited for.
   */
  async offload(i: number): Promise<number> {
    if (!this.#resident[i]) return 0;
    const t0 = performance.now();
    this.#offload(i);
    await this.device.synchronize();
    return performance.now() - t0;
  }

  // Device → host: the host copy is reused, and copied into only when stale. The
  // device tensors are dropped at once; the allocator hands their memory out in
  // stream order, after the copies that read it.
  #offload(j: number): void {
    const store = this.#stores[j] as WeightStore;
    const stale = this.#hostVersion[j] !== store.version;
    const host = this.#host[j] ?? new Map<string, Tensor>();
    const moved = new Map<string, Tensor>();
    for (const name of store.names()) {
      const t = store.get(name);
      let h = host.get(name);
      if (!h) {
        h = pinnedEmpty(t.shape, { dtype: t.dtype, forDevice: this.device });
        host.set(name, h);
      }
      if (stale) copyAsync(h, t);
      moved.set(name, h);
    }
    for (const t of store.relocate(moved).values()) t.dispose();
    this.#host[j] = host;
    this.#hostVersion[j] = store.version;
    this.#resident[j] = false;
  }

  // Host → device: fresh device tensors filled from the host copy, which stays.
  #restore(i: number): void {
    const store = this.#stores[i] as WeightStore;
    const moved = new Map<string, Tensor>();
    try {
      for (const name of store.names()) {
        const h = store.get(name);
        const d = Tensor.empty(h.shape, { dtype: h.dtype, device: this.device });
        moved.set(name, d);
        copyAsync(d, h);
      }
    } catch (e) {
      for (const t of moved.values()) t.dispose();
      throw e;
    }
    // What the store held are the host copy (as made by adopt() or an offload, or as
    // given when the pipeline was made without adopt()): kept for the next offload.
    this.#host[i] = store.relocate(moved);
    this.#hostVersion[i] = store.version;
    this.#resident[i] = true;
  }

  /** Frees the host copies (the stores free what they hold themselves). */
  dispose(): void {
    for (const [i, host] of this.#host.entries()) {
      if (host) for (const t of host.values()) t.dispose();
      this.#host[i] = null;
    }
  }
}

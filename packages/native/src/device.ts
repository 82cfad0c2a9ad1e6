// Devices: "cpu" always; "cuda:N" where the CUDA backend was built and a GPU is present.
import { native } from "./binding.js";
import { callNative, DeviceError } from "./errors.js";

export type DeviceLike = Device | string;

export class Device {
  private constructor(
    readonly kind: "cpu" | "cuda",
    readonly index: number,
  ) {}

  static readonly cpu = new Device("cpu", 0);

  static cuda(index = 0): Device {
    return new Device("cuda", index);
  }

  /** Parses "cpu", "cuda" or "cuda:N"; throws a clear error for anything else. */
  static parse(d: DeviceLike): Device {
    if (d instanceof Device) return d;
    if (d === "cpu") return Device.cpu;
    const m = /^cuda(?::(\d{1,4}))?$/.exec(d);
    if (!m) throw new DeviceError(`unknown device '${d}'; use 'cpu', 'cuda' or 'cuda:N'`);
    return Device.cuda(m[1] ? Number(m[1]) : 0);
  }

  get name(): string {
    return this.kind === "cpu" ? "cpu" : `cuda:${this.index}`;
  }

  toString(): string {
    return this.name;
  }

  equals(other: DeviceLike): boolean {
    return Device.parse(other).name === this.name;
  }

  info(): DeviceInfo {
    return callNative(() => native.deviceInfo(this.name));
  }

  memoryStats(): MemoryStats {
    return callNative(() => native.memoryStats(this.name));
  }

  /** Caps the bytes live tensors may hold on this device (0 removes the cap). */
  setMemoryLimit(bytes: number): void {
    callNative(() => native.setMemoryLimit(this.name, bytes));
  }

  /** Returns cached blocks to the system (or the CUDA driver). */
  emptyCache(): void {
    callNative(() => native.emptyCache(this.name));
  }

  /**
   * CPU only: runs each op on the calling thread as it is enqueued (true) instead of on
   * the executor thread (false, the default). Inline, an op's inputs are released as it
   * returns, so memory is freed in program order, as a CUDA stream frees it, and
   * memoryStats().peak is the peak the same op sequence reaches on a GPU; queued, JS
   * runs ahead of the executor and every queued op holds its inputs until it runs. For
   * tests and memory measurement: it blocks the event loop. Switching waits for the
   * queued work first. TESSERA_CPU_INLINE=1 starts the CPU backend inline.
   */
  setInline(on: boolean): void {
    if (this.kind !== "cpu")
      throw new DeviceError(
        `setInline: only the CPU backend runs ops inline; ${this.name} already frees memory in stream order`,
      );
    callNative(() => native.setCpuInline(on));
  }

  /** Resolves when all work submitted to this device is done; rejects with its error if any failed. */
  async synchronize(): Promise<void> {
    try {
      await native.synchronize(this.name);
    } catch (e) {
      throw new DeviceError((e as Error).message);
    }
  }
}

export interface DeviceInfo {
  name: string;
  description: string;
  totalMemory: number;
  threads: number;
  sm: number;
  hasBlas: boolean;
}

export interface MemoryStats {
  inUse: number;
  cached: number;
  peak: number;
  limit: number;
  allocations: number;
}

export interface CudaStatus {
  built: boolean;
  available: boolean;
  count: number;
  reason: string;
}

export function cudaStatus(): CudaStatus {
  return native.cudaStatus();
}

/** Every device this process can use: the CPU, then each CUDA GPU. */
export function devices(): Device[] {
  const s = cudaStatus();
  const list = [Device.cpu];
  for (let i = 0; i < (s.available ? s.count : 0); i++) list.push(Device.cuda(i));
  return list;
}

/** The best device here: the first GPU if there is one, else the CPU. */
export function defaultDevice(): Device {
  return cudaStatus().available ? Device.cuda(0) : Device.cpu;
}

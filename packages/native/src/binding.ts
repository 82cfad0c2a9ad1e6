// Loads the compiled addon and tells it where the optional CUDA library is.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface NativeTensorHandle {
  readonly shape: number[];
  readonly strides: number[];
  readonly offset: number;
  readonly dtype: string;
  readonly device: string;
  readonly disposed: boolean;
  readonly contiguous: boolean;
  dispose(): void;
  read(): Promise<ArrayBuffer>;
}

/** A communicator of libtessera_nccl.so (see nccl.ts); collectives enqueue on the tensors' device stream. */
export interface NativeNcclComm {
  readonly rank: number;
  readonly worldSize: number;
  readonly device: string;
  readonly destroyed: boolean;
  allToAll(send: NativeTensorHandle, recv: NativeTensorHandle): void;
  allGather(send: NativeTensorHandle, recv: NativeTensorHandle): void;
  allReduce(send: NativeTensorHandle, recv: NativeTensorHandle, op: string): void;
  broadcast(send: NativeTensorHandle, recv: NativeTensorHandle, root: number): void;
  sendRecv(send: NativeTensorHandle, to: number, recv: NativeTensorHandle, from: number): void;
  destroy(): void;
}

/** A captured CUDA graph (see graph.ts). */
export interface NativeGraphHandle {
  readonly disposed: boolean;
  replay(): void;
  dispose(): void;
}

export type AttrValue = boolean | number | string | number[] | NativeTensorHandle | null | undefined;

export interface NativeAddon {
  TensorHandle: abstract new () => NativeTensorHandle;
  fromBuffer(device: string, dtype: string, shape: number[], data: ArrayBufferView): NativeTensorHandle;
  empty(device: string, dtype: string, shape: number[]): NativeTensorHandle;
  pinnedEmpty(device: string, dtype: string, shape: number[]): NativeTensorHandle;
  copyAsync(dst: NativeTensorHandle, src: NativeTensorHandle, side?: boolean): void;
  /** Absent from addons built before the copy stream (then copies run on the one stream). */
  waitCopies?(device: string): void;
  view(t: NativeTensorHandle, shape: number[], strides: number[], offset: number): NativeTensorHandle;
  op(
    name: string,
    inputs: (NativeTensorHandle | null)[],
    attrs: Record<string, AttrValue>,
  ): NativeTensorHandle | NativeTensorHandle[];
  opNames(): string[];
  kernelNames(device: string): string[];
  setCudaLibrary(path: string): void;
  cudaStatus(): { built: boolean; available: boolean; count: number; reason: string };
  deviceInfo(device: string): {
    name: string;
    description: string;
    totalMemory: number;
    threads: number;
    sm: number;
    hasBlas: boolean;
  };
  memoryStats(device: string): {
    inUse: number;
    cached: number;
    peak: number;
    limit: number;
    allocations: number;
  };
  setMemoryLimit(device: string, bytes: number): void;
  emptyCache(device: string): void;
  synchronize(device: string): Promise<void>;
  setPoison(on: boolean): void;
  setCpuInline(on: boolean): void;
  beginCapture(device: string): void;
  endCapture(device: string): NativeGraphHandle;
  abortCapture(device: string): void;
  setNcclLibrary(path: string): void;
  ncclStatus(): { built: boolean; available: boolean; version: number; reason: string };
  ncclUniqueId(): Uint8Array;
  ncclInit(id: Uint8Array, worldSize: number, rank: number, device: string): Promise<NativeNcclComm>;
}

const here = dirname(fileURLToPath(import.meta.url));
const buildDir = process.env.TESSERA_NATIVE_BUILD_DIR ?? join(here, "..", "build", "Release");

function load(): NativeAddon {
  const addonPath = join(buildDir, "tessera.node");
  if (!existsSync(addonPath)) {
    throw new Error(
      `@tessera/native: the native addon is not built (looked for ${addonPath}). ` +
        "In the repository run `pnpm build`; an installed package builds it on install: reinstall " +
        "@tessera/native with cmake and a C++17 compiler on PATH (with pnpm, allow its build script: " +
        "`pnpm approve-builds`).",
    );
  }
  const require = createRequire(import.meta.url);
  const addon = require(addonPath) as NativeAddon;
  const cudaLib = join(buildDir, "libtessera_cuda.so");
  if (existsSync(cudaLib)) addon.setCudaLibrary(cudaLib);
  const ncclLib = join(buildDir, "libtessera_nccl.so");
  if (existsSync(ncclLib)) addon.setNcclLibrary(ncclLib);
  return addon;
}

export const native: NativeAddon = load();

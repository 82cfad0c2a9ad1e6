// CUDA graphs from TypeScript: record the device work of a synchronous function
// once, then replay it with one launch. A replay reruns the recorded kernels on the
// same memory, so the tensors the capture read are its inputs (refill them with
// assign()) and the tensors it returned are its outputs (rewritten by each replay).
import { type NativeGraphHandle, native } from "./binding.js";
import { Device, type DeviceLike } from "./device.js";
import { callNative, DeviceError } from "./errors.js";

export class CudaGraph {
  constructor(
    private readonly h: NativeGraphHandle,
    readonly device: Device,
  ) {}

  /** Enqueues the recorded work on the device's stream (returns before it runs). */
  replay(): void {
    if (this.h.disposed) throw new DeviceError("this CUDA graph was disposed; capture it again");
    callNative(() => this.h.replay());
  }

  /**
   * Frees the graph. Waits (on this thread) for the work queued on the device so far, so that
   * its last replay is done before its memory goes back to the device's cache.
   */
  dispose(): void {
    this.h.dispose();
  }

  get disposed(): boolean {
    return this.h.disposed;
  }
}

export interface Captured<T> {
  graph: CudaGraph;
  /** What `fn` returned; its tensors live in the graph's memory and are rewritten by each replay. */
  result: T;
}

/**
 * Records the device work that `fn` submits as a CUDA graph instead of running it.
 * `fn` must be synchronous and may only run ops: uploading host data, reading a
 * tensor back or waiting for the device during the capture is an error. Waits
 * for the device first. Nothing `fn` computes is run by the capture itself: call
 * `graph.replay()` for that. On the CPU (or on any failure) it throws DeviceError.
 */
export async function captureGraph<T>(device: DeviceLike, fn: () => T): Promise<Captured<T>> {
  const d = Device.parse(device);
  if (d.kind !== "cuda")
    throw new DeviceError(`graph capture needs a CUDA device; ${d.name} runs ops as they are submitted`);
  await d.synchronize();
  callNative(() => native.beginCapture(d.name));
  let result: T;
  try {
    result = fn();
    if (result instanceof Promise)
      throw new DeviceError(
        "captureGraph: fn returned a Promise; the captured work must be submitted synchronously",
      );
  } catch (e) {
    native.abortCapture(d.name);
    throw e;
  }
  const h = callNative(() => native.endCapture(d.name));
  return { graph: new CudaGraph(h, d), result };
}

// Host memory a device copies to and from at full bus speed, and the asynchronous
// copy between the two: what moving a model's weights off a GPU and back costs
// (Wan2.2 A14B keeps its idle expert in host memory, pipelines/experts.ts). On CUDA
// the host tensor is page-locked (cudaMallocHost) and the copy a cudaMemcpyAsync on
// the device's stream; for the CPU both are what they would be anyway (an ordinary
// host tensor, a memcpy in the CPU's queue).
//
// A CUDA device also has a copy stream beside its compute stream: a copy made with
// `{ stream: "copy" }` starts once the work enqueued before it is done and runs on the
// copy engines while later kernels run; waitCopies(device) makes the work enqueued
// after it wait for those copies. Weight offload (core's block-offload.ts) copies the
// next transformer block in this way while the current one computes. On the CPU both
// are the plain queued copy and a no-op.
import { native } from "./binding.js";
import { Device, type DeviceLike } from "./device.js";
import type { DType } from "./dtype.js";
import { callNative } from "./errors.js";
import { type Shape, Tensor } from "./tensor.js";

/**
 * An uninitialised host ("cpu") tensor whose memory `forDevice` copies to and from
 * asynchronously: page-locked for a CUDA device, an ordinary host tensor for the CPU.
 * CPU ops may use it as any host tensor.
 */
export function pinnedEmpty(shape: Shape, opts: { dtype?: DType; forDevice: DeviceLike }): Tensor {
  const d = Device.parse(opts.forDevice);
  return new Tensor(callNative(() => native.pinnedEmpty(d.name, opts.dtype ?? "f32", [...shape])));
}

/**
 * Copies `src` into `dst` (same dtype and element count, both contiguous), one on the
 * host and one on a device, in the device's stream order and without waiting; two host
 * tensors, in the CPU's queue. Synchronize the device before the host tensor is read
 * on the CPU or disposed.
 */
export function copyAsync(dst: Tensor, src: Tensor, opts: { stream?: "compute" | "copy" } = {}): void {
  const side = opts.stream === "copy";
  callNative(() => native.copyAsync(dst.handle("copyAsync", "dst"), src.handle("copyAsync", "src"), side));
}

/**
 * Work enqueued on `device` after this call waits for every copy made before it on
 * the device's copy stream (copyAsync with `stream: "copy"`); the JS thread does not
 * wait. A no-op where copies run in the one stream's order anyway (the CPU).
 */
export function waitCopies(device: DeviceLike): void {
  const d = Device.parse(device);
  const wait = native.waitCopies;
  if (wait) callNative(() => wait.call(native, d.name));
}

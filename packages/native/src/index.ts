export { native } from "./binding.js";
export {
  type CudaStatus,
  cudaStatus,
  Device,
  type DeviceInfo,
  type DeviceLike,
  defaultDevice,
  devices,
  type MemoryStats,
} from "./device.js";
export * from "./dtype.js";
export * from "./errors.js";
export { type Captured, CudaGraph, captureGraph } from "./graph.js";
export { copyAsync, pinnedEmpty, waitCopies } from "./host-copy.js";
export {
  NCCL_ID_BYTES,
  NcclComm,
  type NcclReduceOp,
  type NcclStatus,
  ncclStatus,
  ncclUniqueId,
  requireNccl,
} from "./nccl.js";
export * from "./ops/attention.js";
export * from "./ops/conv.js";
export * from "./ops/elementwise.js";
export * from "./ops/gemm.js";
export * from "./ops/misc.js";
export * from "./ops/norm.js";
export * from "./ops/patch.js";
export { type OpAttr, runOp, runOpMulti } from "./ops/run.js";
export { enableLeakDetector, liveTensorCount, scope, takeLeakReports } from "./scope.js";
export { numel, type Shape, Tensor, type TensorOptions } from "./tensor.js";

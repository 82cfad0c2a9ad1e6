export { native } from "./binding.js";
export { Device, type DeviceInfo, type DeviceLike, type MemoryStats, type CudaStatus, cudaStatus, devices, defaultDevice } from "./device.js";
export * from "./dtype.js";
export * from "./errors.js";
export { scope, liveTensorCount, enableLeakDetector, takeLeakReports } from "./scope.js";
export { Tensor, type Shape, type TensorOptions, numel } from "./tensor.js";
export { runOp, runOpMulti, type OpAttr } from "./ops/run.js";

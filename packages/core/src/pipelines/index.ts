export * from "./demo-model.js";
export {
  boundaryTimestep,
  EXPERT_SWAPS,
  ExpertResidency,
  type ExpertSwap,
  expertAt,
  expertGuidance,
  needsSwap,
} from "./experts.js";
export * from "./family.js";
export { guidedVelocityAt, type StepModel, type StepTime, stepTimesteps } from "./guided-velocity.js";
export * from "./i2v-model-folder.js";
export * from "./image-conditioning.js";
export * from "./image-encoder-folder.js";
export * from "./load.js";
export * from "./loras.js";
export * from "./memory-estimate.js";
export * from "./model-folder.js";
export * from "./offload.js";
export * from "./options.js";
export * from "./parallel-generate.js";
export { pixelsToTensor, resizeCover } from "./pixels.js";
export * from "./preview.js";
export * from "./prompt-embeds.js";
export * from "./prompt-style.js";
export { StepGraph, type StepGraphReport } from "./step-graph.js";
export * from "./text-cache.js";
export { readExpandTimesteps, stepTime, TI2V_DEFAULTS } from "./ti2v.js";
export * from "./wan.js";

export * from "./demo-model.js";
export * from "./load.js";
export * from "./model-folder.js";
export * from "./options.js";
export { pixelsToTensor, resizeCover } from "./pixels.js";
export * from "./prompt-style.js";
export * from "./text-cache.js";
export * from "./wan.js";

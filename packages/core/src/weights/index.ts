export {
  type DiffusersComponent,
  type DiffusersFolder,
  loadComponentWeights,
  openDiffusersFolder,
} from "./diffusers.js";
export {
  inspectWeights,
  type LoadWeightsOptions,
  loadWeights,
  readJsonFile,
  type WeightEntry,
  type WeightSource,
  type WeightsInventory,
} from "./load.js";
export * from "./lora/index.js";
export {
  type DecodeOptions,
  decodeTensor,
  FP8_E4M3_TO_F32,
  FP8_E5M2_TO_F32,
  isSafetensorsDType,
  LOADABLE_DTYPES,
  MAX_HEADER_BYTES,
  parseSafetensorsHeader,
  type SafetensorsDType,
  SafetensorsFile,
  type SafetensorsHeader,
  safetensorsDTypeSize,
  type TensorInfo,
  type TensorToWrite,
  writeSafetensors,
} from "./safetensors.js";
export {
  type CheckpointFormat,
  COMFYUI_PREFIX,
  detectCheckpointFormat,
  loadSingleFileCheckpoint,
  type SingleFileOptions,
  wanTransformerKeyMap,
  wanTransformerOriginalNames,
  wanVaeKeyMap,
} from "./single-file.js";
export { deltaProblem, type WeightDelta, WeightError, WeightStore } from "./store.js";

// LoRAs for the Wan transformer: the file namings in use (keys.ts), a file read and
// checked against a model (adapter.ts). They merge through WeightStore.setDeltas.
export {
  type AdapterConfig,
  LoraAdapter,
  type LoraEntry,
  LoraError,
  type LoraNaming,
  type LoraPlan,
  type LoraTargetModel,
  planLora,
  planLoraFile,
} from "./adapter.js";
export { type LoraPart, type ParsedKey, parseLoraKey, WanModuleIndex } from "./keys.js";
export {
  mergedByHand,
  type SyntheticEntry,
  type SyntheticLoraOptions,
  writeSyntheticLora,
} from "./synthetic.js";

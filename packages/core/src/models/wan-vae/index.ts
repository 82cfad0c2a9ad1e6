export { CACHE_T, FeatureCache } from "./cache.js";
export {
  patchSize,
  spatialFactor,
  temporalFactor,
  type VaeLayer,
  type VaeLayout,
  type VaeShortcut,
  validateWanVaeConfig,
  WAN_VAE_TINY,
  WAN21_VAE,
  WAN22_VAE,
  WAN22_VAE_TINY,
  type WanVaeConfig,
  wanVaeLayout,
} from "./config.js";
export { randomWanVaeWeights, wanVaeParams } from "./params.js";
export {
  patchify,
  type Tile,
  tileGrid,
  unpatchify,
  WanVAE,
  type WanVaeDecodeOptions,
  type WanVaeTileOptions,
} from "./vae.js";

export { CACHE_T, FeatureCache } from "./cache.js";
export {
  spatialFactor,
  temporalFactor,
  type VaeLayer,
  type VaeLayout,
  validateWanVaeConfig,
  WAN_VAE_TINY,
  WAN21_VAE,
  type WanVaeConfig,
  wanVaeLayout,
} from "./config.js";
export { randomWanVaeWeights, wanVaeParams } from "./params.js";
export { type Tile, tileGrid, WanVAE, type WanVaeDecodeOptions, type WanVaeTileOptions } from "./vae.js";

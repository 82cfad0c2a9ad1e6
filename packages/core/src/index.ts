// The library: models, pipelines (with their parallel plans), schedulers, weights,
// tokenizers and video I/O. The procedural world the demo model was trained on, with
// its caption language, is a subpath of its own: @tessera/core/world.
export * from "./models/clip/index.js";
export * from "./models/t5/index.js";
export * from "./models/wan/block-offload.js";
export * from "./models/wan/config.js";
export * from "./models/wan/image.js";
export * from "./models/wan/params.js";
export * from "./models/wan/step-cache.js";
export * from "./models/wan/transformer.js";
export * from "./models/wan-vae/index.js";
export * from "./parallel/index.js";
export * from "./pipelines/index.js";
export * from "./prompt/index.js";
export * from "./schedulers/index.js";
export * from "./tokenizer/index.js";
export * from "./video/index.js";
export * from "./weights/index.js";
export * from "./weights/store.js";

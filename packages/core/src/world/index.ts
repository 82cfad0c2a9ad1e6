// The procedural video world: scenes, renderer, the held-out split, the model-free
// scorer and the dataset export, with the caption language it is described in
// (caption/: vocabulary and caption style). Published as @tessera/core/world.
export * from "../caption/index.js";
export * from "./export.js";
export * from "./prompt-set.js";
export * from "./render.js";
export * from "./scene.js";
export * from "./score.js";
export * from "./split.js";
export * from "./tokenizer.js";

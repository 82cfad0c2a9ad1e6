// The procedural video world: vocabulary, scenes, renderer, captions, the
// held-out split, the model-free scorer and the dataset export.
export * from "./caption.js";
export * from "./export.js";
export * from "./prompt-set.js";
export * from "./render.js";
export * from "./scene.js";
export * from "./score.js";
export * from "./split.js";
export * from "./tokenizer.js";
export * from "./vocabulary.js";

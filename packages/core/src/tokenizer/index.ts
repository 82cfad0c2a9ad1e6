export * from "./tokenizer.js";
export * from "./wordlevel.js";

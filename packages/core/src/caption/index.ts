// The world's caption language: its vocabulary and its one caption style.
export * from "./caption.js";
export * from "./vocabulary.js";

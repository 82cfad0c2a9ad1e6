export * from "./config.js";
export * from "./encoder.js";
export * from "./params.js";
export * from "./preprocess.js";

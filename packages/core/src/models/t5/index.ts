export * from "./bucket.js";
export * from "./config.js";
export * from "./encoder.js";
export * from "./params.js";

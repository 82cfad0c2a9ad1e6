export * from "./models/wan/config.js";
export * from "./models/wan/params.js";
export * from "./models/wan/transformer.js";
export * from "./weights/store.js";

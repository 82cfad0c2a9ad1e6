// The generation parameters, declared once (generation.ts), and what each surface
// derives from them. Importable without the native addon: `@tessera/core/params`.
export * from "./bytes.js";
export * from "./check.js";
export * from "./describe.js";
export * from "./generation.js";
export * from "./json-schema.js";
export * from "./names.js";
export * from "./text.js";
export type * from "./types.js";

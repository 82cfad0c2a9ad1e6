export { allCases } from "./cases.js";
export * from "./compare.js";
export * from "./conformance.js";
export * from "./peak.js";
export * from "./random.js";

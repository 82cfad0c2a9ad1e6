export { allCases } from "./cases.js";
export * from "./compare.js";
export * from "./conformance.js";
export * from "./random.js";

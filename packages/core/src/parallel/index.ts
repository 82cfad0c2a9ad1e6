export * from "./comm.js";
export * from "./ulysses.js";

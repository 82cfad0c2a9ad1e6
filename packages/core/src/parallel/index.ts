export * from "./collective.js";
export * from "./comm.js";
export * from "./nccl.js";
export * from "./rendezvous.js";
export * from "./ulysses.js";

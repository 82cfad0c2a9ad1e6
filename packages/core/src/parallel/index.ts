export * from "./collective.js";
export * from "./comm.js";
export * from "./nccl.js";
export * from "./plan.js";
export * from "./rendezvous.js";
export * from "./sequence.js";
export * from "./vae.js";

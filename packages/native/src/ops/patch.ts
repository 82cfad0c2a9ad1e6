// Filled in by the patch op family.
export {};

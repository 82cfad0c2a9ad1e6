// Filled in by the norm op family.
export {};

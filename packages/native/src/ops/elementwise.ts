// Filled in by the elementwise op family.
export {};

// Filled in by the misc op family.
export {};

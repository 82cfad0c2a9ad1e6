import type { ConformanceCase } from "../testing/conformance.js";

export const cases: ConformanceCase[] = [];

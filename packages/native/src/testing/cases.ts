// Every op family's conformance cases, in one list for the test and the GPU runner.

import { cases as attention } from "../ops/attention.cases.js";
import { cases as conv } from "../ops/conv.cases.js";
import { cases as elementwise } from "../ops/elementwise.cases.js";
import { cases as gemm } from "../ops/gemm.cases.js";
import { cases as misc } from "../ops/misc.cases.js";
import { cases as norm } from "../ops/norm.cases.js";
import { cases as patch } from "../ops/patch.cases.js";
import type { ConformanceCase } from "./conformance.js";

export const allCases: readonly ConformanceCase[] = [
  ...gemm,
  ...attention,
  ...patch,
  ...conv,
  ...norm,
  ...elementwise,
  ...misc,
];

// Matrix products.
import type { Tensor } from "../tensor.js";
import { runOp } from "./run.js";

export interface MatmulOptions {
  bias?: Tensor;
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
  epilogue?: "none" | "gelu_tanh" | "silu";
}

/** a @ b over the last two dims; b is 2-D (shared) or has a's batch dims. */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  return runOp(
    "matmul",
    [
      ["a", a],
      ["b", b],
    ],
    { ...opts },
  );
}

/** x @ weight^T + bias, as torch.nn.Linear (weight [out, in]). */
export function linear(
  x: Tensor,
  weight: Tensor,
  bias?: Tensor,
  opts: Pick<MatmulOptions, "epilogue"> = {},
): Tensor {
  return runOp(
    "linear",
    [
      ["x", x],
      ["weight", weight],
    ],
    { bias, ...opts },
  );
}

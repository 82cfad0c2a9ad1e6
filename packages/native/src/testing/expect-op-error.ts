// The bad-input assertion every op test uses: the call throws an OpError whose `arg`
// and message name the argument. Tensors the call creates are disposed. (Imports
// vitest, so it is not exported from testing/index.ts, which the GPU runner loads.)
import { expect } from "vitest";
import { OpError } from "../errors.js";
import { scope } from "../scope.js";

export interface OpErrorExpectation {
  /** The op the error must name. */
  op?: string;
  /** A pattern the message must match too. */
  message?: RegExp;
}

export function expectOpError(
  fn: () => unknown,
  arg: string,
  want: OpErrorExpectation | string | RegExp = {},
): void {
  const w: OpErrorExpectation =
    typeof want === "string" ? { op: want } : want instanceof RegExp ? { message: want } : want;
  let err: unknown;
  scope(() => {
    try {
      fn();
    } catch (e) {
      err = e;
    }
  });
  expect(err, `expected an OpError naming '${arg}'`).toBeInstanceOf(OpError);
  const e = err as OpError;
  expect(e.arg).toBe(arg);
  expect(e.message).toContain(`'${arg}'`);
  if (w.op) expect(e.op).toBe(w.op);
  if (w.message) expect(e.message).toMatch(w.message);
}

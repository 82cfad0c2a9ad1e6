// Model code that is written once and runs both synchronously and across ranks.
//
// On one device a forward pass is a synchronous sequence of enqueued ops: that is
// what a CUDA graph records (pipelines/step-graph.ts), and what costs nothing beyond
// the ops themselves. Split over ranks, the same pass waits at its split points for
// collectives, which return Promises. Rather than a second copy of each loop, the
// loops here take hooks that may return a Promise and continue synchronously for as
// long as none does: with no hooks (or synchronous ones) the result is a plain value
// and the op sequence is exactly the single-device one; from the first Promise on,
// the rest of the loop runs in its callback. Callbacks keep the async context of the
// scope() that registered them, so temporaries still land in the right scope.
import type { Tensor } from "@tessera/native";

export type MaybePromise<T> = T | Promise<T>;

/** f(x), now when x is a value, once it resolves when it is a Promise. */
export function andThen<T, U>(x: MaybePromise<T>, f: (v: T) => MaybePromise<U>): MaybePromise<U> {
  return x instanceof Promise ? x.then(f) : f(x);
}

/** x, which must not be a Promise: for paths that have no asynchronous split point. */
export function syncResult<T>(x: MaybePromise<T>, what: string): T {
  if (x instanceof Promise)
    throw new Error(`${what}: an asynchronous hook ran where only synchronous ones may`);
  return x;
}

/**
 * Runs `steps` in order, each on the previous one's output, and frees each output
 * (`first` too: it must be the caller's own intermediate) once the step that reads it
 * has been enqueued. Synchronous while every step is.
 */
export function chain(
  first: MaybePromise<Tensor>,
  steps: readonly ((x: Tensor) => MaybePromise<Tensor>)[],
): MaybePromise<Tensor> {
  return andThen(first, (x) => chainFrom(x, steps, 0));
}

function chainFrom(
  x: Tensor,
  steps: readonly ((x: Tensor) => MaybePromise<Tensor>)[],
  from: number,
): MaybePromise<Tensor> {
  for (let i = from; i < steps.length; i++) {
    const y = (steps[i] as (x: Tensor) => MaybePromise<Tensor>)(x);
    const prev = x;
    if (y instanceof Promise)
      return y.then((t) => {
        if (t !== prev) prev.dispose();
        return chainFrom(t, steps, i + 1);
      });
    if (y !== prev) prev.dispose();
    x = y;
  }
  return x;
}

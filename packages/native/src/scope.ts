// Explicit lifetime. Every tensor is tracked from creation until dispose():
// scope() disposes what was created inside it (except what it returns or keeps),
// and liveTensors() lets a test assert that nothing leaked. A FinalizationRegistry
// only *reports* tensors collected without dispose(): it never frees device memory
// behind the program's back.
import { AsyncLocalStorage } from "node:async_hooks";

export interface Disposable {
  dispose(): void;
  readonly disposed: boolean;
}

interface Frame {
  created: Set<Disposable>;
}

const frames = new AsyncLocalStorage<Frame>();
const live = new Set<Disposable>();
let leakReports: string[] = [];
const finalizer = new FinalizationRegistry<string>((label) => {
  leakReports.push(label);
});

/** Called by the Tensor constructor. */
export function track(t: Disposable, label: () => string): void {
  live.add(t);
  frames.getStore()?.created.add(t);
  if (leakCheck) finalizer.register(t, label(), t);
}

/** Called by Tensor.dispose(). */
export function untrack(t: Disposable): void {
  live.delete(t);
  if (leakCheck) finalizer.unregister(t);
}

let leakCheck = process.env.TESSERA_LEAK_CHECK === "1";

/** Turns on the garbage-collection leak detector (tests). */
export function enableLeakDetector(on = true): void {
  leakCheck = on;
}

/** Labels of tensors that were garbage-collected without dispose() since the last call. */
export function takeLeakReports(): string[] {
  const r = leakReports;
  leakReports = [];
  return r;
}

/** Number of tensors created and not yet disposed. */
export function liveTensorCount(): number {
  return live.size;
}

/** Runs fn; disposes every tensor created during it except those in its result and those passed to keep(). */
export function scope<T>(fn: (keep: <U extends Disposable>(t: U) => U) => T): T {
  const frame: Frame = { created: new Set() };
  const keep = <U extends Disposable>(t: U): U => {
    frame.created.delete(t);
    return t;
  };
  const finish = (result: unknown): void => {
    const returned = new Set<unknown>();
    collect(result, returned);
    for (const t of frame.created) if (!returned.has(t) && !t.disposed) t.dispose();
    // What survives belongs to the enclosing scope.
    const outer = parentFrame;
    if (outer) for (const t of returned) if (live.has(t as Disposable)) outer.created.add(t as Disposable);
  };
  const parentFrame = frames.getStore();
  let result: T;
  try {
    result = frames.run(frame, () => fn(keep));
  } catch (e) {
    finish(undefined);
    throw e;
  }
  if (result instanceof Promise) {
    return result.then(
      (v) => {
        finish(v);
        return v;
      },
      (e) => {
        finish(undefined);
        throw e;
      },
    ) as T;
  }
  finish(result);
  return result;
}

function collect(v: unknown, out: Set<unknown>, depth = 0): void {
  if (depth > 4 || v === null || typeof v !== "object") return;
  if (live.has(v as Disposable)) {
    out.add(v);
    return;
  }
  if (Array.isArray(v)) for (const x of v) collect(x, out, depth + 1);
  else if (v instanceof Map) for (const x of v.values()) collect(x, out, depth + 1);
  else if (Object.getPrototypeOf(v) === Object.prototype)
    for (const x of Object.values(v as object)) collect(x, out, depth + 1);
}

// The one path from TypeScript into a native op: checks that tensor arguments are
// live (naming them in the error) and translates native errors to typed ones.
import { type AttrValue, type NativeTensorHandle, native } from "../binding.js";
import { callNative } from "../errors.js";
import { Tensor } from "../tensor.js";

export type OpAttr = boolean | number | string | readonly number[] | Tensor | null | undefined;

/** Runs native op `name`; `inputs` are [argName, tensor] pairs in the op's input order. */
export function runOp(
  name: string,
  inputs: readonly (readonly [string, Tensor | null | undefined])[],
  attrs: Record<string, OpAttr> = {},
): Tensor {
  const out = runOpMulti(name, inputs, attrs);
  return out[0] as Tensor;
}

export function runOpMulti(
  name: string,
  inputs: readonly (readonly [string, Tensor | null | undefined])[],
  attrs: Record<string, OpAttr> = {},
): Tensor[] {
  const handles = inputs.map(([arg, t]) => (t ? t.handle(name, arg) : null));
  const nativeAttrs: Record<string, AttrValue> = {};
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    nativeAttrs[k] = v instanceof Tensor ? v.handle(name, k) : (v as AttrValue);
  }
  const r = callNative(() => native.op(name, handles, nativeAttrs));
  return Array.isArray(r) ? r.map((h) => new Tensor(h)) : [new Tensor(r as NativeTensorHandle)];
}

// Comparing tensors in tests: the largest absolute difference over the largest
// reference magnitude, a bound that one wrong element cannot hide in.
import type { Tensor } from "@tessera/native";
import { expect } from "vitest";

export async function maxRelErr(a: Tensor, b: Tensor): Promise<number> {
  expect(a.shape).toEqual(b.shape);
  const x = await a.toFloat32Array();
  const y = await b.toFloat32Array();
  let num = 0;
  let den = 0;
  for (let i = 0; i < y.length; i++) {
    num = Math.max(num, Math.abs((x[i] as number) - (y[i] as number)));
    den = Math.max(den, Math.abs(y[i] as number));
  }
  return num / den;
}

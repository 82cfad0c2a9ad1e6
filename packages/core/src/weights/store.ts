// A named set of weight tensors with errors that say which tensor is missing or
// mis-shaped, so a model that does not match its checkpoint fails clearly.
import type { Tensor } from "@tessera/native";

export class WeightError extends Error {
  override name = "WeightError";
}

export class WeightStore {
  readonly #tensors = new Map<string, Tensor>();
  constructor(readonly source: string) {}

  set(name: string, t: Tensor): void {
    const old = this.#tensors.get(name);
    if (old && old !== t) old.dispose();
    this.#tensors.set(name, t);
  }

  has(name: string): boolean {
    return this.#tensors.has(name);
  }

  names(): string[] {
    return [...this.#tensors.keys()];
  }

  /** The tensor `name`, checked against `shape` when given. */
  get(name: string, shape?: readonly number[]): Tensor {
    const t = this.#tensors.get(name);
    if (!t) throw new WeightError(`${this.source}: missing tensor '${name}'`);
    if (shape && (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])))
      throw new WeightError(
        `${this.source}: tensor '${name}' has shape [${t.shape.join(", ")}], expected [${shape.join(", ")}]`,
      );
    return t;
  }

  /** Throws naming the first tensors a model expects but the store lacks, or holds but the model does not use. */
  checkExactly(expected: ReadonlyMap<string, readonly number[]>): void {
    const missing = [...expected.keys()].filter((k) => !this.#tensors.has(k));
    const extra = [...this.#tensors.keys()].filter((k) => !expected.has(k));
    if (missing.length)
      throw new WeightError(
        `${this.source}: missing ${missing.length} tensor(s): ${missing.slice(0, 5).join(", ")}${missing.length > 5 ? ", ..." : ""}`,
      );
    if (extra.length)
      throw new WeightError(
        `${this.source}: ${extra.length} unexpected tensor(s): ${extra.slice(0, 5).join(", ")}${extra.length > 5 ? ", ..." : ""}`,
      );
    for (const [k, shape] of expected) this.get(k, shape);
  }

  dispose(): void {
    for (const t of this.#tensors.values()) t.dispose();
    this.#tensors.clear();
  }
}

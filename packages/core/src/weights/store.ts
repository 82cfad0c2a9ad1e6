// A named set of weight tensors with errors that say which tensor is missing or
// mis-shaped, so a model that does not match its checkpoint fails clearly.
//
// The store is also where weight deltas (LoRAs) merge in and out. A merged tensor is
// a plain tensor with new values, written in place, so a model reads it as it reads
// any weight (the step is the same op sequence with or without a LoRA, and anything
// holding the tensor — a captured CUDA graph — sees the new values). Removing a delta
// by subtracting it again is not exact in bf16 (nor in f32), so the store keeps a
// host copy of each tensor it changes, taken before the first change, and every
// change recomputes the tensor from that copy: W = cast(f32(W₀) + Σ scaleᵢ·Δᵢ). The
// same set of deltas so always gives the same bits whatever was merged before, and
// removing every delta gives back W₀ bit for bit. The price is host memory equal to
// the touched tensors in their own dtype (a LoRA on every linear layer of Wan2.1-14B
// in bf16: about 26 GB of host RAM); device memory holds only one tensor's f32
// temporaries at a time.
import { add, assign, axpby, cast, matmul, scope, type Tensor } from "@tessera/native";

export class WeightError extends Error {
  override name = "WeightError";
}

/**
 * A change to one tensor W: `scale · up @ down` (a low-rank pair: up [out, r, 1…],
 * down [r, in…], with out × in… = W's shape, as a LoRA holds a linear or conv
 * weight's factors), or `scale · diff` (diff of W's shape). Its tensors may live on
 * any device; they are copied to W's device for the merge.
 */
export type WeightDelta =
  | { readonly kind: "lowrank"; readonly up: Tensor; readonly down: Tensor; readonly scale: number }
  | { readonly kind: "full"; readonly diff: Tensor; readonly scale: number };

const same = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((d, i) => d === b[i]);
const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Why `d` cannot change a tensor of `shape` (null when it can). */
export function deltaProblem(d: WeightDelta, shape: readonly number[]): string | null {
  if (d.kind === "full")
    return same(d.diff.shape, shape)
      ? null
      : `a delta of shape [${d.diff.shape.join(", ")}] cannot change a tensor of shape [${shape.join(", ")}]`;
  const [out, r, ...ones] = d.up.shape;
  const [r2, ...inDims] = d.down.shape;
  const rest = shape.slice(1);
  if (
    out !== shape[0] ||
    r === undefined ||
    r !== r2 ||
    ones.some((x) => x !== 1) ||
    inDims.length === 0 ||
    numel(inDims) !== numel(rest) ||
    (inDims.length > 1 && !same(inDims, rest))
  )
    return `up [${d.up.shape.join(", ")}] @ down [${d.down.shape.join(", ")}] does not give a tensor of shape [${shape.join(", ")}]`;
  return null;
}

export class WeightStore {
  readonly #tensors = new Map<string, Tensor>();
  /** Host copies of the tensors deltas have changed, as they were before the first change. */
  readonly #originals = new Map<string, Tensor>();
  #version = 0;
  constructor(readonly source: string) {}

  /**
   * Bumped whenever a tensor's values change (set, setDeltas): a copy of the tensors
   * taken at one version is still theirs while the version holds (pipelines/experts.ts
   * keeps a host copy of an idle expert this way).
   */
  get version(): number {
    return this.#version;
  }

  /**
   * Puts each tensor of `moved` in place of the one of its name, holding the same
   * values elsewhere (the same shape and dtype, another device): a move, not a change,
   * so the version and the deltas' originals stay. Returns the tensors replaced; the
   * caller owns them.
   */
  relocate(moved: ReadonlyMap<string, Tensor>): Map<string, Tensor> {
    const old = new Map<string, Tensor>();
    for (const [name, t] of moved) {
      const cur = this.get(name);
      if (cur.dtype !== t.dtype || !same(cur.shape, t.shape))
        throw new WeightError(
          `${this.source}: tensor '${name}' cannot move to a ${t.dtype} [${t.shape.join(", ")}] copy of a ${cur.dtype} [${cur.shape.join(", ")}] tensor`,
        );
    }
    for (const [name, t] of moved) {
      old.set(name, this.get(name));
      this.#tensors.set(name, t);
    }
    return old;
  }

  set(name: string, t: Tensor): void {
    this.#version++;
    const old = this.#tensors.get(name);
    if (old && old !== t) old.dispose();
    this.#tensors.set(name, t);
    // A tensor set anew is its own original.
    this.#originals.get(name)?.dispose();
    this.#originals.delete(name);
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

  /** The tensors deltas have changed (they differ from what was loaded or set). */
  changed(): string[] {
    return [...this.#originals.keys()];
  }

  /**
   * Makes each tensor `deltas` names its original plus the sum of its deltas (in
   * order, accumulated in f32 on the tensor's device, cast back once), and every
   * tensor an earlier call changed and this one does not name its original again,
   * bit for bit. An empty map removes every delta. Each tensor is written in place.
   * Shapes are checked before anything changes; a failure midway (out of memory)
   * restores every tensor to its original before it is rethrown.
   */
  async setDeltas(deltas: ReadonlyMap<string, readonly WeightDelta[]>): Promise<void> {
    for (const [name, list] of deltas) {
      const t = this.get(name);
      for (const d of list) {
        const why = deltaProblem(d, t.shape);
        if (why) throw new WeightError(`${this.source}: tensor '${name}': ${why}`);
      }
    }
    const restore = [...this.#originals.keys()].filter((n) => !deltas.get(n)?.length);
    this.#version++;
    try {
      for (const name of restore) await this.#restore(name);
      for (const [name, list] of deltas) if (list.length) await this.#merge(name, list);
    } catch (e) {
      for (const name of [...this.#originals.keys()]) await this.#restore(name).catch(() => {});
      throw e;
    }
  }

  async #restore(name: string): Promise<void> {
    const orig = this.#originals.get(name);
    if (!orig) return;
    const t = this.get(name);
    const back = t.device.equals(orig.device) ? orig : await orig.to(t.device);
    try {
      assign(t, back);
    } finally {
      if (back !== orig) back.dispose();
    }
    this.#originals.delete(name);
    orig.dispose();
  }

  async #merge(name: string, list: readonly WeightDelta[]): Promise<void> {
    const t = this.get(name);
    let orig = this.#originals.get(name);
    if (!orig) {
      orig = await t.to("cpu");
      this.#originals.set(name, orig);
    }
    // The base is the original, wherever the tensor now is (it may hold an older merge).
    const owned: Tensor[] = [];
    const onDevice = async (x: Tensor) => {
      if (x.device.equals(t.device)) return x;
      const y = await x.to(t.device);
      owned.push(y);
      return y;
    };
    try {
      const base = await onDevice(orig);
      const parts: { d: WeightDelta; a: Tensor; b: Tensor | null }[] = [];
      for (const d of list)
        parts.push(
          d.kind === "full"
            ? { d, a: await onDevice(d.diff), b: null }
            : { d, a: await onDevice(d.up), b: await onDevice(d.down) },
        );
      scope(() => {
        const f32 = (x: Tensor) => (x.dtype === "f32" ? x : cast(x, "f32"));
        let acc = f32(base);
        for (const { d, a, b } of parts) {
          if (b === null) {
            acc = axpby(acc, f32(a), 1, d.scale);
            continue;
          }
          const up = f32(a).reshape([a.shape[0] as number, a.shape[1] as number]);
          const down = f32(b).reshape([b.shape[0] as number, -1]);
          acc = add(acc, matmul(up, down, { alpha: d.scale }).reshape(t.shape));
        }
        assign(t, acc);
      });
    } finally {
      for (const x of owned) x.dispose();
    }
  }

  dispose(): void {
    for (const t of this.#tensors.values()) t.dispose();
    this.#tensors.clear();
    for (const t of this.#originals.values()) t.dispose();
    this.#originals.clear();
  }
}

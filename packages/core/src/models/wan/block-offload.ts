// Weight offload for the Wan transformer: the blocks' weights (`blocks.N.*`, nearly
// all of a 14B model's 28.6 GB in bf16) wait in page-locked host memory, and only
// two blocks' worth of device memory holds them while the model runs: a ring of two
// slots, allocated once and refilled in turn. Before block i runs its weights are
// made present (copied in, unless the slot already holds them), and block i + 1's
// copy is enqueued into the other slot, so that on a device whose copies run beside
// its compute the transfer overlaps block i. After the last block, block 0 is
// fetched for the next step. The other weights (patch embedding, the time and text
// embedders, the head) stay resident.
//
// The model reads its weights through the store, so entering a block relocates that
// block's names to the slot's tensors and leaving it relocates them back to the host
// copies: at any time at most one block's names point at the device, and whatever
// else reads the store (an image-to-video block's image attention) sees the same.
//
// Ordering. A slot is filled on the device's copy stream (copyAsync with
// stream "copy"): each copy starts once the compute enqueued before it is done —
// block i − 1, the last reader of the slot being refilled, when block i + 1 is
// prefetched at enter(i) — and runs on the copy engines while block i computes.
// Before block i's first op, waitCopies() makes the compute stream wait for the
// copies enqueued so far (block i's, never the prefetch of i + 1, which comes after
// the wait). On the CPU the copy is a queued memcpy and the wait a no-op.
//
// CUDA graphs: a copy from host memory cannot be captured (the runtime refuses it),
// so the pipeline runs offloaded steps op by op and says so in its stepGraph report.
import { copyAsync, Device, pinnedEmpty, Tensor, waitCopies } from "@tessera/native";
import type { WeightStore } from "../../weights/store.js";

const BLOCK = /^blocks\.(\d+)\.(.+)$/;

interface Slot {
  /** The block whose weights the slot holds, -1 for none. */
  block: number;
  /** The store version the slot's copy was taken at. */
  version: number;
  /** Per-block name suffix -> device tensor. */
  tensors: Map<string, Tensor>;
}

export class BlockOffload {
  /** Per block: suffix -> its page-locked host tensor. */
  readonly #host: Map<string, Tensor>[] = [];
  readonly #slots: Slot[] = [];
  /** The block whose names the store points at the device (-1: none). */
  #current = -1;
  /** The block entered last (its slot is not the one to refill). */
  #last = -1;
  /** Blocks copied in since the manager was made (a prefetch counts when it is enqueued). */
  copies = 0;
  /** Bytes of one block's weights (one slot). */
  readonly blockBytes: number;

  /**
   * Takes over `store`'s block weights (`numLayers` blocks of identical shapes): each
   * is moved to page-locked host memory for `device` and its original freed; the
   * other weights are moved to `device` if they are not there. Call adopt() next.
   */
  constructor(
    readonly store: WeightStore,
    readonly numLayers: number,
    readonly device: Device,
  ) {
    for (let i = 0; i < numLayers; i++) this.#host.push(new Map());
    let bytes = 0;
    for (const name of store.names()) {
      const m = BLOCK.exec(name);
      if (!m) continue;
      const i = Number(m[1]);
      if (i >= numLayers) throw new Error(`BlockOffload: tensor '${name}' is past block ${numLayers - 1}`);
      (this.#host[i] as Map<string, Tensor>).set(m[2] as string, store.get(name));
      if (i === 0) bytes += store.get(name).nbytes;
    }
    this.blockBytes = bytes;
    const first = this.#host[0] as Map<string, Tensor>;
    for (const [i, blk] of this.#host.entries()) {
      const same =
        blk.size === first.size &&
        [...blk].every(([k, t]) => {
          const f = first.get(k);
          return f && f.dtype === t.dtype && f.shape.join() === t.shape.join();
        });
      if (!same)
        throw new Error(`BlockOffload: block ${i}'s weights differ in names or shapes from block 0's`);
    }
  }

  /**
   * Moves the block weights to page-locked host memory and the rest to the device,
   * and allocates the two device slots. Resolves once the copies are done.
   */
  async adopt(): Promise<void> {
    // The store's tensors may still be being written by queued CPU work (a cast at load).
    await Device.cpu.synchronize();
    // Block by block, each original freed once copied, so that host memory holds one
    // block twice at most (a 14B model's blocks are 28 GB).
    for (const [i, blk] of this.#host.entries()) {
      const moved = new Map<string, Tensor>();
      try {
        for (const [k, t] of blk) {
          const p = pinnedEmpty(t.shape, { dtype: t.dtype, forDevice: this.device });
          moved.set(`blocks.${i}.${k}`, p);
          copyAsync(p, t);
        }
      } catch (e) {
        for (const t of moved.values()) t.dispose();
        throw e;
      }
      // The copies read the originals: freed once they ran (a device original: in its stream).
      const old = this.store.relocate(moved);
      for (const [name, p] of moved) blk.set(name.slice(`blocks.${i}.`.length), p);
      await Device.cpu.synchronize();
      await this.device.synchronize();
      for (const t of old.values()) t.dispose();
    }
    const moved = new Map<string, Tensor>();
    try {
      for (const name of this.store.names()) {
        if (BLOCK.test(name)) continue;
        const t = this.store.get(name);
        if (t.device.name === this.device.name) continue;
        const d = Tensor.empty(t.shape, { dtype: t.dtype, device: this.device });
        moved.set(name, d);
        copyAsync(d, t);
      }
      for (let s = 0; s < 2; s++) {
        const tensors = new Map<string, Tensor>();
        this.#slots.push({ block: -1, version: -1, tensors });
        for (const [k, t] of this.#host[0] as Map<string, Tensor>)
          tensors.set(k, Tensor.empty(t.shape, { dtype: t.dtype, device: this.device }));
      }
    } catch (e) {
      for (const t of moved.values()) t.dispose();
      throw e;
    }
    const old = this.store.relocate(moved);
    await this.device.synchronize();
    for (const t of old.values()) t.dispose();
  }

  /** Whether block i's weights are in a slot, as of the store's current values. */
  #slotOf(i: number): number {
    return this.#slots.findIndex((s) => s.block === i && s.version === this.store.version);
  }

  // Copies block i into slot s (enqueued in the device's stream order).
  #fill(s: number, i: number): void {
    const slot = this.#slots[s] as Slot;
    const host = this.#host[i] as Map<string, Tensor>;
    for (const [k, d] of slot.tensors) copyAsync(d, host.get(k) as Tensor, { stream: "copy" });
    slot.block = i;
    slot.version = this.store.version;
    this.copies++;
  }

  /**
   * Block i is about to run: its weights are made present (copied in unless a slot
   * holds them), the store's block-i names point at them, and block i + 1 (block 0
   * after the last) is enqueued into the other slot.
   */
  enter(i: number): void {
    if (this.#slots.length === 0) throw new Error("BlockOffload: adopt() was not called");
    if (i === this.#current) return;
    this.park();
    let s = this.#slotOf(i);
    if (s < 0) {
      s = this.#last >= 0 && this.#slots[0]?.block === this.#last ? 1 : 0;
      this.#fill(s, i);
    }
    // Block i's copy (prefetched, or just enqueued) before its compute.
    waitCopies(this.device);
    this.#point(i, (this.#slots[s] as Slot).tensors);
    this.#current = i;
    this.#last = i;
    const next = (i + 1) % this.numLayers;
    if (next !== i && this.#slotOf(next) < 0) this.#fill(1 - s, next);
  }

  /** Points the store's names back at the host copies (after the last block, or before a LoRA merge). */
  park(): void {
    if (this.#current < 0) return;
    this.#point(this.#current, this.#host[this.#current] as Map<string, Tensor>);
    this.#current = -1;
  }

  #point(i: number, tensors: Map<string, Tensor>): void {
    const moved = new Map<string, Tensor>();
    for (const [k, t] of tensors) moved.set(`blocks.${i}.${k}`, t);
    this.store.relocate(moved);
  }

  /** Bytes of page-locked host memory the block weights take. */
  get hostBytes(): number {
    return this.blockBytes * this.numLayers;
  }

  /** Frees the slots (after the device is synchronized); the host copies are the store's, freed with it. */
  dispose(): void {
    this.park();
    // Whatever reuses the slots' memory comes after the copies into them.
    waitCopies(this.device);
    for (const s of this.#slots) for (const t of s.tensors.values()) t.dispose();
    this.#slots.length = 0;
  }
}

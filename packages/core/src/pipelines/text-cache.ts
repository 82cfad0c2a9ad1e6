// A small LRU of text-encoder states. Encoding a prompt with umT5-XXL costs about
// as much as a few denoising steps, and the same prompt (and the same negative
// prompt, nearly always) recurs across generations, so the last few are kept.
import type { Tensor } from "@tessera/native";

interface Entry {
  states: Tensor;
  pins: number;
}

export class TextStateCache {
  readonly #entries = new Map<string, Entry>();

  constructor(readonly capacity = 4) {
    if (!Number.isInteger(capacity) || capacity < 0)
      throw new RangeError(`TextStateCache: capacity must be a non-negative integer, got ${capacity}`);
  }

  static key(model: string, textLength: number, text: string): string {
    return `${model}\u0000${textLength}\u0000${text}`;
  }

  get size(): number {
    return this.#entries.size;
  }

  /**
   * The states for `key`, computed by `make` on a miss. The tensor stays owned by
   * the cache and pinned (never evicted) until `release(key)`.
   */
  async acquire(
    key: string,
    make: () => Promise<Tensor> | Tensor,
  ): Promise<{ states: Tensor; hit: boolean }> {
    const found = this.#entries.get(key);
    if (found) {
      // Re-insert to mark it most recently used.
      this.#entries.delete(key);
      this.#entries.set(key, found);
      found.pins++;
      return { states: found.states, hit: true };
    }
    const states = await make();
    // A concurrent acquire of the same key may have finished first; keep one copy.
    const raced = this.#entries.get(key);
    if (raced) {
      states.dispose();
      raced.pins++;
      return { states: raced.states, hit: true };
    }
    this.#entries.set(key, { states, pins: 1 });
    this.evict();
    return { states, hit: false };
  }

  release(key: string): void {
    const e = this.#entries.get(key);
    if (!e) return;
    e.pins = Math.max(0, e.pins - 1);
    this.evict();
  }

  /** Frees every entry not in use. */
  clear(): void {
    for (const [k, e] of this.#entries) {
      if (e.pins > 0) continue;
      e.states.dispose();
      this.#entries.delete(k);
    }
  }

  // Oldest unpinned entries go first; pinned ones may hold the cache over capacity for a while.
  private evict(): void {
    for (const [k, e] of this.#entries) {
      if (this.#entries.size <= this.capacity) return;
      if (e.pins > 0) continue;
      e.states.dispose();
      this.#entries.delete(k);
    }
  }
}

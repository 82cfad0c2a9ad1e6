// Per-key token buckets: each key may make `burst` requests at once and then
// `perMinute` a minute. In memory on purpose — a restart forgiving a client's
// recent requests is harmless, and it keeps SQLite off the hot path.
export interface RateLimitOptions {
  perMinute: number;
  burst: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  readonly #buckets = new Map<string, Bucket>();
  readonly #ratePerMs: number;

  constructor(private readonly o: RateLimitOptions) {
    this.#ratePerMs = o.perMinute / 60_000;
  }

  /** Takes one token for `who`; returns 0 if allowed, else the seconds until one is available. */
  take(who: string, now = Date.now()): number {
    let b = this.#buckets.get(who);
    if (!b) {
      b = { tokens: this.o.burst, at: now };
      this.#buckets.set(who, b);
    } else {
      b.tokens = Math.min(this.o.burst, b.tokens + (now - b.at) * this.#ratePerMs);
      b.at = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    if (this.#buckets.size > 10_000) this.#prune(now);
    return Math.max(1, Math.ceil((1 - b.tokens) / this.#ratePerMs / 1000));
  }

  // Full buckets carry no state worth keeping; dropping them bounds memory under many keys or IPs.
  #prune(now: number): void {
    for (const [k, b] of this.#buckets)
      if (b.tokens + (now - b.at) * this.#ratePerMs >= this.o.burst) this.#buckets.delete(k);
  }
}

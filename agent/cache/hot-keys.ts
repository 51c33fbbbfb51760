// Hot keys in bounded memory: the Space-Saving top-k sketch (Metwally et al., 2005) with periodic halving.
//
// At most `capacity` counters are kept. A key not counted yet takes over the smallest counter and
// inherits its count (plus one), so a key's count is over-estimated by at most that inherited count
// (`error`), and any key read more than n/capacity times of n reads is guaranteed to be held.
// halve() divides every count by two after each report, so the list follows what is hot now.

export interface HotKey {
  key: string;
  count: number;
  /** Upper bound of the over-count. */
  error: number;
}

/** Top-k counter of one cache's reads. */
export class HotKeys {
  readonly #capacity: number;
  readonly #counts = new Map<string, { count: number; error: number }>();
  #changed = false;

  constructor(capacity = 64) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error("capacity must be a positive integer");
    this.#capacity = capacity;
  }

  /** Counts one read of `key`. */
  add(key: string): void {
    this.#changed = true;
    const c = this.#counts.get(key);
    if (c) {
      c.count++;
      return;
    }
    if (this.#counts.size < this.#capacity) {
      this.#counts.set(key, { count: 1, error: 0 });
      return;
    }
    // O(capacity) per new key; capacity is small (tens), and hot keys hit the Map path above.
    let minKey = "";
    let min = Number.POSITIVE_INFINITY;
    for (const [k, v] of this.#counts)
      if (v.count < min) {
        min = v.count;
        minKey = k;
      }
    this.#counts.delete(minKey);
    this.#counts.set(key, { count: min + 1, error: min });
  }

  /**
   * The `n` hottest keys, hottest first by guaranteed count (count - error): a key that only
   * inherited a large count from the counter it took over ranks below one that earned it.
   */
  top(n = this.#capacity): HotKey[] {
    return [...this.#counts]
      .map(([key, v]) => ({ key, count: v.count, error: v.error }))
      .sort(
        (a, b) => b.count - b.error - (a.count - a.error) || b.count - a.count || (a.key < b.key ? -1 : 1),
      )
      .slice(0, n);
  }

  /** Whether anything was counted since the last halve(). */
  get changed(): boolean {
    return this.#changed;
  }

  /** Halves every count (dropping those that reach 0): older reads weigh less. */
  halve(): void {
    this.#changed = false;
    for (const [k, v] of this.#counts) {
      v.count = Math.floor(v.count / 2);
      v.error = Math.floor(v.error / 2);
      if (v.count === 0) this.#counts.delete(k);
    }
  }

  get size(): number {
    return this.#counts.size;
  }
}

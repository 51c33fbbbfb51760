// The order in which cache entries are evicted: least recently used, or least frequently used (O(1) per access).

/** What the orders need to know of an entry. */
export interface Ranked {
  readonly key: string;
  /** Accesses (gets and puts) since the entry was first stored; survives restarts. */
  freq: number;
}

/** Keeps entries in eviction order: `victims()` yields the next to evict first. */
export interface EvictionOrder<T extends Ranked> {
  add(entry: T): void;
  /** Records an access; LFU reads the entry's already-incremented `freq`. */
  touch(entry: T, previousFreq: number): void;
  remove(entry: T): void;
  /** The next entry to evict (amortised O(1)). */
  victim(): T | undefined;
  /** Every entry, next to evict first (for evicting by prefix or fraction: rare, O(n log n) at worst). */
  inOrder(): IterableIterator<T>;
  clear(): void;
}

/** Least recently used first: a Map's insertion order, re-inserting on every access. */
export class LruOrder<T extends Ranked> implements EvictionOrder<T> {
  readonly #entries = new Map<string, T>();

  add(entry: T): void {
    this.#entries.set(entry.key, entry);
  }

  touch(entry: T): void {
    this.#entries.delete(entry.key);
    this.#entries.set(entry.key, entry);
  }

  remove(entry: T): void {
    this.#entries.delete(entry.key);
  }

  victim(): T | undefined {
    return this.#entries.values().next().value;
  }

  inOrder(): IterableIterator<T> {
    return [...this.#entries.values()].values();
  }

  clear(): void {
    this.#entries.clear();
  }
}

/**
 * Least frequently used first; among equal counts, the one that reached that count earliest.
 * One insertion-ordered bucket per distinct count, so an access moves an entry in O(1).
 */
export class LfuOrder<T extends Ranked> implements EvictionOrder<T> {
  readonly #buckets = new Map<number, Map<string, T>>();
  /** The lowest count with a bucket; undefined when it must be looked up again. */
  #min: number | undefined;

  add(entry: T): void {
    this.#bucket(entry.freq).set(entry.key, entry);
    if (this.#min === undefined ? this.#buckets.size === 1 : entry.freq < this.#min) this.#min = entry.freq;
  }

  touch(entry: T, previousFreq: number): void {
    const emptied = this.#drop(previousFreq, entry.key);
    this.#bucket(entry.freq).set(entry.key, entry);
    if (emptied && this.#min === previousFreq) this.#min = entry.freq;
  }

  remove(entry: T): void {
    if (this.#drop(entry.freq, entry.key) && this.#min === entry.freq) this.#min = undefined;
  }

  victim(): T | undefined {
    if (this.#buckets.size === 0) return undefined;
    if (this.#min === undefined || !this.#buckets.has(this.#min)) {
      let min = Number.POSITIVE_INFINITY;
      for (const f of this.#buckets.keys()) if (f < min) min = f;
      this.#min = min;
    }
    return this.#buckets.get(this.#min)!.values().next().value;
  }

  *inOrder(): IterableIterator<T> {
    const freqs = [...this.#buckets.keys()].sort((a, b) => a - b);
    const all: T[] = [];
    for (const f of freqs) all.push(...this.#buckets.get(f)!.values());
    yield* all;
  }

  clear(): void {
    this.#buckets.clear();
    this.#min = undefined;
  }

  #bucket(freq: number): Map<string, T> {
    let b = this.#buckets.get(freq);
    if (!b) {
      b = new Map();
      this.#buckets.set(freq, b);
    }
    return b;
  }

  /** Removes key from the bucket of `freq`; true when that emptied the bucket. */
  #drop(freq: number, key: string): boolean {
    const b = this.#buckets.get(freq);
    if (!b) return false;
    b.delete(key);
    if (b.size > 0) return false;
    this.#buckets.delete(freq);
    return true;
  }
}

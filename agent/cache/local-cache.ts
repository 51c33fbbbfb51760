// The agent's key/value cache: TTL, LRU or LFU eviction under a byte budget, versioned hub entries, kept in SQLite.
//
// Budget accounting: an entry costs the UTF-8 bytes of its key plus the bytes of its value (UTF-8
// for strings). SQLite's own overhead (row headers, the primary-key index, free pages) and the
// in-memory index (about 150 bytes per entry) are not counted; `maxEntries` bounds the latter.
//
// Local and hub writes. Every entry remembers the highest version known for its key.
// - A put with a version (hub puts always carry one) is refused as "stale" when the entry holds a
//   version ≥ it, or when a removed entry of that key had a version > it (tombstones remember it).
//   An equal version may come back after eviction or expiry (a resent copy of the same data).
// - A local put without a version always wins, and carries no version: the hub version it replaces
//   is kept as a tombstone. So the hub owns the keys it pushes: a local override stands until the
//   hub sends that key again (a newer version, or the same one resent at its next session), and an
//   older version can never come back.
// - The hub deletes its entry with a version (deleteHub): its copy goes, the version is remembered.
//
// Durability: values, versions and expiry are written at each put/delete. Access order, access
// counts and the hit/miss counters live in memory and are written by flush() (every sweep interval
// from start(), and at stop()); after a kill -9 they resume from the last flush.

import type { Database } from "bun:sqlite";
import type { Clock } from "../../shared/clock.ts";
import { isDiskFull } from "../../shared/disk-full.ts";
import { RequestError } from "../../shared/errors.ts";
import { CacheTable, type CounterValues } from "./cache-table.ts";
import { type EvictionOrder, LfuOrder, LruOrder, type Ranked } from "./eviction-order.ts";
import { checkBudget, checkKey, checkValue } from "./limits.ts";

export type CachePolicy = "lru" | "lfu";
export type CacheSource = "local" | "hub";

export interface LocalCacheOptions {
  db: Database;
  budgetBytes: number;
  policy: CachePolicy;
  clock: Clock;
  /** Upper bound on entries whatever their size (bounds the in-memory index). Default 1,000,000. */
  maxEntries?: number;
  /** Period of the expiry sweep and flush once started. Default 10 s. */
  sweepIntervalMs?: number;
  /** Versions of removed keys remembered, oldest forgotten first. Default 100,000. */
  maxTombstones?: number;
  /**
   * Whether a put of about this many bytes has room: false while the disk is full, or when the put
   * would take free space below the reserve. Such puts are refused ("disk_full"); reads, deletes and
   * evictions go on.
   */
  writable?: (bytes: number) => boolean;
  /** A write failed on a full disk (SQLITE_FULL / ENOSPC); the cache carries on without it. */
  onDiskFull?: (err: unknown) => void;
}

export interface CacheEntry {
  value: Uint8Array | string;
  version?: number;
  /** Milliseconds since the epoch. */
  expires_at?: number;
  source: CacheSource;
}

export interface PutOptions {
  ttl_ms?: number;
  version?: number;
  source?: CacheSource;
}

export type PutResult = { stored: true } | { stored: false; reason: "stale" | "over_budget" | "disk_full" };

export interface CacheStats extends CounterValues {
  entries: number;
  bytes: number;
  budget_bytes: number;
  /** hits / (hits + misses); 0 before any get. */
  hit_ratio: number;
}

interface Meta extends Ranked {
  readonly key: string;
  bytes: number;
  version: number | undefined;
  expiresAt: number | undefined;
  source: CacheSource;
  access: number;
  freq: number;
}

/** Key/value cache with a byte budget, persisted in the agent's SQLite file. */
export class LocalCache {
  readonly #table: CacheTable;
  readonly #clock: Clock;
  readonly #order: EvictionOrder<Meta>;
  readonly #index = new Map<string, Meta>();
  readonly #dirty = new Set<string>();
  readonly #maxEntries: number;
  readonly #sweepMs: number;
  readonly #maxTombstones: number;
  #tombstones: number;
  /** Entries with an expiry time: when none, making room skips the expiry query. */
  #withTtl = 0;
  #budget: number;
  #bytes = 0;
  #access = 0;
  #counters: CounterValues = { hits: 0, misses: 0, evictions: 0, expired: 0 };
  #timer: ReturnType<Clock["setInterval"]> | undefined;
  readonly #writable: (bytes: number) => boolean;
  readonly #onDiskFull: ((err: unknown) => void) | undefined;

  constructor(opts: LocalCacheOptions) {
    this.#table = new CacheTable(opts.db);
    this.#clock = opts.clock;
    this.#order = opts.policy === "lfu" ? new LfuOrder<Meta>() : new LruOrder<Meta>();
    this.#budget = checkBudget(opts.budgetBytes);
    this.#maxEntries = opts.maxEntries ?? 1_000_000;
    this.#sweepMs = opts.sweepIntervalMs ?? 10_000;
    this.#maxTombstones = opts.maxTombstones ?? 100_000;
    this.#tombstones = 0;
    this.#counters = { ...this.#counters, ...this.#table.counters() };
    this.#writable = opts.writable ?? (() => true);
    this.#onDiskFull = opts.onDiskFull;
    this.#load();
    // A smaller budget than last run's (or a lower maxEntries) takes effect at once.
    this.#db(() => this.#fit(0, undefined), undefined);
  }

  // The in-memory index from the table: at start, and after a write the disk refused rolled back.
  #load(): void {
    this.#index.clear();
    this.#order.clear();
    this.#dirty.clear();
    this.#bytes = 0;
    this.#withTtl = 0;
    this.#tombstones = this.#table.tombstoneCount();
    for (const r of this.#table.rows()) {
      const m: Meta = {
        key: r.key,
        bytes: r.bytes,
        version: r.version ?? undefined,
        expiresAt: r.expires_at ?? undefined,
        source: r.source === "hub" ? "hub" : "local",
        access: r.access,
        freq: r.freq,
      };
      this.#index.set(m.key, m);
      this.#order.add(m);
      this.#bytes += m.bytes;
      if (m.expiresAt !== undefined) this.#withTtl++;
      if (m.access > this.#access) this.#access = m.access;
    }
  }

  /** Starts the periodic expiry sweep and flush. */
  start(signal?: AbortSignal): void {
    if (this.#timer !== undefined) return;
    this.#timer = this.#clock.setInterval(() => {
      this.sweep();
      this.flush();
    }, this.#sweepMs);
    signal?.addEventListener("abort", () => this.stop(), { once: true });
  }

  /** Stops the sweep and writes access order and counters (call before closing the store). Safe to repeat. */
  stop(): void {
    if (this.#timer !== undefined) this.#clock.clearInterval(this.#timer);
    this.#timer = undefined;
    this.flush();
  }

  /** The live entry for `key`, or undefined (missing or expired: a miss). */
  get(key: string): CacheEntry | undefined {
    const m = this.#index.get(key);
    if (m === undefined) {
      this.#counters.misses++;
      return undefined;
    }
    if (m.expiresAt !== undefined && m.expiresAt <= this.#clock.now()) {
      this.#db(() => this.#remove(m, "expired"), undefined);
      this.#counters.misses++;
      return undefined;
    }
    const value = this.#table.value(key);
    if (value === undefined) {
      // The row went away behind our back; forget it rather than serve a ghost.
      this.#forget(m);
      this.#counters.misses++;
      return undefined;
    }
    this.#counters.hits++;
    this.#touch(m);
    this.#dirty.add(key);
    const out: CacheEntry = { value, source: m.source };
    if (m.version !== undefined) out.version = m.version;
    if (m.expiresAt !== undefined) out.expires_at = m.expiresAt;
    return out;
  }

  /** Stores a value; see the file comment for how versions decide between local and hub writes. */
  put(key: string, value: Uint8Array | string, opts: PutOptions = {}): PutResult {
    const keyBytes = checkKey(key);
    const valueBytes = checkValue(value);
    const source = opts.source ?? "local";
    if (source !== "local" && source !== "hub") throw new RequestError('must be "local" or "hub"', "source");
    const version = opts.version;
    if (version !== undefined && (!Number.isSafeInteger(version) || version < 0)) {
      throw new RequestError("must be a non-negative integer", "version");
    }
    if (source === "hub" && version === undefined)
      throw new RequestError("a hub entry needs a version", "version");
    const ttl = opts.ttl_ms;
    if (ttl !== undefined && (!Number.isSafeInteger(ttl) || ttl <= 0)) {
      throw new RequestError("must be a positive whole number of milliseconds", "ttl_ms");
    }
    const now = this.#clock.now();
    const bytes = keyBytes + valueBytes;
    if (!this.#writable(bytes)) return { stored: false, reason: "disk_full" };
    const full: PutResult = { stored: false, reason: "disk_full" };
    return this.#db((): PutResult => {
      let old = this.#index.get(key);
      if (old?.expiresAt !== undefined && old.expiresAt <= now) {
        this.#remove(old, "expired");
        old = undefined;
      }
      // The version of the live entry, else the version a removed or overridden hub entry left behind.
      const live = old?.version;
      const tomb = live === undefined && this.#tombstones > 0 ? this.#table.tombstone(key) : undefined;
      if (version !== undefined) {
        // A live entry refuses an equal version too; a removed or overridden one accepts the same data back.
        if (live !== undefined && version <= live) return { stored: false, reason: "stale" };
        if (tomb !== undefined && version < tomb) return { stored: false, reason: "stale" };
      }
      if (bytes > this.#budget) return { stored: false, reason: "over_budget" };
      this.#fit(bytes - (old?.bytes ?? 0), key);
      const m: Meta = old ?? {
        key,
        bytes,
        version: undefined,
        expiresAt: undefined,
        source,
        access: 0,
        freq: 0,
      };
      const previousFreq = m.freq;
      this.#bytes += bytes - (old?.bytes ?? 0);
      m.bytes = bytes;
      // A local write carries no hub version: the hub's version it overrides stays as a tombstone.
      m.version = version;
      if (version === undefined && live !== undefined) this.#putTombstone(key, live);
      if (old?.expiresAt !== undefined) this.#withTtl--;
      m.expiresAt = ttl === undefined ? undefined : now + ttl;
      if (m.expiresAt !== undefined) this.#withTtl++;
      m.source = source;
      m.access = ++this.#access;
      m.freq++;
      if (old) this.#order.touch(m, previousFreq);
      else {
        this.#index.set(key, m);
        this.#order.add(m);
      }
      if (tomb !== undefined && version !== undefined) this.#dropTombstone(key);
      this.#dirty.delete(key);
      this.#table.upsert(key, value, m);
      return { stored: true };
    }, full);
  }

  /** Removes `key`; true if it was there. A versioned entry leaves its version behind. */
  delete(key: string): boolean {
    const m = this.#index.get(key);
    if (!m) return false;
    return this.#db(() => {
      this.#remove(m, undefined);
      return true;
    }, false);
  }

  /**
   * The hub deleted its entry of `key` at `version`: a hub copy at or below it goes, and the version
   * is remembered so that no older push brings it back. A local value is the node's own and stays.
   */
  deleteHub(key: string, version: number): boolean {
    checkKey(key);
    if (!Number.isSafeInteger(version) || version < 0)
      throw new RequestError("must be a non-negative integer", "version");
    const m = this.#index.get(key);
    return this.#db(() => {
      const gone = m !== undefined && m.version !== undefined && m.version <= version;
      if (gone) this.#remove(m, undefined);
      this.#putTombstone(key, version);
      return gone;
    }, false);
  }

  /**
   * Evicts in policy order: entries under `prefix` (all entries without one), and of those only the
   * first that together hold `fraction` of their bytes (all without one). Returns how many went.
   */
  evict(opts: { fraction?: number; prefix?: string } = {}): number {
    const { fraction, prefix } = opts;
    if (fraction !== undefined && !(fraction > 0 && fraction <= 1)) {
      throw new RequestError("must be above 0 and at most 1", "fraction");
    }
    const candidates = [...this.#order.inOrder()].filter(
      (m) => prefix === undefined || m.key.startsWith(prefix),
    );
    const total = candidates.reduce((n, m) => n + m.bytes, 0);
    const target = fraction === undefined ? total : fraction * total;
    let freed = 0;
    let n = 0;
    return this.#db(() => {
      for (const m of candidates) {
        if (freed >= target) break;
        freed += m.bytes;
        this.#remove(m, "evictions");
        n++;
      }
      return n;
    }, 0);
  }

  /** Deletes every expired entry; returns how many. */
  sweep(): number {
    const keys = this.#table.expiredKeys(this.#clock.now());
    return this.#db(() => {
      for (const k of keys) {
        const m = this.#index.get(k);
        if (m) this.#remove(m, "expired");
        else this.#table.delete(k);
      }
      return keys.length;
    }, 0);
  }

  /** Changes the budget, evicting at once if the cache is over it. */
  setBudget(bytes: number): void {
    this.#budget = checkBudget(bytes);
    this.#db(() => this.#fit(0, undefined), undefined);
  }

  stats(): CacheStats {
    const { hits, misses } = this.#counters;
    return {
      entries: this.#index.size,
      bytes: this.#bytes,
      budget_bytes: this.#budget,
      ...this.#counters,
      hit_ratio: hits + misses === 0 ? 0 : hits / (hits + misses),
    };
  }

  /** Writes access order, access counts and counters to SQLite. */
  flush(): void {
    // On a full disk the access order waits in memory; a refused flush would cost a reload.
    if (!this.#writable(0)) return;
    this.#db(() => {
      for (const key of this.#dirty) {
        const m = this.#index.get(key);
        if (m) this.#table.touch(key, m.access, m.freq);
      }
      this.#dirty.clear();
      this.#table.saveCounters(this.#counters);
    }, undefined);
  }

  /** Makes room for `extra` more bytes (and one more entry), never evicting `keep`. */
  #fit(extra: number, keep: string | undefined): void {
    const over = () =>
      this.#bytes + extra > this.#budget ||
      (keep !== undefined && !this.#index.has(keep) && this.#index.size >= this.#maxEntries) ||
      this.#index.size > this.#maxEntries;
    if (!over()) return;
    // Expired entries go first: they are dead weight whatever the policy says.
    const expired = this.#withTtl > 0 ? this.#table.expiredKeys(this.#clock.now()) : [];
    for (const k of expired) {
      const m = this.#index.get(k);
      if (m && m.key !== keep) this.#remove(m, "expired");
      if (!over()) return;
    }
    while (over()) {
      let victim = this.#order.victim();
      if (victim?.key === keep) {
        // The entry being replaced is next in line: take the one after it.
        const it = this.#order.inOrder();
        it.next();
        victim = it.next().value;
      }
      if (!victim) return;
      this.#remove(victim, "evictions");
    }
  }

  #touch(m: Meta): void {
    const prev = m.freq;
    m.access = ++this.#access;
    m.freq++;
    this.#order.touch(m, prev);
  }

  /** Removes an entry from index, order and table; counts it; leaves a tombstone if versioned. */
  #remove(m: Meta, counter: "expired" | "evictions" | undefined): void {
    this.#forget(m);
    this.#table.delete(m.key);
    if (counter) this.#counters[counter]++;
    if (m.version !== undefined) this.#putTombstone(m.key, m.version);
  }

  #putTombstone(key: string, version: number): void {
    const had = this.#table.tombstone(key) !== undefined;
    this.#table.putTombstone(key, version, this.#clock.now());
    if (!had && ++this.#tombstones > this.#maxTombstones) {
      const n = this.#tombstones - this.#maxTombstones;
      this.#table.trimTombstones(n);
      this.#tombstones -= n;
    }
  }

  #forget(m: Meta): void {
    if (m.expiresAt !== undefined) this.#withTtl--;
    this.#index.delete(m.key);
    this.#order.remove(m);
    this.#dirty.delete(m.key);
    this.#bytes -= m.bytes;
  }

  #dropTombstone(key: string): void {
    this.#table.deleteTombstone(key);
    this.#tombstones = Math.max(0, this.#tombstones - 1);
  }

  /**
   * Runs `fn` in one transaction (nested calls join the outer one). On a full disk the transaction
   * rolls back, the index is read again to match, and `onFull` is returned.
   */
  #db<T>(fn: () => T, onFull: T): T {
    const db = this.#table.db;
    if (db.inTransaction) return fn();
    try {
      return db.transaction(fn)();
    } catch (err) {
      if (!isDiskFull(err)) throw err;
      this.#load();
      this.#onDiskFull?.(err);
      return onFull;
    }
  }
}

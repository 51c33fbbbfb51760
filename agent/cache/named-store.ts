// The entries of the agent's named caches in its SQLite file: last writer wins by hybrid clock, LRU under a count bound.
//
// Each entry keeps the stamp of the write that made it; a delete is kept as a tombstone with its stamp,
// so an older write arriving late (a replica, a resend) never brings a deleted or newer value back.
// Recency lives in memory (a Map in access order per cache) and is rebuilt from stamps at start.
import type { Database, Statement } from "bun:sqlite";

export type CacheValue = Uint8Array | string;

export interface StoredEntry {
  value: CacheValue;
  hlc: string;
  /** ms since the epoch after which the entry is stale; undefined: never. */
  expiresAt: number | undefined;
}

interface Meta {
  hlc: string;
  expiresAt: number | undefined;
  deleted: boolean;
}

export type ApplyResult = "applied" | "superseded";

/** Every named cache's entries, in one table keyed by (cache, key). */
export class NamedStore {
  readonly #db: Database;
  readonly #index = new Map<string, Map<string, Meta>>();
  /** Live (not deleted) entries per cache. */
  readonly #live = new Map<string, number>();
  readonly #get: Statement;
  readonly #upsert: Statement;
  readonly #delete: Statement;

  constructor(db: Database) {
    this.#db = db;
    db.run(`CREATE TABLE IF NOT EXISTS named_cache_entries (
      cache TEXT NOT NULL, key TEXT NOT NULL, value BLOB, hlc TEXT NOT NULL,
      expires_at INTEGER, deleted INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (cache, key))`);
    this.#get = db.query("SELECT value FROM named_cache_entries WHERE cache = ? AND key = ?");
    this.#upsert = db.query(
      `INSERT INTO named_cache_entries (cache, key, value, hlc, expires_at, deleted) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT(cache, key) DO UPDATE SET value = excluded.value, hlc = excluded.hlc,
         expires_at = excluded.expires_at, deleted = excluded.deleted`,
    );
    this.#delete = db.query("DELETE FROM named_cache_entries WHERE cache = ? AND key = ?");
    this.reload();
  }

  /** Rebuilds the in-memory index from the table (at start, and after a write the disk refused rolled back). */
  reload(): void {
    this.#index.clear();
    this.#live.clear();
    const rows = this.#db
      .query("SELECT cache, key, hlc, expires_at, deleted FROM named_cache_entries ORDER BY hlc")
      .all() as { cache: string; key: string; hlc: string; expires_at: number | null; deleted: number }[];
    for (const r of rows) {
      this.#cache(r.cache).set(r.key, {
        hlc: r.hlc,
        expiresAt: r.expires_at ?? undefined,
        deleted: r.deleted === 1,
      });
      if (r.deleted !== 1) this.#live.set(r.cache, (this.#live.get(r.cache) ?? 0) + 1);
    }
  }

  /** The highest stamp stored (the node's hybrid clock resumes after it). */
  maxStamp(): string | undefined {
    return (
      (this.#db.query("SELECT max(hlc) AS m FROM named_cache_entries").get() as { m: string | null }).m ??
      undefined
    );
  }

  /** The live entry (stale ones included; the caller decides), touching its recency. */
  get(cache: string, key: string): StoredEntry | undefined {
    const idx = this.#cache(cache);
    const m = idx.get(key);
    if (!m || m.deleted) return undefined;
    const row = this.#get.get(cache, key) as { value: CacheValue } | null;
    if (!row) return undefined;
    idx.delete(key);
    idx.set(key, m);
    return { value: row.value, hlc: m.hlc, expiresAt: m.expiresAt };
  }

  /** The stamp held for a key (a tombstone's too), without touching recency. */
  stamp(cache: string, key: string): string | undefined {
    return this.#index.get(cache)?.get(key)?.hlc;
  }

  /**
   * Applies a write (value undefined: a delete) if its stamp is after the one held; evicts the least
   * recently used entries of that cache beyond `maxEntries`.
   */
  apply(
    cache: string,
    key: string,
    value: CacheValue | undefined,
    hlc: string,
    expiresAt: number | undefined,
    maxEntries: number,
  ): ApplyResult {
    const idx = this.#cache(cache);
    const held = idx.get(key);
    if (held && held.hlc >= hlc) return "superseded";
    this.#upsert.run(cache, key, value ?? null, hlc, expiresAt ?? null, value === undefined ? 1 : 0);
    const live = (held && !held.deleted ? -1 : 0) + (value === undefined ? 0 : 1);
    this.#live.set(cache, (this.#live.get(cache) ?? 0) + live);
    idx.delete(key);
    idx.set(key, { hlc, expiresAt, deleted: value === undefined });
    while (idx.size > maxEntries) {
      const victim = idx.keys().next().value as string;
      if (!idx.get(victim)!.deleted) this.#live.set(cache, this.#live.get(cache)! - 1);
      idx.delete(victim);
      this.#delete.run(cache, victim);
    }
    return "applied";
  }

  /** Live (not deleted) entries of a cache. */
  size(cache: string): number {
    return this.#live.get(cache) ?? 0;
  }

  /** Runs `fn` in one transaction. */
  transaction<T>(fn: () => T): T {
    return this.#db.inTransaction ? fn() : this.#db.transaction(fn)();
  }

  #cache(name: string): Map<string, Meta> {
    let m = this.#index.get(name);
    if (!m) {
      m = new Map();
      this.#index.set(name, m);
    }
    return m;
  }
}

// The cache's own tables in the agent's SQLite file: entries, version high-water marks of removed keys, counters.
import type { Database, Statement } from "bun:sqlite";

/** An entry's row without its value (what the in-memory index is rebuilt from). */
export interface EntryRow {
  key: string;
  bytes: number;
  version: number | null;
  expires_at: number | null;
  source: string;
  access: number;
  freq: number;
}

export interface CounterValues {
  hits: number;
  misses: number;
  evictions: number;
  expired: number;
}

/** Prepared statements over the cache tables; the caller groups writes in transactions. */
export class CacheTable {
  readonly db: Database;
  readonly #getValue: Statement;
  readonly #upsert: Statement;
  readonly #delete: Statement;
  readonly #touch: Statement;
  readonly #expiredKeys: Statement;
  readonly #getTomb: Statement;
  readonly #putTomb: Statement;
  readonly #delTomb: Statement;
  readonly #countTombs: Statement;
  readonly #trimTombs: Statement;
  readonly #setCounter: Statement;

  constructor(db: Database) {
    this.db = db;
    // BLOB affinity converts nothing: strings stay TEXT ("123" stays a string), byte arrays stay BLOB.
    db.run(`CREATE TABLE IF NOT EXISTS cache_entries (
      key TEXT PRIMARY KEY,
      value BLOB NOT NULL,
      version INTEGER,
      expires_at INTEGER,
      source TEXT NOT NULL,
      bytes INTEGER NOT NULL,
      access INTEGER NOT NULL,
      freq INTEGER NOT NULL)`);
    db.run(
      "CREATE INDEX IF NOT EXISTS cache_entries_expiry ON cache_entries (expires_at) WHERE expires_at IS NOT NULL",
    );
    // The highest version of a key that left the cache, so a late, older hub push cannot bring it back.
    db.run(`CREATE TABLE IF NOT EXISTS cache_versions (
      key TEXT PRIMARY KEY, version INTEGER NOT NULL, at INTEGER NOT NULL)`);
    db.run("CREATE TABLE IF NOT EXISTS cache_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)");
    this.#getValue = db.query("SELECT value FROM cache_entries WHERE key = ?");
    this.#upsert = db.query(
      `INSERT INTO cache_entries (key, value, version, expires_at, source, bytes, access, freq)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(key) DO UPDATE SET value = excluded.value, version = excluded.version,
         expires_at = excluded.expires_at, source = excluded.source, bytes = excluded.bytes,
         access = excluded.access, freq = excluded.freq`,
    );
    this.#delete = db.query("DELETE FROM cache_entries WHERE key = ?");
    this.#touch = db.query("UPDATE cache_entries SET access = ?, freq = ? WHERE key = ?");
    this.#expiredKeys = db.query(
      "SELECT key FROM cache_entries WHERE expires_at IS NOT NULL AND expires_at <= ? ORDER BY expires_at",
    );
    this.#getTomb = db.query("SELECT version FROM cache_versions WHERE key = ?");
    this.#putTomb = db.query(
      `INSERT INTO cache_versions (key, version, at) VALUES (?, ?, ?)
       ON CONFLICT(key) DO UPDATE SET version = max(version, excluded.version), at = excluded.at`,
    );
    this.#delTomb = db.query("DELETE FROM cache_versions WHERE key = ?");
    this.#countTombs = db.query("SELECT count(*) AS n FROM cache_versions");
    this.#trimTombs = db.query(
      "DELETE FROM cache_versions WHERE key IN (SELECT key FROM cache_versions ORDER BY at, key LIMIT ?)",
    );
    this.#setCounter = db.query(
      "INSERT INTO cache_counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
    );
  }

  /** Every entry without its value, least recently used first. */
  rows(): EntryRow[] {
    return this.db
      .query(
        "SELECT key, bytes, version, expires_at, source, access, freq FROM cache_entries ORDER BY access",
      )
      .all() as EntryRow[];
  }

  value(key: string): Uint8Array | string | undefined {
    return (this.#getValue.get(key) as { value: Uint8Array | string } | null)?.value;
  }

  upsert(
    key: string,
    value: Uint8Array | string,
    meta: {
      version: number | undefined;
      expiresAt: number | undefined;
      source: string;
      bytes: number;
      access: number;
      freq: number;
    },
  ): void {
    this.#upsert.run(
      key,
      value,
      meta.version ?? null,
      meta.expiresAt ?? null,
      meta.source,
      meta.bytes,
      meta.access,
      meta.freq,
    );
  }

  delete(key: string): void {
    this.#delete.run(key);
  }

  touch(key: string, access: number, freq: number): void {
    this.#touch.run(access, freq, key);
  }

  expiredKeys(now: number): string[] {
    return (this.#expiredKeys.all(now) as { key: string }[]).map((r) => r.key);
  }

  tombstone(key: string): number | undefined {
    return (this.#getTomb.get(key) as { version: number } | null)?.version ?? undefined;
  }

  putTombstone(key: string, version: number, at: number): void {
    this.#putTomb.run(key, version, at);
  }

  deleteTombstone(key: string): void {
    this.#delTomb.run(key);
  }

  tombstoneCount(): number {
    return (this.#countTombs.get() as { n: number }).n;
  }

  /** Forgets the `n` oldest tombstones. */
  trimTombstones(n: number): void {
    this.#trimTombs.run(n);
  }

  counters(): Partial<CounterValues> {
    const rows = this.db.query("SELECT name, value FROM cache_counters").all() as {
      name: string;
      value: number;
    }[];
    return Object.fromEntries(rows.map((r) => [r.name, r.value]));
  }

  saveCounters(c: CounterValues): void {
    for (const [name, value] of Object.entries(c)) this.#setCounter.run(name, value);
  }
}

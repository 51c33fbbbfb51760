// HubSql on bun:sqlite: one connection, transactions taken one at a time by an async mutex.
import { Database } from "bun:sqlite";
import { StoreError } from "../../../shared/errors.ts";
import { openEffects, withEffects } from "../after-tx.ts";
import { type HubSql, insideTx, inOwnTx, type SqlValue } from "./types.ts";

/** Hands the one connection to one caller at a time, in arrival order. */
class Mutex {
  #tail: Promise<void> = Promise.resolve();

  async lock(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((r) => {
      release = r;
    });
    const prev = this.#tail;
    this.#tail = prev.then(() => next);
    await prev;
    return release;
  }
}

export interface SqliteOptions {
  /**
   * How long a write waits for another connection's lock (another process, or another handle on the
   * same file) before it fails (default 5000 ms). Waited asynchronously: a blocking SQLite busy
   * timeout would stall the event loop, and with it the holder of the lock when that is in this process.
   */
  busyTimeoutMs?: number;
}

/** Opens (and creates) a SQLite file in WAL mode with full fsync on commit, behind the HubSql interface. */
export function openSqlite(path: string, opts: SqliteOptions = {}): HubSql {
  const store = `sqlite ${path}`;
  let db: Database;
  try {
    db = new Database(path, { create: true, strict: true });
    db.run("PRAGMA journal_mode = WAL");
    db.run("PRAGMA synchronous = FULL");
    // Short, because the wait blocks the thread; longer waits are taken asynchronously (busyTimeoutMs).
    db.run("PRAGMA busy_timeout = 10");
  } catch (err) {
    throw new StoreError(store, undefined, `cannot open: ${(err as Error).message}`, { cause: err });
  }
  return new SqliteSql(db, store, opts.busyTimeoutMs ?? 5000, true);
}

/**
 * HubSql over a connection someone else opened and keeps (the hub's own `Database`): its pragmas are
 * left as they are, and close() ends this handle only, never the connection. Sync code on the same
 * `Database` runs inside whatever transaction this handle has open.
 */
export function wrapSqlite(db: Database, opts: SqliteOptions = {}): HubSql {
  return new SqliteSql(db, `sqlite ${db.filename}`, opts.busyTimeoutMs ?? 5000, false);
}

const isBusy = (err: unknown) => (err as { code?: string }).code?.startsWith("SQLITE_BUSY") === true;

class Runner {
  constructor(
    readonly db: Database,
    readonly store: string,
  ) {}

  all<T>(sql: string, params: readonly SqlValue[]): T[] {
    try {
      return this.db.query(sql).all(...(params as SqlValue[])) as T[];
    } catch (err) {
      throw this.error(sql, err);
    }
  }

  run(sql: string, params: readonly SqlValue[]): { changes: number } {
    try {
      return { changes: this.db.query(sql).run(...(params as SqlValue[])).changes };
    } catch (err) {
      throw this.error(sql, err);
    }
  }

  exec(script: string): void {
    try {
      this.db.run(script);
    } catch (err) {
      throw this.error(script, err);
    }
  }

  error(sql: string, err: unknown): StoreError {
    if (err instanceof StoreError) return err;
    return new StoreError(this.store, sql, (err as Error).message, { cause: err });
  }
}

class SqliteSql implements HubSql {
  readonly dialect = "sqlite" as const;
  readonly store: string;
  readonly #r: Runner;
  readonly #mutex = new Mutex();
  readonly #busyMs: number;
  /** Whether close() closes the connection: false for a wrapped one, which its opener closes. */
  readonly #owns: boolean;
  #closed = false;

  constructor(db: Database, store: string, busyMs: number, owns: boolean) {
    this.store = store;
    this.#r = new Runner(db, store);
    this.#busyMs = busyMs;
    this.#owns = owns;
  }

  all<T>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    return this.#alone(() => this.#whenFree(sql, () => this.#r.all<T>(sql, params)));
  }

  async get<T>(sql: string, params: readonly SqlValue[] = []): Promise<T | undefined> {
    return (await this.all<T>(sql, params))[0];
  }

  run(sql: string, params: readonly SqlValue[] = []): Promise<{ changes: number }> {
    return this.#alone(() => this.#whenFree(sql, () => this.#r.run(sql, params)));
  }

  exec(script: string): Promise<void> {
    return this.#alone(() => this.#whenFree(script, () => this.#r.exec(script)));
  }

  tx<T>(fn: (tx: HubSql) => Promise<T>): Promise<T> {
    // What the body starts beyond the database (afterTx, afterCommit) runs once it has ended.
    return withEffects(() => this.#tx(fn));
  }

  #tx<T>(fn: (tx: HubSql) => Promise<T>): Promise<T> {
    return this.#alone(async () => {
      // IMMEDIATE takes the write lock now: a transaction that reads, then writes, cannot fail halfway.
      await this.#whenFree("BEGIN IMMEDIATE", () => this.#r.exec("BEGIN IMMEDIATE"));
      const handle = new SqliteTx(this.#r, 0);
      const scope = { store: this as HubSql, open: true };
      try {
        const out = await insideTx.run(scope, () => fn(handle));
        this.#r.exec("COMMIT");
        return out;
      } catch (err) {
        if (this.#r.db.inTransaction) this.#r.exec("ROLLBACK");
        throw err;
      } finally {
        scope.open = false;
        handle.finish();
      }
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    const release = await this.#mutex.lock();
    this.#closed = true;
    if (this.#owns) this.#r.db.close();
    release();
  }

  async #alone<T>(fn: () => T | Promise<T>): Promise<T> {
    if (this.#closed) throw new StoreError(this.store, undefined, "the store is closed");
    if (inOwnTx(this))
      throw new StoreError(
        this.store,
        undefined,
        "inside a transaction, use the handle tx() gave, not the store",
      );
    const release = await this.#mutex.lock();
    try {
      if (this.#closed) throw new StoreError(this.store, undefined, "the store is closed");
      return await fn();
    } finally {
      release();
    }
  }

  // Runs `fn` again while another connection holds the write lock, up to the busy timeout.
  async #whenFree<T>(sql: string, fn: () => T): Promise<T> {
    const deadline = Date.now() + this.#busyMs;
    for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
      try {
        return fn();
      } catch (err) {
        const cause = err instanceof StoreError ? err.cause : err;
        if (!isBusy(cause) || Date.now() >= deadline) throw this.#r.error(sql, err);
      }
      await Bun.sleep(wait * (0.5 + Math.random()));
    }
  }
}

/** The handle a transaction's function gets; its tx() is a savepoint. */
class SqliteTx implements HubSql {
  readonly dialect = "sqlite" as const;
  readonly store: string;
  readonly #r: Runner;
  readonly #depth: number;
  #done = false;

  constructor(r: Runner, depth: number) {
    this.#r = r;
    this.store = r.store;
    this.#depth = depth;
  }

  finish(): void {
    this.#done = true;
  }

  async all<T>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    this.#open(sql);
    return this.#r.all<T>(sql, params);
  }

  async get<T>(sql: string, params: readonly SqlValue[] = []): Promise<T | undefined> {
    return (await this.all<T>(sql, params))[0];
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<{ changes: number }> {
    this.#open(sql);
    return this.#r.run(sql, params);
  }

  async exec(script: string): Promise<void> {
    this.#open(script);
    this.#r.exec(script);
  }

  async tx<T>(fn: (tx: HubSql) => Promise<T>): Promise<T> {
    const name = `sp${this.#depth + 1}`;
    this.#open(`SAVEPOINT ${name}`);
    this.#r.exec(`SAVEPOINT ${name}`);
    const inner = new SqliteTx(this.#r, this.#depth + 1);
    const effects = openEffects();
    const mark = effects?.mark() ?? 0;
    try {
      const out = await fn(inner);
      this.#r.exec(`RELEASE ${name}`);
      return out;
    } catch (err) {
      this.#r.exec(`ROLLBACK TO ${name}; RELEASE ${name}`);
      effects?.rollbackTo(mark);
      throw err;
    } finally {
      inner.finish();
    }
  }

  async close(): Promise<void> {
    throw new StoreError(this.store, undefined, "close the store, not a transaction handle");
  }

  #open(sql: string): void {
    if (this.#done) throw new StoreError(this.store, sql, "the transaction this handle belongs to has ended");
  }
}

// HubSql on PostgreSQL through Bun's built-in client: a pool, real transactions, retried serialization failures.
import { SQL, type TransactionSQL } from "bun";
import { StoreError } from "../../../shared/errors.ts";
import { openEffects, withEffects } from "../after-tx.ts";
import { toNumbered } from "./placeholders.ts";
import { type HubSql, insideTx, inOwnTx, type SqlValue } from "./types.ts";

export interface PostgresOptions {
  /** Pool size (default 10). */
  max?: number;
  /** Seconds to wait for a connection before a call fails (default 10). */
  connectTimeoutS?: number;
  /** Times a transaction is run again after a serialization failure or deadlock (default 5). */
  retries?: number;
}

/** Opens a pool on `url` (postgres://user[:password]@host:port/db); connections are made on first use. */
export function openPostgres(url: string, opts: PostgresOptions = {}): HubSql {
  let store: string;
  try {
    const u = new URL(url);
    // Never the password: this name goes into errors and logs.
    store = `postgres ${u.hostname}:${u.port || "5432"}${u.pathname}`;
  } catch (err) {
    throw new StoreError("postgres", undefined, "the store URL is not a valid postgres:// URL", {
      cause: err,
    });
  }
  const sql = new SQL({
    url,
    max: opts.max ?? 10,
    connectionTimeout: opts.connectTimeoutS ?? 10,
    idleTimeout: 60,
    bigint: true,
  });
  return new PostgresSql(sql, store, opts.retries ?? 5);
}

// SQLSTATEs after which the whole transaction may simply run again.
const RETRYABLE = new Set(["40001", "40P01"]);

/**
 * Whether `err` is a serialization failure or a deadlock, after which the whole transaction runs again
 * (a savepoint that catches errors must let these through, or the retry never happens).
 */
export function isRetryable(err: unknown): boolean {
  return RETRYABLE.has(sqlState(err) ?? "");
}

const sqlState = (err: unknown): string | undefined => {
  const e = err instanceof StoreError ? err.cause : err;
  return (e as { errno?: unknown } | undefined)?.errno as string | undefined;
};

// Bun raises its own codes (no SQLSTATE) when it cannot reach the server or loses the connection; the
// server sends class 08 (connection) or 57P01..03 (shutting down, starting up) on its way down or up.
const unreachable = (err: unknown) => {
  const state = sqlState(err);
  if (state !== undefined) return state.startsWith("08") || /^57P0[123]$/.test(state);
  const code = (err as { code?: unknown }).code;
  return typeof code === "string" && /CONNECT|TIMEOUT|CLOSED|ECONNREFUSED|ECONNRESET|EPIPE/.test(code);
};

function wrap(store: string, statement: string, err: unknown): StoreError {
  if (err instanceof StoreError) return err;
  if (unreachable(err))
    return new StoreError(store, statement, `cannot reach the database (${(err as Error).message})`, {
      cause: err,
      unavailable: true,
    });
  return new StoreError(store, statement, (err as Error).message, { cause: err });
}

// int8 and count(*) arrive as BigInt (exact); the interface promises numbers, exact up to 2^53.
function normalize<T>(rows: Record<string, unknown>[]): T[] {
  for (const row of rows) {
    for (const key in row) {
      const v = row[key];
      if (typeof v === "bigint") {
        if (v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER))
          row[key] = Number(v);
      } else if (v instanceof Buffer) row[key] = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    }
  }
  return rows as T[];
}

type Client = Pick<SQL, "unsafe">;

async function query<T>(
  client: Client,
  store: string,
  text: string,
  params: readonly SqlValue[],
): Promise<T[]> {
  try {
    return normalize<T>(await client.unsafe(toNumbered(text), params as SqlValue[]));
  } catch (err) {
    throw wrap(store, text, err);
  }
}

async function change(client: Client, store: string, text: string, params: readonly SqlValue[]) {
  try {
    const res = await client.unsafe(toNumbered(text), params as SqlValue[]);
    return { changes: Number(res.count ?? 0) };
  } catch (err) {
    throw wrap(store, text, err);
  }
}

async function script(client: Client, store: string, text: string): Promise<void> {
  try {
    // Without parameters Bun sends the simple protocol, which runs several statements.
    await client.unsafe(text);
  } catch (err) {
    throw wrap(store, text, err);
  }
}

class PostgresSql implements HubSql {
  readonly dialect = "postgres" as const;
  readonly store: string;
  readonly #sql: SQL;
  readonly #retries: number;

  constructor(sql: SQL, store: string, retries: number) {
    this.#sql = sql;
    this.store = store;
    this.#retries = retries;
  }

  async all<T>(text: string, params: readonly SqlValue[] = []): Promise<T[]> {
    this.#outside();
    return query<T>(this.#sql, this.store, text, params);
  }

  async get<T>(text: string, params: readonly SqlValue[] = []): Promise<T | undefined> {
    return (await this.all<T>(text, params))[0];
  }

  async run(text: string, params: readonly SqlValue[] = []): Promise<{ changes: number }> {
    this.#outside();
    return change(this.#sql, this.store, text, params);
  }

  async exec(text: string): Promise<void> {
    this.#outside();
    return script(this.#sql, this.store, text);
  }

  #outside(): void {
    if (inOwnTx(this))
      throw new StoreError(
        this.store,
        undefined,
        "inside a transaction, use the handle tx() gave, not the store",
      );
  }

  tx<T>(fn: (tx: HubSql) => Promise<T>): Promise<T> {
    this.#outside();
    // What the body starts beyond the database (afterTx, afterCommit) runs once it has ended.
    return withEffects(() => this.#tx(fn));
  }

  async #tx<T>(fn: (tx: HubSql) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      let handle: PostgresTx | undefined;
      const scope = { store: this as HubSql, open: true };
      const effects = openEffects();
      const mark = effects?.mark() ?? 0;
      try {
        return (await this.#sql.begin(async (t) => {
          handle = new PostgresTx(t, this.store);
          const h = handle;
          return insideTx.run(scope, () => fn(h));
        })) as T;
      } catch (err) {
        // The attempt rolled back: what it would have sent after a commit is not sent.
        effects?.rollbackTo(mark);
        if (!RETRYABLE.has(sqlState(err) ?? "") || attempt >= this.#retries) {
          // The function's own errors come out unchanged; the client's (BEGIN, COMMIT, a lost connection) are named.
          throw err instanceof SQL.SQLError ? wrap(this.store, "BEGIN / COMMIT", err) : err;
        }
        // Jittered, growing pause so that the transactions that collided do not collide again.
        await Bun.sleep((attempt + 1) * 5 * (0.5 + Math.random()));
      } finally {
        scope.open = false;
        handle?.finish();
      }
    }
  }

  /** LISTEN on the client's one dedicated connection (Bun reconnects it and runs `onListen` again). */
  async listen(channel: string, fn: (payload: string) => void, onListen?: () => void) {
    try {
      return await this.#sql.listen(channel, fn, onListen);
    } catch (err) {
      throw wrap(this.store, `LISTEN ${channel}`, err);
    }
  }

  async close(): Promise<void> {
    await this.#sql.close({ timeout: 5 });
  }
}

/**
 * LISTEN on `sql`'s own connection for notifications; `sql` must be a store openPostgres made (not a
 * transaction handle). Resolves once the server has acknowledged it.
 */
export function listenOn(
  sql: HubSql,
  channel: string,
  fn: (payload: string) => void,
  onListen?: () => void,
): Promise<{ unlisten(): Promise<void> }> {
  if (!(sql instanceof PostgresSql))
    throw new StoreError(
      sql.store,
      undefined,
      "LISTEN needs the PostgreSQL store itself, not a transaction handle",
    );
  return sql.listen(channel, fn, onListen);
}

/** The handle a transaction's function gets (one pooled connection); its tx() is a savepoint. */
class PostgresTx implements HubSql {
  readonly dialect = "postgres" as const;
  readonly store: string;
  readonly #t: TransactionSQL;
  #done = false;

  constructor(t: TransactionSQL, store: string) {
    this.#t = t;
    this.store = store;
  }

  finish(): void {
    this.#done = true;
  }

  async all<T>(text: string, params: readonly SqlValue[] = []): Promise<T[]> {
    this.#open(text);
    return query<T>(this.#t, this.store, text, params);
  }

  async get<T>(text: string, params: readonly SqlValue[] = []): Promise<T | undefined> {
    return (await this.all<T>(text, params))[0];
  }

  async run(text: string, params: readonly SqlValue[] = []): Promise<{ changes: number }> {
    this.#open(text);
    return change(this.#t, this.store, text, params);
  }

  async exec(text: string): Promise<void> {
    this.#open(text);
    return script(this.#t, this.store, text);
  }

  async tx<T>(fn: (tx: HubSql) => Promise<T>): Promise<T> {
    this.#open("SAVEPOINT");
    let inner: PostgresTx | undefined;
    const effects = openEffects();
    const mark = effects?.mark() ?? 0;
    try {
      return (await this.#t.savepoint(async (sp) => {
        inner = new PostgresTx(sp, this.store);
        return fn(inner);
      })) as T;
    } catch (err) {
      effects?.rollbackTo(mark);
      throw err;
    } finally {
      inner?.finish();
    }
  }

  async close(): Promise<void> {
    throw new StoreError(this.store, undefined, "close the store, not a transaction handle");
  }

  #open(text: string): void {
    if (this.#done)
      throw new StoreError(this.store, text, "the transaction this handle belongs to has ended");
  }
}

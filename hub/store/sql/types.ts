// The hub's one async SQL interface; SQLite and PostgreSQL implement it (see sqlite.ts, postgres.ts).

import { AsyncLocalStorage } from "node:async_hooks";

export type Dialect = "sqlite" | "postgres";

/**
 * The store whose transaction the current async call chain is inside. The store's own handle used
 * there would wait for that transaction (SQLite's one connection, a row it locked): a hang, so it fails.
 * Work the transaction started that runs on after it ended (a timer) inherits the scope, hence `open`.
 */
export const insideTx = new AsyncLocalStorage<{ store: HubSql; open: boolean }>();

/** True when the calling async chain is inside an open transaction of `store`. */
export function inOwnTx(store: HubSql): boolean {
  const scope = insideTx.getStore();
  return scope?.open === true && scope.store === store;
}

/**
 * A bound parameter. Integers travel as numbers (exact up to 2^53) or bigints; bytes as Uint8Array
 * (BLOB in SQLite, BYTEA in PostgreSQL). Booleans are stored as INTEGER 0/1 by the caller.
 */
export type SqlValue = string | number | bigint | Uint8Array | null;

/**
 * Statements use `?` placeholders in both dialects (translated to $1..$n for PostgreSQL in one place).
 * Integer columns come back as numbers; bytes as Uint8Array.
 */
export interface HubSql {
  readonly dialect: Dialect;
  /** The back end and where it is ("sqlite /data/hub.db", "postgres 10.0.0.5:5432/novacron"), for errors and logs. */
  readonly store: string;
  all<T = Record<string, unknown>>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  get<T = Record<string, unknown>>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined>;
  run(sql: string, params?: readonly SqlValue[]): Promise<{ changes: number }>;
  /** Several statements without parameters (schema changes). */
  exec(script: string): Promise<void>;
  /**
   * Runs `fn` in one transaction, committed when it resolves and rolled back when it throws. Inside,
   * use only the handle it is given; its own tx() is a savepoint. On PostgreSQL a serialization
   * failure or deadlock runs `fn` again (a few times), so `fn` must only touch the database.
   */
  tx<T>(fn: (tx: HubSql) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

// The store the hub's tests run on: SQLite in the test's directory, or, with NOVACRON_TEST_STORE=postgres,
// a fresh database on a private PostgreSQL (one server per test process, started on first use).
import type { Database } from "bun:sqlite";
import { afterAll, test } from "bun:test";
import { openHubDb } from "../../hub/store/db.ts";
import { type HubSql, migrate, openPostgres, wrapSqlite } from "../../hub/store/sql/index.ts";
import { type Postgres, startPostgres } from "./postgres.ts";

/** Which store this run of the hub's tests uses. */
export const TEST_STORE: "sqlite" | "postgres" =
  process.env.NOVACRON_TEST_STORE === "postgres" ? "postgres" : "sqlite";

/** A hub's store for a test: `sql` for the hub; `db` on SQLite only (checks that need the file itself). */
export interface TestStore {
  sql: HubSql;
  db: Database | undefined;
  /** Where it is, for messages: a file or a database URL. */
  where: string;
  close(): Promise<void>;
}

let server: Promise<Postgres> | undefined;
/** The database each directory's hub used: a hub opened again on the same directory finds its state. */
const databases = new Map<string, Promise<string>>();

// Each test file stops the server it started when it ends (the next file starts its own).
afterAll(async () => {
  const started = server;
  server = undefined;
  databases.clear();
  if (started) await (await started)[Symbol.asyncDispose]();
});

// One server for the test file, started on first use.
function sharedServer(): Promise<Postgres> {
  server ??= startPostgres();
  return server;
}

/** A migrated, empty store: DIR/hub.db, or a new PostgreSQL database. */
export async function openTestStore(dir: string): Promise<TestStore> {
  if (TEST_STORE === "sqlite") {
    const db = await openHubDb(dir);
    return { sql: wrapSqlite(db), db, where: `${dir}/hub.db`, close: async () => db.close() };
  }
  let made = databases.get(dir);
  if (!made) {
    made = sharedServer().then((pg) => pg.newDatabase());
    databases.set(dir, made);
  }
  const url = await made;
  const sql = openPostgres(url, { max: 4 });
  await migrate(sql);
  return { sql, db: undefined, where: url, close: () => sql.close() };
}

/** A test that checks SQLite itself (its file, its triggers): run on SQLite only, skipped on PostgreSQL. */
export const sqliteTest: typeof test = TEST_STORE === "sqlite" ? test : (test.skip as typeof test);

// The hub stores already moved onto HubSql, run on SQLite (two connections to one file, as two
// processes would open it) and on a private PostgreSQL (two pools: two replicas).
import { afterAll } from "bun:test";
import { join } from "node:path";
import { openPostgres, openSqlite } from "../../hub/store/sql/index.ts";
import { describeOnPostgres } from "../support/postgres.ts";
import { tempDir } from "../support/processes.ts";
import { runPortedStores } from "./ported-stores.case.ts";

const dir = tempDir("novacron-ported-");
let files = 0;
afterAll(() => dir[Symbol.dispose]());

runPortedStores("sqlite", async () => {
  const path = join(dir.path, `hub-${++files}.db`);
  return { sql: openSqlite(path), again: () => openSqlite(path) };
});

describeOnPostgres("postgres", (pg) => {
  runPortedStores("postgres", async () => {
    const url = await pg().newDatabase();
    return { sql: openPostgres(url), again: () => openPostgres(url) };
  });
});

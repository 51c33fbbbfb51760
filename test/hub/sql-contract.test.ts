// The hub's SQL layer on both back ends (one contract), and what only PostgreSQL can do: go away and come back.
import { afterAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { StoreError } from "../../shared/errors.ts";
import { acceptBatch, migrate, openPostgres, openSqlite, wrapSqlite } from "../../hub/store/sql/index.ts";
import { describeOnPostgres, type Postgres } from "../support/postgres.ts";
import { tempDir } from "../support/processes.ts";
import { addNode, batchFor, expectStoredOnce, runContract } from "./sql-contract.case.ts";

const dir = tempDir("novacron-sql-");
let files = 0;
afterAll(() => dir[Symbol.dispose]());

runContract("sqlite", async () => {
  const path = join(dir.path, `hub-${++files}.db`);
  return { sql: openSqlite(path), again: () => openSqlite(path) };
});

// The hub's own connection (WAL, as openHubDb opens it) behind the interface. Its busy timeout is short
// here because the race case puts two connections in one thread: a blocking wait would stall the holder.
const connections: Database[] = [];
function hubConnection(path: string): Database {
  const db = new Database(path, { create: true, strict: true });
  db.run("PRAGMA journal_mode = WAL");
  db.run("PRAGMA busy_timeout = 10");
  connections.push(db);
  return db;
}
afterAll(() => {
  for (const db of connections) db.close();
});

runContract("sqlite (wrapped)", async () => {
  const path = join(dir.path, `hub-${++files}.db`);
  return { sql: wrapSqlite(hubConnection(path)), again: () => wrapSqlite(hubConnection(path)) };
});

describe("sqlite (wrapped): one connection shared with the hub's sync code", () => {
  test("close() ends the handle and leaves the Database open for its owner", async () => {
    const db = hubConnection(join(dir.path, `hub-${++files}.db`));
    const sql = wrapSqlite(db);
    expect(sql.store).toBe(`sqlite ${db.filename}`);
    await migrate(sql);
    await addNode(sql, "a");
    await sql.close();
    const err = await sql.all("SELECT id FROM nodes").catch((e) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect(err.message).toContain("the store is closed");
    expect(db.query("SELECT id FROM nodes").all()).toEqual([{ id: "a" }]);
  });

  test("sync writes and the handle's writes meet on the connection; sync code called inside tx() commits or rolls back with it", async () => {
    const db = hubConnection(join(dir.path, `hub-${++files}.db`));
    const sql = wrapSqlite(db);
    await migrate(sql);
    const syncAdd = (id: string) =>
      db.query("INSERT INTO nodes (id, level, first_seen, last_seen) VALUES (?, 3, 1, 1)").run(id);
    syncAdd("sync");
    expect(await sql.get("SELECT id FROM nodes WHERE id = ?", ["sync"])).toEqual({ id: "sync" });
    await sql.tx(async (tx) => {
      await addNode(tx, "async");
      syncAdd("sync-inside");
    });
    const failed = await sql
      .tx(async (tx) => {
        await addNode(tx, "async-undone");
        syncAdd("sync-undone");
        throw new Error("undo both");
      })
      .catch((e) => e);
    expect(failed.message).toBe("undo both");
    expect(db.inTransaction).toBe(false);
    const ids = db.query("SELECT id FROM nodes ORDER BY id").all() as { id: string }[];
    expect(ids.map((r) => r.id)).toEqual(["async", "sync", "sync-inside"]);
  });
});

describeOnPostgres("postgres", (pg) => {
  runContract("postgres", async () => {
    const url = await pg().newDatabase();
    return { sql: openPostgres(url), again: () => openPostgres(url) };
  });

  const downs: [how: string, down: (server: Postgres) => Promise<void>][] = [
    ["stopped (pg_ctl stop -m fast)", (server) => server.stop()],
    ["killed (SIGKILL, crash recovery at start)", (server) => server.kill()],
  ];
  for (const [how, down] of downs)
    test(`postgres ${how} mid-run: calls fail naming the store, nothing is half-stored, the pool reconnects after`, async () => {
      const server = pg();
      const url = await server.newDatabase();
      const sql = openPostgres(url, { max: 4, connectTimeoutS: 2 });
      try {
        await migrate(sql);
        await addNode(sql, "n1");
        const errors: StoreError[] = [];
        let stopped: Promise<void> | undefined;
        let restarted: Promise<void> | undefined;
        let seq = 1;
        let downAt = 0;
        while (seq <= 200) {
          if (seq === 60 && !stopped) {
            downAt = Date.now();
            stopped = down(server);
          }
          // Back after 2 s away, once a few calls have failed against the server that is gone.
          if (!restarted && Date.now() - downAt >= 2000 && errors.filter((e) => e.unavailable).length >= 5)
            restarted = stopped!.then(() => server.start());
          try {
            const v = await acceptBatch(sql, "n1", seq, batchFor(seq));
            // "duplicate" when a commit went through but its answer was lost with the connection.
            expect(["accepted", "duplicate"]).toContain(v);
            seq++;
          } catch (err) {
            if (!(err instanceof StoreError)) throw err;
            errors.push(err);
            expect(errors.length).toBeLessThan(5_000);
            await Bun.sleep(20);
          }
        }
        expect(stopped).toBeDefined();
        expect(restarted).toBeDefined();
        await restarted;
        if (process.env.SHOW_LOGS) console.error([...new Set(errors.map((e) => e.message))].join("\n"));
        expect(errors.length).toBeGreaterThanOrEqual(5);
        for (const e of errors) expect(e.message).toContain(sql.store);
        expect(errors.filter((e) => e.unavailable).length).toBeGreaterThanOrEqual(5);
        await expectStoredOnce(sql, "n1", 200);
      } finally {
        await sql.close();
      }
    }, 120_000);

  test("postgres: a store URL that is not one is refused with a clear error", () => {
    expect(() => openPostgres("postgres://[::1")).toThrow(/not a valid postgres:\/\/ URL/);
  });
});

// The hub's SQL layer on both back ends (one contract), and what only PostgreSQL can do: go away and come back.
import { afterAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { StoreError } from "../../shared/errors.ts";
import { migrate, openPostgres, openSqlite, wrapSqlite } from "../../hub/store/sql/index.ts";
import { describeOnPostgres, type Postgres } from "../support/postgres.ts";
import { tempDir } from "../support/processes.ts";
import { addNode, expectStoredOnce, ingestOn, runContract, sendAll } from "./sql-contract.case.ts";

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
    test(`postgres ${how} mid-run under ingest: groups fail naming the store, nothing is acked that is not stored, the pool reconnects after and each batch is stored once`, async () => {
      const server = pg();
      const url = await server.newDatabase();
      const sql = openPostgres(url, { max: 4, connectTimeoutS: 2 });
      try {
        await migrate(sql);
        await addNode(sql, "n1");
        const hub = ingestOn(sql);
        let stopped: Promise<void> | undefined;
        let restarted: Promise<void> | undefined;
        let downAt = 0;
        let stored = 0;
        await sendAll(hub, "n1", 200, {
          between: async () => {
            // Nothing acked is missing from the store (read while the server is there).
            if (!stopped || restarted) {
              const row = await sql
                .get<{ last_seq: number }>("SELECT last_seq FROM nodes WHERE id = 'n1'")
                .catch(() => undefined);
              if (row) {
                expect(hub.acked("n1")).toBeLessThanOrEqual(row.last_seq);
                stored = row.last_seq;
              }
            }
            if (stored >= 60 && !stopped) {
              downAt = Date.now();
              stopped = down(server);
            }
            // Back after 2 s away, once a few groups have failed against the server that is gone.
            if (stopped && !restarted && Date.now() - downAt >= 2000 && hub.commits.failed >= 5)
              restarted = stopped.then(() => server.start());
            if (stopped && !restarted) await Bun.sleep(20);
            expect(hub.commits.failed).toBeLessThan(5_000);
          },
        });
        expect(stopped).toBeDefined();
        expect(restarted).toBeDefined();
        await restarted;
        expect(hub.commits.failed).toBeGreaterThanOrEqual(5);
        // Each failure is the store's, and names it.
        for (const e of hub.commits.errors) {
          expect(e).toBeInstanceOf(StoreError);
          expect((e as StoreError).message).toContain(sql.store);
        }
        expect(hub.commits.errors.some((e) => (e as StoreError).unavailable)).toBe(true);
        await expectStoredOnce(sql, "n1", 200);
      } finally {
        await sql.close();
      }
    }, 120_000);

  test("postgres: a store URL that is not one is refused with a clear error", () => {
    expect(() => openPostgres("postgres://[::1")).toThrow(/not a valid postgres:\/\/ URL/);
  });
});

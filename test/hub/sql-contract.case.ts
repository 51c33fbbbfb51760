// The contract every HubSql back end keeps: run by sql-contract.test.ts once per back end.
import { afterEach, describe, expect, test } from "bun:test";
import { StoreError } from "../../shared/errors.ts";
import { Ingest } from "../../hub/ingest/index.ts";
import { type HubSql, MIGRATIONS, migrate } from "../../hub/store/sql/index.ts";
import { createLogger } from "../../shared/log.ts";
import { MetricsRegistry } from "../../shared/metrics.ts";
import { metricsBatch } from "../support/metrics-batch.ts";
import { mulberry32 } from "../support/prng.ts";

/** A fresh, empty store, and a way to open a second connection to it (another replica). */
export interface OpenStore {
  sql: HubSql;
  again(): HubSql;
}

/** Registers `node` as the hub does at hello (ingest needs its row). */
export async function addNode(sql: HubSql, node: string): Promise<void> {
  await sql.run("INSERT INTO nodes (id, level, first_seen, last_seen) VALUES (?, ?, ?, ?)", [node, 3, 1, 1]);
}

const T0 = 1_800_000_000_000;

/** The hub's ingest over `sql`, with the highest ack it sent per node and each commit's outcome. */
export function ingestOn(sql: HubSql) {
  const acked = new Map<string, number>();
  const commits = { ok: 0, failed: 0, errors: [] as unknown[] };
  const ingest = new Ingest({
    sql,
    log: createLogger("test", { write: () => {} }),
    metrics: new MetricsRegistry(),
    acks: (node, upto) => acked.set(node, Math.max(acked.get(node) ?? 0, upto)),
    onCommit: (ok, err) => {
      if (ok) commits.ok++;
      else {
        commits.failed++;
        if (commits.errors.length < 100) commits.errors.push(err);
      }
    },
  });
  return { ingest, acked: (node: string) => acked.get(node) ?? 0, commits };
}

/**
 * An agent's link in miniature: sends the next `window` batches of `node` past its last ack through
 * `hub`, lets the group commit, and starts again from the ack (a resend) until all `count` are acked.
 * `between` runs before each round (a pause, a fault).
 */
export async function sendAll(
  hub: ReturnType<typeof ingestOn>,
  node: string,
  count: number,
  opts: { window?: number; between?: () => Promise<void> } = {},
): Promise<void> {
  await hub.ingest.open(node);
  while (hub.acked(node) < count) {
    await opts.between?.();
    const from = hub.acked(node) + 1;
    for (let q = from; q < from + (opts.window ?? 6) && q <= count; q++)
      hub.ingest.receive(node, metricsBatch(node, T0, q, { "cpu.util": [q, q + 1, q + 2] }));
    await hub.ingest.flush();
    // A replica reads the next message off the network between two groups.
    await new Promise((r) => setImmediate(r));
  }
}

/** Asserts that batches 1..n of `node` are each stored once, as sent, and the node's row agrees. */
export async function expectStoredOnce(sql: HubSql, node: string, n: number): Promise<void> {
  const rows = await sql.all<{ seq: number; start: number; samples: number }>(
    "SELECT seq, start, samples FROM batches WHERE node = ? ORDER BY seq",
    [node],
  );
  expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
  for (const r of rows) expect(r).toEqual({ seq: r.seq, start: T0 + (r.seq - 1) * 10_000, samples: 3 });
  const row = await sql.get<{ last_seq: number; batches: number; samples: number }>(
    "SELECT last_seq, batches, samples FROM nodes WHERE id = ?",
    [node],
  );
  expect(row).toEqual({ last_seq: n, batches: n, samples: 3 * n });
}

/** The cases, for a back end whose `open` gives a fresh, migrated store per test. */
export function runContract(name: string, open: () => Promise<OpenStore>): void {
  describe(`hub sql (${name})`, () => {
    const opened: HubSql[] = [];
    const fresh = async () => {
      const s = await open();
      opened.push(s.sql);
      return {
        sql: s.sql,
        again: () => {
          const other = s.again();
          opened.push(other);
          return other;
        },
      };
    };
    afterEach(async () => {
      for (const s of opened.splice(0)) await s.close();
    });

    test("migrate: applies each migration once and records it; a newer database is refused", async () => {
      const { sql } = await fresh();
      expect(await migrate(sql)).toEqual(MIGRATIONS.map((m) => m.version));
      expect(await migrate(sql)).toEqual([]);
      const rows = await sql.all<{ version: number; name: string }>(
        "SELECT version, name FROM schema_migrations",
      );
      expect(rows).toEqual(MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
      await sql.run("INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?)", [
        999,
        "future",
        0,
      ]);
      const err = await migrate(sql).catch((e) => e);
      expect(err).toBeInstanceOf(StoreError);
      expect(err.message).toContain("version 999, newer than this hub knows");
    });

    test("CRUD: insert, select, update and delete, with the rows each changed", async () => {
      const { sql } = await fresh();
      await migrate(sql);
      for (const id of ["a", "b", "c"]) await addNode(sql, id);
      expect((await sql.run("UPDATE nodes SET level = ? WHERE id <> ?", [5, "a"])).changes).toBe(2);
      expect(await sql.all("SELECT id, level FROM nodes ORDER BY id")).toEqual([
        { id: "a", level: 3 },
        { id: "b", level: 5 },
        { id: "c", level: 5 },
      ]);
      expect(await sql.get("SELECT id FROM nodes WHERE id = ?", ["zz"])).toBeUndefined();
      expect((await sql.run("DELETE FROM nodes WHERE id = ?", ["nope"])).changes).toBe(0);
      const ignored = await sql.run(
        "INSERT INTO nodes (id, level, first_seen, last_seen) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        ["a", 9, 1, 1],
      );
      expect(ignored.changes).toBe(0);
      expect((await sql.run("DELETE FROM nodes")).changes).toBe(3);
      expect(await sql.all("SELECT * FROM nodes")).toEqual([]);
    });

    test("params: text, integers to 2^53, bytes byte-exact and null come back as they went in", async () => {
      const { sql } = await fresh();
      const bytes = sql.dialect === "postgres" ? "BYTEA" : "BLOB";
      await sql.exec(`CREATE TABLE vals (k TEXT PRIMARY KEY, t TEXT, i BIGINT, b ${bytes}, n TEXT)`);
      const every = new Uint8Array(256 + 2048);
      for (let i = 0; i < every.length; i++) every[i] = i < 256 ? i : (i * 131) & 0xff;
      const cases: [string, string, number, Uint8Array][] = [
        ["max", "quote ' and ? and \u00e9\u6f22\u{1f600}", Number.MAX_SAFE_INTEGER, every],
        ["min", "", -Number.MAX_SAFE_INTEGER, new Uint8Array(0)],
        ["zero", "x", 0, new Uint8Array([0])],
      ];
      for (const [k, t, i, b] of cases)
        await sql.run("INSERT INTO vals (k, t, i, b, n) VALUES (?, ?, ?, ?, ?)", [k, t, i, b, null]);
      for (const [k, t, i, b] of cases) {
        const row = await sql.get<{ t: string; i: number; b: Uint8Array; n: null }>(
          "SELECT t, i, b, n FROM vals WHERE k = ?",
          [k],
        );
        expect(row?.t).toBe(t);
        expect(row?.i).toBe(i);
        expect(typeof row?.i).toBe("number");
        expect(row?.b).toBeInstanceOf(Uint8Array);
        expect(Buffer.from(row!.b).equals(Buffer.from(b))).toBe(true);
        expect(row?.n).toBeNull();
      }
      // A bigint parameter binds as an integer; `?` inside a literal is text, not a parameter.
      const big = await sql.get<{ i: number; q: string }>("SELECT i, '?' AS q FROM vals WHERE i = ?", [
        BigInt(Number.MAX_SAFE_INTEGER),
      ]);
      expect(big).toEqual({ i: Number.MAX_SAFE_INTEGER, q: "?" });
    });

    test("tx: a function that throws leaves nothing behind, and its error comes out unchanged", async () => {
      const { sql } = await fresh();
      await migrate(sql);
      const boom = new Error("boom");
      const err = await sql
        .tx(async (tx) => {
          await addNode(tx, "a");
          expect(await tx.get("SELECT id FROM nodes WHERE id = ?", ["a"])).toEqual({ id: "a" });
          throw boom;
        })
        .catch((e) => e);
      expect(err).toBe(boom);
      expect(await sql.all("SELECT id FROM nodes")).toEqual([]);
      // A failing statement rolls back what came before it in the same transaction.
      await expect(
        sql.tx(async (tx) => {
          await addNode(tx, "b");
          await addNode(tx, "b");
        }),
      ).rejects.toBeInstanceOf(StoreError);
      expect(await sql.all("SELECT id FROM nodes")).toEqual([]);
    });

    test("tx: a nested tx is a savepoint; the handle refuses work once its transaction ended", async () => {
      const { sql } = await fresh();
      await migrate(sql);
      let kept: HubSql | undefined;
      const out = await sql.tx(async (tx) => {
        kept = tx;
        await addNode(tx, "outer");
        await tx
          .tx(async (inner) => {
            await addNode(inner, "rolled-back");
            throw new Error("inner fails");
          })
          .catch(() => {});
        await tx.tx(async (inner) => {
          await addNode(inner, "inner");
          await inner.tx((deeper) => addNode(deeper, "deeper"));
        });
        return "done";
      });
      expect(out).toBe("done");
      expect((await sql.all<{ id: string }>("SELECT id FROM nodes ORDER BY id")).map((r) => r.id)).toEqual([
        "deeper",
        "inner",
        "outer",
      ]);
      const late = await kept!.run("DELETE FROM nodes").catch((e) => e);
      expect(late).toBeInstanceOf(StoreError);
      expect(late.message).toContain("has ended");
      expect(await sql.all("SELECT id FROM nodes")).toHaveLength(3);
    });

    test("tx: overlapping transactions never see or undo each other's work", async () => {
      const { sql } = await fresh();
      await migrate(sql);
      let inA!: () => void;
      const aStarted = new Promise<void>((r) => {
        inA = r;
      });
      const a = sql.tx(async (tx) => {
        await addNode(tx, "from-a");
        inA();
        await Bun.sleep(50);
        throw new Error("a fails");
      });
      await aStarted;
      // On SQLite this waits for a; on PostgreSQL it runs on another connection at once.
      const b = sql.tx(async (tx) => {
        await addNode(tx, "from-b");
        return (await tx.all<{ id: string }>("SELECT id FROM nodes ORDER BY id")).map((r) => r.id);
      });
      const [ra, rb] = await Promise.allSettled([a, b]);
      expect(ra.status).toBe("rejected");
      expect(rb).toEqual({ status: "fulfilled", value: ["from-b"] });
      expect(await sql.all("SELECT id FROM nodes")).toEqual([{ id: "from-b" }]);
    });

    test("tx: the store's own handle used inside its transaction fails at once instead of waiting for it", async () => {
      const { sql } = await fresh();
      await migrate(sql);
      const err = await sql
        .tx(async (tx) => {
          await addNode(tx, "a");
          await sql.get("SELECT id FROM nodes WHERE id = ?", ["a"]);
        })
        .catch((e) => e);
      expect(err).toBeInstanceOf(StoreError);
      expect(err.message).toContain("use the handle tx() gave");
      expect(await sql.all("SELECT id FROM nodes")).toEqual([]);
      // Work a transaction starts that runs after it has ended may use the store.
      let later: Promise<unknown> | undefined;
      await sql.tx(async (tx) => {
        await addNode(tx, "b");
        later = Bun.sleep(30).then(() => sql.get("SELECT id FROM nodes WHERE id = ?", ["b"]));
      });
      expect(await later).toEqual({ id: "b" });
    });

    test("errors: a failing statement names the store and the statement", async () => {
      const { sql } = await fresh();
      await migrate(sql);
      const bad = await sql.all("SELECT nothing FROM nowhere WHERE id = ?", ["x"]).catch((e) => e);
      expect(bad).toBeInstanceOf(StoreError);
      expect(bad.code).toBe("store_failed");
      expect(bad.message).toContain(sql.store);
      expect(bad.message).toContain("SELECT nothing FROM nowhere");
      expect(bad.statement).toBe("SELECT nothing FROM nowhere WHERE id = ?");
      expect(bad.unavailable).toBe(false);
      await addNode(sql, "a");
      const dup = await addNode(sql, "a").catch((e) => e);
      expect(dup).toBeInstanceOf(StoreError);
      expect(dup.message).toContain("INSERT INTO nodes");
    });

    test("ingest: two replicas each sent the same 500 batches by an agent's link store each exactly once", async () => {
      const { sql, again } = await fresh();
      await migrate(sql);
      await addNode(sql, "n1");
      const other = again();
      const rand = mulberry32(7);
      // Each replica's agent link takes its turns at random moments.
      const between = () => new Promise<void>((r) => setTimeout(r, Math.floor(rand() * 3)));
      const [a, b] = [ingestOn(sql), ingestOn(other)];
      await Promise.all([sendAll(a, "n1", 500, { between }), sendAll(b, "n1", 500, { between })]);
      // Both were acked to the end; what one stored, the other answered from the row.
      expect([a.acked("n1"), b.acked("n1")]).toEqual([500, 500]);
      await expectStoredOnce(sql, "n1", 500);
      expect(a.commits.failed + b.commits.failed).toBe(0);
    }, 120_000);
  });
}

// The contract every HubSql back end keeps: run by sql-contract.test.ts once per back end.
import { afterEach, describe, expect, test } from "bun:test";
import { StoreError } from "../../shared/errors.ts";
import {
  acceptBatch,
  type BatchRow,
  type BatchVerdict,
  type HubSql,
  MIGRATIONS,
  migrate,
} from "../../hub/store/sql/index.ts";
import { mulberry32 } from "../support/prng.ts";

/** A fresh, empty store, and a way to open a second connection to it (another replica). */
export interface OpenStore {
  sql: HubSql;
  again(): HubSql;
}

/** Two-KB-ish batch bodies that differ by seq, so a swapped or truncated row cannot pass. */
export function batchFor(seq: number, size = 2048): BatchRow {
  const rand = mulberry32(seq * 7919);
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = Math.floor(rand() * 256);
  return {
    start: seq * 10_000,
    end: seq * 10_000 + 9_000,
    interval: 1000,
    ticks: 10,
    samples: 40,
    z: 0,
    data,
  };
}

/** Registers `node` as the hub does at hello (ingest needs its row). */
export async function addNode(sql: HubSql, node: string): Promise<void> {
  await sql.run("INSERT INTO nodes (id, level, first_seen, last_seen) VALUES (?, ?, ?, ?)", [node, 3, 1, 1]);
}

/**
 * Offers `count` batches of `node` through `sql` in random order: a replica picks one of the lowest
 * `window` batches it still holds, keeps it after a gap (it comes again), drops it once stored or
 * answered as a duplicate.
 */
export async function offerAll(sql: HubSql, node: string, count: number, seed: number, window = 6) {
  const rand = mulberry32(seed);
  const pending = Array.from({ length: count }, (_, i) => i + 1);
  const verdicts: Record<BatchVerdict, number> = { accepted: 0, duplicate: 0, gap: 0 };
  while (pending.length > 0) {
    const i = Math.floor(rand() * Math.min(window, pending.length));
    const seq = pending[i]!;
    const v = await acceptBatch(sql, node, seq, batchFor(seq));
    verdicts[v]++;
    if (v !== "gap") pending.splice(i, 1);
    // A replica reads the next message off the network between two; without this pause one SQLite
    // handle could take the write lock back before the other's wait ends, and never let it in.
    await new Promise((r) => setImmediate(r));
  }
  return verdicts;
}

/** Asserts that batches 1..n of `node` are each stored once, byte-exact, and the node's row agrees. */
export async function expectStoredOnce(sql: HubSql, node: string, n: number): Promise<void> {
  const rows = await sql.all<{ seq: number; data: Uint8Array; start: number }>(
    "SELECT seq, data, start FROM batches WHERE node = ? ORDER BY seq",
    [node],
  );
  expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
  for (const r of rows) {
    expect(r.data).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(r.data).equals(Buffer.from(batchFor(r.seq).data))).toBe(true);
    expect(r.start).toBe(r.seq * 10_000);
  }
  const row = await sql.get<{ last_seq: number; batches: number; samples: number }>(
    "SELECT last_seq, batches, samples FROM nodes WHERE id = ?",
    [node],
  );
  expect(row).toEqual({ last_seq: n, batches: n, samples: 40 * n });
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

    test("ingest tx: in order, duplicate, gap and the sender's base, counted on the node's row", async () => {
      const { sql } = await fresh();
      await migrate(sql);
      await addNode(sql, "n1");
      expect(await acceptBatch(sql, "n1", 1, batchFor(1))).toBe("accepted");
      expect(await acceptBatch(sql, "n1", 1, batchFor(1))).toBe("duplicate");
      expect(await acceptBatch(sql, "n1", 3, batchFor(3))).toBe("gap");
      expect(await acceptBatch(sql, "n1", 2, batchFor(2))).toBe("accepted");
      // The sender dropped 3..9 and says its lowest held is 10.
      expect(await acceptBatch(sql, "n1", 10, batchFor(10), 10)).toBe("accepted");
      const row = await sql.get(
        "SELECT last_seq, batches, duplicates, gaps, sample_end FROM nodes WHERE id = ?",
        ["n1"],
      );
      expect(row).toEqual({ last_seq: 10, batches: 3, duplicates: 1, gaps: 1, sample_end: 109_000 });
      const unknown = await acceptBatch(sql, "ghost", 1, batchFor(1)).catch((e) => e);
      expect(unknown.message).toContain("node ghost is not registered");
      expect(await sql.all("SELECT seq FROM batches WHERE node = ?", ["ghost"])).toEqual([]);
    });

    test("ingest tx: two replicas racing the same 500 batches in random order store each exactly once", async () => {
      const { sql, again } = await fresh();
      await migrate(sql);
      await addNode(sql, "n1");
      const other = again();
      const [a, b] = await Promise.all([offerAll(sql, "n1", 500, 1), offerAll(other, "n1", 500, 2)]);
      // Each batch is stored by one replica and answered as a duplicate to the other.
      expect(a.accepted + b.accepted).toBe(500);
      expect(a.duplicate + b.duplicate).toBe(500);
      // Both did real work: the race was a race.
      expect(Math.min(a.accepted, b.accepted)).toBeGreaterThan(25);
      await expectStoredOnce(sql, "n1", 500);
      const counts = await other.get("SELECT duplicates, gaps FROM nodes WHERE id = ?", ["n1"]);
      expect(counts).toEqual({ duplicates: 500, gaps: a.gap + b.gap });
    }, 120_000);
  });
}

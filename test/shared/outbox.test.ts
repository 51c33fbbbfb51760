// Specification of the durable outbox: sequence numbers, cumulative acks, the byte budget and bounded disk use.
import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { AgentStore } from "../../agent/store/index.ts";
import { Outbox } from "../../shared/link/index.ts";
import { decodeCbor, encodeCbor, type MessageType } from "../../shared/protocol/index.ts";
import { tempDir } from "../support/processes.ts";

const T0 = 1_718_000_000_000;

/** Opens (or reopens) an outbox on DIR/outbox.db in WAL mode; disposing closes the database. */
function openOutbox(dir: string, budgetBytes = 1 << 30): { db: Database; outbox: Outbox } & Disposable {
  const db = new Database(join(dir, "outbox.db"), { create: true, strict: true });
  db.run("PRAGMA journal_mode = WAL");
  db.run("PRAGMA synchronous = NORMAL");
  return { db, outbox: new Outbox(db, { budgetBytes }), [Symbol.dispose]: () => db.close() };
}

/** A body of exactly `n` bytes whose first byte tells entries apart. */
function body(n: number, tag = 0): Uint8Array {
  const b = new Uint8Array(n);
  b.fill(tag & 0xff);
  return b;
}

const seqs = (outbox: Outbox) => outbox.readFrom(0, 1_000_000).map((e) => e.seq);

describe("outbox: sequence numbers", () => {
  test("rise by one per append, starting at 1", () => {
    using dir = tempDir();
    using o = openOutbox(dir.path);
    expect(o.outbox.lastSeq()).toBe(0);
    const got = [1, 2, 3].map((i) => o.outbox.append("event", body(10, i), 0, T0 + i));
    expect(got).toEqual([1, 2, 3]);
    expect(o.outbox.lastSeq()).toBe(3);
  });

  test("are never reused, even after everything was acked and the database reopened", () => {
    using dir = tempDir();
    {
      using o = openOutbox(dir.path);
      for (let i = 0; i < 5; i++) o.outbox.append("metrics_batch", body(10), 1, T0);
      expect(o.outbox.ackUpTo(5)).toBe(5);
      expect(o.outbox.stats().pending).toBe(0);
      expect(o.outbox.append("event", body(10), 0, T0)).toBe(6);
      o.outbox.ackUpTo(6);
    }
    using o = openOutbox(dir.path);
    expect(o.outbox.stats().pending).toBe(0);
    expect(o.outbox.lastSeq()).toBe(6);
    expect(o.outbox.append("event", body(10), 0, T0)).toBe(7);
  });

  test("ensureSeqAbove makes the next number greater than the one given, durably", () => {
    using dir = tempDir();
    {
      using o = openOutbox(dir.path);
      o.outbox.ensureSeqAbove(100);
      expect(o.outbox.lastSeq()).toBe(100);
      expect(o.outbox.append("event", body(10), 0, T0)).toBe(101);
    }
    using o = openOutbox(dir.path);
    expect(o.outbox.append("event", body(10), 0, T0)).toBe(102);
  });

  test("ensureSeqAbove never lowers the sequence", () => {
    using dir = tempDir();
    using o = openOutbox(dir.path);
    for (let i = 0; i < 10; i++) o.outbox.append("event", body(10), 0, T0);
    o.outbox.ensureSeqAbove(3);
    expect(o.outbox.lastSeq()).toBe(10);
    expect(o.outbox.append("event", body(10), 0, T0)).toBe(11);
  });
});

describe("outbox: acks and reads", () => {
  test("ackUpTo deletes cumulatively every entry up to and including the number", () => {
    using dir = tempDir();
    using o = openOutbox(dir.path);
    for (let i = 1; i <= 5; i++) o.outbox.append("metrics_batch", body(100, i), 7, T0 + i);
    expect(o.outbox.ackUpTo(3)).toBe(3);
    expect(seqs(o.outbox)).toEqual([4, 5]);
    expect(o.outbox.lowest()).toBe(4);
    expect(o.outbox.stats()).toMatchObject({ pending: 2, bytes: 200, oldestMs: T0 + 4 });
  });

  test("ackUpTo is idempotent: the same or an older ack deletes nothing more", () => {
    using dir = tempDir();
    using o = openOutbox(dir.path);
    for (let i = 1; i <= 5; i++) o.outbox.append("metrics_batch", body(100, i), 7, T0);
    o.outbox.ackUpTo(3);
    expect(o.outbox.ackUpTo(3)).toBe(0);
    expect(o.outbox.ackUpTo(1)).toBe(0);
    expect(seqs(o.outbox)).toEqual([4, 5]);
    expect(o.outbox.stats()).toMatchObject({ pending: 2, bytes: 200 });
    expect(o.outbox.ackUpTo(99)).toBe(2);
    expect(o.outbox.stats()).toMatchObject({ pending: 0, bytes: 0, oldestMs: undefined });
    expect(o.outbox.lowest()).toBeUndefined();
  });

  test("readFrom returns entries from a number on, oldest first, with what was stored", () => {
    using dir = tempDir();
    using o = openOutbox(dir.path);
    const types: MessageType[] = ["metrics_batch", "event", "task_result", "metrics_batch", "alloc_status"];
    types.forEach((t, i) => {
      o.outbox.append(t, encodeCbor({ n: i }), i * 2, T0 + i);
      // Sent at once: nothing overtakes anything.
      o.outbox.markSent(o.outbox.lastSeq());
    });
    const entries = o.outbox.readFrom(2, 3);
    expect(entries.map((e) => e.seq)).toEqual([2, 3, 4]);
    expect(entries.map((e) => e.type)).toEqual(["event", "task_result", "metrics_batch"]);
    expect(entries.map((e) => e.created)).toEqual([T0 + 1, T0 + 2, T0 + 3]);
    expect(entries.map((e) => e.samples)).toEqual([2, 4, 6]);
    expect(entries.map((e) => [...e.body])).toEqual([1, 2, 3].map((n) => [...encodeCbor({ n })]));
    expect(o.outbox.readFrom(6, 10)).toEqual([]);
  });

  test("alerts, decisions and task results overtake metrics batches that were not sent yet, never sent ones", () => {
    using dir = tempDir();
    using o = openOutbox(dir.path);
    const put = (t: MessageType, n: number) => o.outbox.append(t, encodeCbor({ n }), 0, T0 + n);
    put("metrics_batch", 0);
    put("metrics_batch", 1);
    o.outbox.markSent(2);
    put("metrics_batch", 2);
    put("metrics_batch", 3);
    expect(put("event", 4)).toBe(3);
    expect(put("task_result", 5)).toBe(4);
    expect(put("metrics_batch", 6)).toBe(7);
    const order = o.outbox
      .readFrom(0, 10)
      .map((e) => [e.seq, e.type, (decodeCbor(e.body) as { n: number }).n]);
    expect(order).toEqual([
      [1, "metrics_batch", 0],
      [2, "metrics_batch", 1],
      [3, "event", 4],
      [4, "task_result", 5],
      [5, "metrics_batch", 2],
      [6, "metrics_batch", 3],
      [7, "metrics_batch", 6],
    ]);
    expect(o.outbox.lastSeq()).toBe(7);
  });

  test("pending, bytes and drop counters survive a reopen", () => {
    using dir = tempDir();
    {
      using o = openOutbox(dir.path, 250);
      for (let i = 0; i < 4; i++) o.outbox.append("metrics_batch", body(100), 5, T0 + i);
    }
    using o = openOutbox(dir.path, 250);
    expect(o.outbox.stats()).toEqual({
      pending: 2,
      bytes: 200,
      oldestMs: T0 + 2,
      droppedMessages: 2,
      droppedSamples: 10,
      downsampledSamples: 0,
    });
  });

  // Regression: shared/link/outbox.ts append() adds to the in-memory #count/#bytes inside the transaction
  // (and #enforceBudget subtracts there too); when `within` throws, SQLite rolls back but the counters
  // keep the change, so stats().pending/bytes (and budget enforcement) drift from the table until a
  // restart. Fix: compute the deltas inside the transaction and apply them only after tx() returns.
  test("a failed append (its in-transaction callback throws) stores nothing and leaves the stats as they were", () => {
    using dir = tempDir();
    using o = openOutbox(dir.path);
    o.outbox.append("event", body(100), 0, T0);
    const before = o.outbox.stats();
    expect(() =>
      o.outbox.append("metrics_batch", body(100), 5, T0, () => {
        throw new Error("staged rows could not be deleted");
      }),
    ).toThrow("staged rows could not be deleted");
    expect(seqs(o.outbox)).toEqual([1]);
    expect(o.outbox.stats()).toEqual(before);
  });
});

describe("outbox: byte budget", () => {
  test("appending past the budget drops the oldest metrics batches first and counts them", () => {
    using dir = tempDir();
    using o = openOutbox(dir.path, 1000);
    for (let i = 1; i <= 15; i++) o.outbox.append("metrics_batch", body(100, i), 10, T0 + i);
    expect(seqs(o.outbox)).toEqual([6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    expect(o.outbox.stats()).toMatchObject({
      pending: 10,
      bytes: 1000,
      droppedMessages: 5,
      droppedSamples: 50,
    });
  });

  test("never drops other kinds of message while metrics batches remain", () => {
    using dir = tempDir();
    using o = openOutbox(dir.path, 500);
    o.outbox.append("event", body(100), 0, T0);
    o.outbox.append("task_result", body(100), 0, T0);
    for (let i = 0; i < 10; i++) o.outbox.append("metrics_batch", body(100), 3, T0);
    const kept = o.outbox.readFrom(0, 100);
    expect(kept.slice(0, 2).map((e) => [e.seq, e.type])).toEqual([
      [1, "event"],
      [2, "task_result"],
    ]);
    expect(kept.slice(2).map((e) => e.seq)).toEqual([10, 11, 12]);
    expect(o.outbox.stats()).toMatchObject({ bytes: 500, droppedMessages: 7, droppedSamples: 21 });
  });

  test("drops the oldest message of any kind once no metrics batch is left", () => {
    using dir = tempDir();
    using o = openOutbox(dir.path, 250);
    for (let i = 0; i < 4; i++) o.outbox.append("event", body(100), 0, T0);
    expect(seqs(o.outbox)).toEqual([3, 4]);
    expect(o.outbox.stats()).toMatchObject({ bytes: 200, droppedMessages: 2, droppedSamples: 0 });
  });

  test("never drops the entry just appended, even when it alone exceeds the budget", () => {
    using dir = tempDir();
    using o = openOutbox(dir.path, 1000);
    o.outbox.append("metrics_batch", body(100), 1, T0);
    const big = o.outbox.append("metrics_batch", body(5000), 50, T0);
    expect(seqs(o.outbox)).toEqual([big]);
    expect(o.outbox.stats()).toMatchObject({
      pending: 1,
      bytes: 5000,
      droppedMessages: 1,
      droppedSamples: 1,
    });
    // The next append makes the big one the oldest, so it goes.
    o.outbox.append("metrics_batch", body(100), 1, T0);
    expect(seqs(o.outbox)).toEqual([big + 1]);
  });

  test("keeps its bytes within the budget plus one entry through a long mixed run", () => {
    using dir = tempDir();
    const budget = 10_000;
    using o = openOutbox(dir.path, budget);
    let largest = 0;
    for (let i = 0; i < 2000; i++) {
      const size = 50 + ((i * 7919) % 900);
      largest = Math.max(largest, size);
      o.outbox.append(i % 17 === 0 ? "event" : "metrics_batch", body(size), 1, T0 + i);
      if (i % 50 === 0) o.outbox.ackUpTo(o.outbox.lowest()!);
      expect(o.outbox.stats().bytes).toBeLessThanOrEqual(budget + largest);
    }
    const stored = o.db.query("SELECT count(*) AS n, coalesce(sum(bytes), 0) AS b FROM outbox").get() as {
      n: number;
      b: number;
    };
    expect(o.outbox.stats()).toMatchObject({ pending: stored.n, bytes: stored.b });
  });

  test("a lowered budget is enforced no later than the next append", () => {
    using dir = tempDir();
    using o = openOutbox(dir.path, 10_000);
    for (let i = 0; i < 10; i++) o.outbox.append("metrics_batch", body(100), 2, T0);
    o.outbox.setBudget(300);
    o.outbox.append("metrics_batch", body(100), 2, T0);
    expect(seqs(o.outbox)).toEqual([9, 10, 11]);
    expect(o.outbox.stats()).toMatchObject({ droppedMessages: 8, droppedSamples: 16 });
  });
});

describe("outbox: disk use (AgentStore)", () => {
  const size = (path: string) => (existsSync(path) ? statSync(path).size : 0);

  test("the database file and its WAL stay bounded through 20,000 appends against a 256 KiB budget", () => {
    using dir = tempDir();
    const budget = 256 * 1024;
    const store = new AgentStore(dir.path, { bufferBytes: budget });
    const wal = `${store.path}-wal`;
    const payload = new Uint8Array(1024);
    let maxDb = 0;
    let maxWal = 0;
    for (let i = 0; i < 20_000; i++) {
      crypto.getRandomValues(payload); // incompressible, like a zstd-packed batch
      store.outbox.append("metrics_batch", payload, 10, T0 + i);
      if (i % 250 === 0 || i === 19_999) {
        maxDb = Math.max(maxDb, size(store.path));
        maxWal = Math.max(maxWal, size(wal));
      }
    }
    const stats = store.outbox.stats();
    store.reclaim();
    const open = { db: size(store.path), wal: size(wal) };
    store.close();
    const closed = { db: size(store.path), wal: size(wal) };
    console.log(
      `outbox disk use, 20,000 × 1 KiB appends, 256 KiB budget: peak db ${maxDb} B, peak wal ${maxWal} B;` +
        ` at the end db ${open.db} B + wal ${open.wal} B; after close db ${closed.db} B + wal ${closed.wal} B`,
    );
    expect(stats.bytes).toBeLessThanOrEqual(budget);
    expect(stats.droppedMessages).toBe(20_000 - stats.pending);
    // The file holds the budget plus B-tree overhead; freed pages are reused, so it never grows past that.
    expect(maxDb).toBeLessThanOrEqual(2 * budget);
    // The WAL is bounded by the checkpoint (1000 pages) and journal_size_limit (4 MiB), not by the budget.
    expect(maxWal).toBeLessThanOrEqual(4 * 1024 * 1024 + 256 * 1024);
    expect(closed.wal).toBe(0);
    expect(closed.db).toBeLessThanOrEqual(2 * budget);
  });

  // Regression: agent/store/agent-store.ts sets `PRAGMA auto_vacuum = INCREMENTAL` after `PRAGMA journal_mode = WAL`;
  // switching to WAL already writes the database header, so auto_vacuum stays NONE and reclaim()
  // (`PRAGMA incremental_vacuum`) gives nothing back. Fix: set auto_vacuum before journal_mode
  // (plus a one-time VACUUM for databases created by the current code).
  test("reclaim() gives the pages of acked entries back to the file system", () => {
    using dir = tempDir();
    const store = new AgentStore(dir.path, { bufferBytes: 64 << 20 });
    const payload = new Uint8Array(1024);
    for (let i = 0; i < 4000; i++) store.outbox.append("metrics_batch", payload, 1, T0);
    store.db.run("PRAGMA wal_checkpoint(TRUNCATE)");
    const full = statSync(store.path).size;
    store.outbox.ackUpTo(store.outbox.lastSeq());
    store.reclaim();
    store.db.run("PRAGMA wal_checkpoint(TRUNCATE)");
    const after = statSync(store.path).size;
    store.close();
    expect(after).toBeLessThan(full / 4);
  });
});

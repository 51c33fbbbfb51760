// Specification of the durable outbox: sequence numbers, cumulative acks, the byte budget and bounded disk use.
import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { AgentStore, MetricBuffer } from "../../agent/store/index.ts";
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

/** Row ids held, in send order. */
const ids = (outbox: Outbox) => outbox.readFrom(0, 1_000_000).map((e) => e.id);
/** Takes (numbers and returns) everything held, as the link does when it sends. */
const sendAll = (outbox: Outbox) => outbox.take(0, 1_000_000);

describe("outbox: row ids and wire numbers", () => {
  test("rows get ids rising by one; wire numbers are handed out only when rows are sent, in send order", () => {
    using dir = tempDir();
    using o = openOutbox(dir.path);
    expect(o.outbox.lastSeq()).toBe(0);
    const got = [1, 2, 3].map((i) => o.outbox.append("event", body(10, i), 0, T0 + i));
    expect(got).toEqual([1, 2, 3]);
    expect(o.outbox.readFrom(0, 10).map((e) => e.seq)).toEqual([null, null, null]);
    expect(o.outbox.lastSeq()).toBe(0);
    const sent = o.outbox.take(1, 2);
    expect(sent.map((e) => [e.id, e.seq])).toEqual([
      [1, 1],
      [2, 2],
    ]);
    expect(o.outbox.lastSeq()).toBe(2);
    expect(o.outbox.take(3, 10).map((e) => [e.id, e.seq])).toEqual([[3, 3]]);
  });

  test("a store that cannot write (a full disk) still hands out what is numbered already: resending it needs no write", () => {
    using dir = tempDir();
    using o = openOutbox(dir.path);
    for (let i = 1; i <= 5; i++) o.outbox.append("event", body(10, i), 0, T0 + i);
    expect(o.outbox.take(1, 3).map((e) => e.seq)).toEqual([1, 2, 3]);
    o.db.run("PRAGMA query_only = ON");
    // A resend from 2 asks for more than is numbered: the numbered ones come, the rest waits.
    expect(o.outbox.take(2, 10).map((e) => [e.id, e.seq])).toEqual([
      [2, 2],
      [3, 3],
    ]);
    expect(() => o.outbox.take(4, 10)).toThrow();
    expect(o.outbox.lastSeq()).toBe(3);
    o.db.run("PRAGMA query_only = OFF");
    expect(o.outbox.take(4, 10).map((e) => [e.id, e.seq])).toEqual([
      [4, 4],
      [5, 5],
    ]);
  });

  test("a numbered row keeps its number: a restart resends the same row under the same number until it is acked", () => {
    using dir = tempDir();
    {
      using o = openOutbox(dir.path);
      for (let i = 1; i <= 4; i++) o.outbox.append("metrics_batch", body(10, i), 1, T0 + i);
      o.outbox.append("event", body(10, 9), 0, T0 + 9);
      // The event goes first; the first two batches follow. Then the process dies before any ack.
      expect(o.outbox.take(1, 3).map((e) => [e.id, e.seq])).toEqual([
        [5, 1],
        [1, 2],
        [2, 3],
      ]);
    }
    using o = openOutbox(dir.path);
    const again = o.outbox.take(1, 10);
    expect(again.map((e) => [e.id, e.seq, e.body[0]])).toEqual([
      [5, 1, 9],
      [1, 2, 1],
      [2, 3, 2],
      [3, 4, 3],
      [4, 5, 4],
    ]);
    expect(o.outbox.lowest()).toBe(1);
  });

  test("wire numbers are never reused, even after everything was acked and the database reopened", () => {
    using dir = tempDir();
    {
      using o = openOutbox(dir.path);
      for (let i = 0; i < 5; i++) o.outbox.append("metrics_batch", body(10), 1, T0);
      sendAll(o.outbox);
      expect(o.outbox.ackUpTo(5)).toBe(5);
      expect(o.outbox.stats().pending).toBe(0);
      o.outbox.append("event", body(10), 0, T0);
      expect(sendAll(o.outbox).map((e) => e.seq)).toEqual([6]);
      o.outbox.ackUpTo(6);
    }
    using o = openOutbox(dir.path);
    expect(o.outbox.stats().pending).toBe(0);
    expect(o.outbox.lastSeq()).toBe(6);
    o.outbox.append("event", body(10), 0, T0);
    expect(sendAll(o.outbox).map((e) => e.seq)).toEqual([7]);
  });

  test("ensureSeqAbove makes the next number greater than the one given, durably, and never lowers it", () => {
    using dir = tempDir();
    {
      using o = openOutbox(dir.path);
      o.outbox.ensureSeqAbove(100);
      expect(o.outbox.lastSeq()).toBe(100);
      o.outbox.append("event", body(10), 0, T0);
      expect(sendAll(o.outbox).map((e) => e.seq)).toEqual([101]);
      o.outbox.ensureSeqAbove(3);
      expect(o.outbox.lastSeq()).toBe(101);
    }
    using o = openOutbox(dir.path);
    o.outbox.append("event", body(10), 0, T0);
    expect(o.outbox.take(102, 10).map((e) => e.seq)).toEqual([102]);
  });

  test("unnumber takes back the numbers of held rows: they go again, in their place, under new numbers", () => {
    using dir = tempDir();
    using o = openOutbox(dir.path);
    for (let i = 1; i <= 3; i++) o.outbox.append("event", body(10, i), 0, T0);
    sendAll(o.outbox);
    expect(o.outbox.unnumber()).toBe(3);
    o.outbox.ensureSeqAbove(50);
    expect(o.outbox.lowest()).toBeUndefined();
    expect(sendAll(o.outbox).map((e) => [e.id, e.seq])).toEqual([
      [1, 51],
      [2, 52],
      [3, 53],
    ]);
  });
});

describe("outbox: acks and reads", () => {
  test("ackUpTo deletes cumulatively every entry numbered up to and including the number", () => {
    using dir = tempDir();
    using o = openOutbox(dir.path);
    for (let i = 1; i <= 5; i++) o.outbox.append("metrics_batch", body(100, i), 7, T0 + i);
    sendAll(o.outbox);
    expect(o.outbox.ackUpTo(3)).toBe(3);
    expect(ids(o.outbox)).toEqual([4, 5]);
    expect(o.outbox.lowest()).toBe(4);
    expect(o.outbox.stats()).toMatchObject({ pending: 2, bytes: 200, samples: 14, oldestMs: T0 + 4 });
  });

  test("an ack never covers rows that were not numbered", () => {
    using dir = tempDir();
    using o = openOutbox(dir.path);
    for (let i = 1; i <= 5; i++) o.outbox.append("metrics_batch", body(100, i), 7, T0 + i);
    o.outbox.take(1, 2);
    expect(o.outbox.ackUpTo(1_000)).toBe(2);
    expect(ids(o.outbox)).toEqual([3, 4, 5]);
  });

  test("ackUpTo is idempotent: the same or an older ack deletes nothing more", () => {
    using dir = tempDir();
    using o = openOutbox(dir.path);
    for (let i = 1; i <= 5; i++) o.outbox.append("metrics_batch", body(100, i), 7, T0);
    sendAll(o.outbox);
    o.outbox.ackUpTo(3);
    expect(o.outbox.ackUpTo(3)).toBe(0);
    expect(o.outbox.ackUpTo(1)).toBe(0);
    expect(ids(o.outbox)).toEqual([4, 5]);
    expect(o.outbox.stats()).toMatchObject({ pending: 2, bytes: 200 });
    expect(o.outbox.ackUpTo(99)).toBe(2);
    expect(o.outbox.stats()).toMatchObject({ pending: 0, bytes: 0, samples: 0, oldestMs: undefined });
    expect(o.outbox.lowest()).toBeUndefined();
  });

  test("take returns entries from a number on, oldest first, with what was stored", () => {
    using dir = tempDir();
    using o = openOutbox(dir.path);
    const types: MessageType[] = ["metrics_batch", "event", "task_result", "metrics_batch", "alloc_status"];
    types.forEach((t, i) => {
      o.outbox.append(t, encodeCbor({ n: i }), i * 2, T0 + i);
      // Sent at once: nothing overtakes anything.
      o.outbox.take(i + 1, 1);
    });
    const entries = o.outbox.take(2, 3);
    expect(entries.map((e) => e.seq)).toEqual([2, 3, 4]);
    expect(entries.map((e) => e.type)).toEqual(["event", "task_result", "metrics_batch"]);
    expect(entries.map((e) => e.created)).toEqual([T0 + 1, T0 + 2, T0 + 3]);
    expect(entries.map((e) => e.samples)).toEqual([2, 4, 6]);
    expect(entries.map((e) => [...e.body])).toEqual([1, 2, 3].map((n) => [...encodeCbor({ n })]));
    expect(o.outbox.take(6, 10)).toEqual([]);
  });

  test("alerts, decisions and task results overtake metrics batches that were not sent yet, never sent ones", () => {
    using dir = tempDir();
    using o = openOutbox(dir.path);
    const put = (t: MessageType, n: number) => o.outbox.append(t, encodeCbor({ n }), 0, T0 + n);
    put("metrics_batch", 0);
    put("metrics_batch", 1);
    o.outbox.take(1, 2);
    put("metrics_batch", 2);
    put("metrics_batch", 3);
    expect(put("event", 4)).toBe(5);
    expect(put("task_result", 5)).toBe(6);
    expect(put("metrics_batch", 6)).toBe(7);
    const order = sendAll(o.outbox).map((e) => [
      e.seq,
      e.id,
      e.type,
      (decodeCbor(e.body) as { n: number }).n,
    ]);
    expect(order).toEqual([
      [1, 1, "metrics_batch", 0],
      [2, 2, "metrics_batch", 1],
      [3, 5, "event", 4],
      [4, 6, "task_result", 5],
      [5, 3, "metrics_batch", 2],
      [6, 4, "metrics_batch", 3],
      [7, 7, "metrics_batch", 6],
    ]);
    expect(o.outbox.lastSeq()).toBe(7);
  });

  test("overtaking rewrites no stored row: an alert behind a backlog only adds its own", () => {
    using dir = tempDir();
    using o = openOutbox(dir.path);
    for (let i = 0; i < 500; i++) o.outbox.append("metrics_batch", body(50, i), 3, T0 + i);
    const rows = () =>
      o.db
        .query("SELECT o.id, o.seq, b.body FROM outbox o JOIN outbox_body b ON b.id = o.id ORDER BY o.id")
        .all();
    const before = rows();
    const changes = () => (o.db.query("SELECT total_changes() AS n").get() as { n: number }).n;
    const c0 = changes();
    o.outbox.append("event", body(10, 1), 0, T0);
    // Two inserts (the alert's row and its body): no other row moved.
    expect(changes() - c0).toBe(2);
    expect(rows().slice(0, 500)).toEqual(before);
    expect(o.outbox.readFrom(0, 1)[0]!.type).toBe("event");
  });

  test("pending, bytes, samples and drop counters survive a reopen", () => {
    using dir = tempDir();
    {
      using o = openOutbox(dir.path, 250);
      for (let i = 0; i < 4; i++) o.outbox.append("metrics_batch", body(100), 5, T0 + i);
    }
    using o = openOutbox(dir.path, 250);
    expect(o.outbox.stats()).toEqual({
      pending: 2,
      bytes: 200,
      samples: 10,
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
    expect(ids(o.outbox)).toEqual([1]);
    expect(o.outbox.stats()).toEqual(before);
  });
});

describe("outbox: epoch and counters", () => {
  test("the epoch is made with the store, kept across reopens, and replaced only by newEpoch", () => {
    using dir = tempDir();
    let first: string;
    {
      using o = openOutbox(dir.path);
      first = o.outbox.epoch;
      expect(first).toMatch(/^[0-9a-f]{16}$/);
    }
    using o = openOutbox(dir.path);
    expect(o.outbox.epoch).toBe(first);
    const next = o.outbox.newEpoch();
    expect(next).not.toBe(first);
    using other = tempDir();
    using p = openOutbox(other.path);
    expect(p.outbox.epoch).not.toBe(first);
  });

  test("carryOn adds what the hub counted beyond the store as opened, keeps what was counted since, and never goes back", () => {
    using dir = tempDir();
    {
      // The store as the copy was taken: 40 produced, 10 dropped.
      using o = openOutbox(dir.path, 150);
      o.outbox.bump("samples_produced", 40);
      for (let i = 0; i < 3; i++) o.outbox.append("metrics_batch", body(100), 5, T0);
    }
    using o = openOutbox(dir.path, 150);
    expect(o.outbox.counters()).toEqual({ produced: 40, dropped: 10, droppedBy: { budget: 10 } });
    // The copy samples 7 more before it reaches the hub, which counted 1000 produced and 4 dropped.
    o.outbox.bump("samples_produced", 7);
    o.outbox.carryOn({ produced: 1000, dropped: 4 });
    expect(o.outbox.counters()).toMatchObject({ produced: 1007, dropped: 10 });
    // The same values again add nothing; higher ones add the difference.
    o.outbox.carryOn({ produced: 1000, dropped: 4 });
    expect(o.outbox.counters()).toMatchObject({ produced: 1007, dropped: 10 });
    o.outbox.carryOn({ produced: 1005, dropped: 30 });
    expect(o.outbox.counters()).toMatchObject({ produced: 1012, dropped: 30 });
  });
});

describe("outbox: byte budget", () => {
  test("appending past the budget drops the oldest metrics batches first and counts them", () => {
    using dir = tempDir();
    using o = openOutbox(dir.path, 1000);
    for (let i = 1; i <= 15; i++) o.outbox.append("metrics_batch", body(100, i), 10, T0 + i);
    expect(ids(o.outbox)).toEqual([6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
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
    expect(kept.slice(0, 2).map((e) => [e.id, e.type])).toEqual([
      [1, "event"],
      [2, "task_result"],
    ]);
    expect(kept.slice(2).map((e) => e.id)).toEqual([10, 11, 12]);
    expect(o.outbox.stats()).toMatchObject({ bytes: 500, droppedMessages: 7, droppedSamples: 21 });
  });

  test("drops the oldest message of any kind once no metrics batch is left", () => {
    using dir = tempDir();
    using o = openOutbox(dir.path, 250);
    for (let i = 0; i < 4; i++) o.outbox.append("event", body(100), 0, T0);
    expect(ids(o.outbox)).toEqual([3, 4]);
    expect(o.outbox.stats()).toMatchObject({ bytes: 200, droppedMessages: 2, droppedSamples: 0 });
  });

  test("never drops the entry just appended, even when it alone exceeds the budget", () => {
    using dir = tempDir();
    using o = openOutbox(dir.path, 1000);
    o.outbox.append("metrics_batch", body(100), 1, T0);
    const big = o.outbox.append("metrics_batch", body(5000), 50, T0);
    expect(ids(o.outbox)).toEqual([big]);
    expect(o.outbox.stats()).toMatchObject({
      pending: 1,
      bytes: 5000,
      droppedMessages: 1,
      droppedSamples: 1,
    });
    // The next append makes the big one the oldest, so it goes.
    o.outbox.append("metrics_batch", body(100), 1, T0);
    expect(ids(o.outbox)).toEqual([big + 1]);
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
      if (i % 50 === 0) o.outbox.ackUpTo(o.outbox.take(o.outbox.lastSeq() + 1, 1)[0]!.seq);
      expect(o.outbox.stats().bytes).toBeLessThanOrEqual(budget + largest);
    }
    const stored = o.db.query("SELECT count(*) AS n, coalesce(sum(bytes), 0) AS b FROM outbox").get() as {
      n: number;
      b: number;
    };
    expect(o.outbox.stats()).toMatchObject({ pending: stored.n, bytes: stored.b });
  });

  test("never drops a numbered entry (it may have reached the hub): only unsent ones go, and each is counted once", () => {
    using dir = tempDir();
    using o = openOutbox(dir.path, 1000);
    for (let i = 1; i <= 5; i++) o.outbox.append("metrics_batch", body(100, i), 10, T0 + i);
    // Three are in flight when the budget is exceeded.
    const inFlight = o.outbox.take(1, 3);
    for (let i = 6; i <= 15; i++) o.outbox.append("metrics_batch", body(100, i), 10, T0 + i);
    const held = o.outbox.readFrom(0, 100);
    expect(held.slice(0, 3).map((e) => [e.id, e.seq])).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
    ]);
    // Unsent 4..8 went instead, oldest first.
    expect(held.slice(3).map((e) => e.id)).toEqual([9, 10, 11, 12, 13, 14, 15]);
    expect(o.outbox.stats()).toMatchObject({ droppedMessages: 5, droppedSamples: 50, bytes: 1000 });
    // The hub stores the three in flight and acks them: every sample is stored, dropped or held, once.
    const stored = inFlight.reduce((a, e) => a + e.samples, 0);
    expect(o.outbox.ackUpTo(3)).toBe(3);
    expect(stored + o.outbox.stats().droppedSamples + o.outbox.stats().samples).toBe(150);
  });

  test("when only numbered entries are left over the budget, nothing is dropped: the window bounds them", () => {
    using dir = tempDir();
    using o = openOutbox(dir.path, 1000);
    for (let i = 1; i <= 5; i++) o.outbox.append("metrics_batch", body(100, i), 10, T0 + i);
    o.outbox.take(1, 5);
    o.outbox.setBudget(200);
    expect(o.outbox.stats()).toMatchObject({ pending: 5, droppedMessages: 0 });
    // A new unsent entry may still go in; it is the one dropped next time, not a numbered one.
    o.outbox.append("metrics_batch", body(100, 6), 10, T0);
    o.outbox.append("metrics_batch", body(100, 7), 10, T0);
    expect(ids(o.outbox)).toEqual([1, 2, 3, 4, 5, 7]);
    expect(o.outbox.stats()).toMatchObject({ droppedMessages: 1, droppedSamples: 10 });
  });

  test("a lowered budget is enforced no later than the next append", () => {
    using dir = tempDir();
    using o = openOutbox(dir.path, 10_000);
    for (let i = 0; i < 10; i++) o.outbox.append("metrics_batch", body(100), 2, T0);
    o.outbox.setBudget(300);
    o.outbox.append("metrics_batch", body(100), 2, T0);
    expect(ids(o.outbox)).toEqual([9, 10, 11]);
    expect(o.outbox.stats()).toMatchObject({ droppedMessages: 8, droppedSamples: 16 });
  });
});

describe("outbox: what an agent store holds", () => {
  test("held counts samples staged by the metric buffer and those in the outbox, until they are acked", () => {
    using dir = tempDir();
    const store = new AgentStore(dir.path, { bufferBytes: 1 << 20 });
    try {
      const buffer = new MetricBuffer(store, 1000);
      buffer.add(T0, { a: 1, b: 2, c: 3 });
      buffer.add(T0 + 1000, { a: 1, b: 2 });
      expect(store.outbox.held()).toBe(5);
      buffer.flush(T0 + 2000);
      expect(store.outbox.held()).toBe(5);
      buffer.add(T0 + 2000, { a: 4 });
      expect(store.outbox.held()).toBe(6);
      const sent = store.outbox.take(1, 10);
      store.outbox.ackUpTo(sent[sent.length - 1]!.seq);
      expect(store.outbox.held()).toBe(1);
      expect(buffer.produced()).toBe(6);
    } finally {
      store.close();
    }
  });
});

describe("outbox: the drain path writes only small rows", () => {
  const ROWS = 20;
  const BODY = 20 * 1024;

  /** An outbox of ROWS incompressible BODY-byte metrics batches, checkpointed: the WAL starts empty. */
  function filled(dir: string): {
    db: Database;
    outbox: Outbox;
    walBytes: () => number;
    walPages: () => number;
    page: number;
  } & Disposable {
    const o = openOutbox(dir);
    // No automatic checkpoint: every frame written from here on stays in the WAL to be counted.
    o.db.run("PRAGMA wal_autocheckpoint = 0");
    for (let i = 0; i < ROWS; i++) {
      const b = new Uint8Array(BODY);
      crypto.getRandomValues(b);
      o.outbox.append("metrics_batch", b, 100, T0 + i);
    }
    o.db.run("PRAGMA wal_checkpoint(TRUNCATE)");
    const wal = join(dir, "outbox.db-wal");
    const walBytes = () => (existsSync(wal) ? statSync(wal).size : 0);
    const page = (o.db.query("PRAGMA page_size").get() as { page_size: number }).page_size;
    // Pages written to the WAL since the checkpoint (each frame is a 24-byte header and a page; 32 for the file's).
    const walPages = () => Math.max(0, Math.round((walBytes() - 32) / (page + 24)));
    return { ...o, walBytes, walPages, page };
  }

  test("numbering a window of large rows (take) leaves the WAL far smaller than the bodies", () => {
    using dir = tempDir();
    using o = filled(dir.path);
    expect(o.walBytes()).toBe(0);
    const sent = o.outbox.take(1, ROWS);
    expect(sent.map((e) => e.seq)).toEqual(Array.from({ length: ROWS }, (_, i) => i + 1));
    expect(sent.every((e) => e.body.byteLength === BODY)).toBe(true);
    const wal = o.walBytes();
    console.log(`take() of ${ROWS} rows of ${BODY} B: WAL ${wal} B (the bodies are ${ROWS * BODY} B)`);
    // A few pages (the metadata rows, the wire-number indexes, the counter), not a body per row: with the
    // bodies in the numbered rows this was more than ROWS × BODY (over 100 pages of 4 KiB).
    expect(o.walPages()).toBeLessThanOrEqual(10);
    expect(wal).toBeLessThan((ROWS * BODY) / 10);
    // A resend of the same window reads, and writes nothing.
    o.outbox.take(1, ROWS);
    expect(o.walBytes()).toBe(wal);
  });

  test("acking a window of large rows writes a few pages, not their bodies", () => {
    using dir = tempDir();
    using o = filled(dir.path);
    o.outbox.take(1, ROWS);
    o.db.run("PRAGMA wal_checkpoint(TRUNCATE)");
    expect(o.outbox.ackUpTo(ROWS)).toBe(ROWS);
    const wal = o.walBytes();
    console.log(`ackUpTo() of ${ROWS} rows of ${BODY} B: WAL ${wal} B`);
    expect(o.walPages()).toBeLessThanOrEqual(10);
    expect(o.outbox.stats()).toMatchObject({ pending: 0, bytes: 0 });
    expect((o.db.query("SELECT count(*) AS n FROM outbox_body").get() as { n: number }).n).toBe(0);
  });

  test("replace rewrites only the rows it folds: the WAL holds the new bodies, not the rows kept", () => {
    using dir = tempDir();
    using o = filled(dir.path);
    o.db.run("PRAGMA wal_checkpoint(TRUNCATE)");
    // Folds the oldest two into one small entry; the other 18 stay where they are.
    o.outbox.replace([1, 2], [{ type: "metrics_batch", body: body(500, 9), samples: 200, created: T0 }]);
    const wal = o.walBytes();
    console.log(`replace() of 2 rows of ${BODY} B by one of 500 B: WAL ${wal} B`);
    expect(o.walPages()).toBeLessThanOrEqual(10);
    expect(ids(o.outbox)).toEqual([1, ...Array.from({ length: ROWS - 2 }, (_, i) => i + 3)]);
    expect(o.outbox.stats()).toMatchObject({ pending: ROWS - 1, bytes: (ROWS - 2) * BODY + 500 });
  });
});

describe("outbox: a store made when rows were keyed by their sequence number", () => {
  /** Writes DIR/outbox.db as the outbox before row ids wrote it: 6 rows, 1..2 sent, 3..6 never sent. */
  function oldStore(dir: string): void {
    const db = new Database(join(dir, "outbox.db"), { create: true, strict: true });
    db.run("PRAGMA journal_mode = WAL");
    db.run(`CREATE TABLE outbox (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      type TEXT NOT NULL,
      created INTEGER NOT NULL,
      samples INTEGER NOT NULL DEFAULT 0,
      bytes INTEGER NOT NULL,
      body BLOB NOT NULL)`);
    db.run("CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)");
    const put = db.query("INSERT INTO outbox (type, created, samples, bytes, body) VALUES (?, ?, ?, ?, ?)");
    // Acked and deleted before: numbers 1..3 are gone.
    for (let i = 1; i <= 3; i++) put.run("metrics_batch", T0 + i, 10, 100, body(100, i));
    db.run("DELETE FROM outbox");
    const kinds = [
      "metrics_batch",
      "metrics_batch",
      "event",
      "metrics_batch",
      "metrics_batch",
      "task_result",
    ];
    kinds.forEach((t, i) => {
      put.run(t, T0 + 10 + i, t === "metrics_batch" ? 10 : 0, 100, body(100, 40 + i));
    });
    db.run(
      "INSERT INTO counters (name, value) VALUES ('sent_high', 5), ('dropped_samples', 7), ('samples_produced', 77)",
    );
    db.close();
  }

  test("opens with its backlog, its order and the numbers that may have been sent; new numbers follow the sent mark", () => {
    using dir = tempDir();
    oldStore(dir.path);
    using o = openOutbox(dir.path);
    expect(o.outbox.stats()).toMatchObject({ pending: 6, bytes: 600, samples: 40, droppedSamples: 7 });
    expect(o.outbox.counters().produced).toBe(77);
    expect(o.outbox.lastSeq()).toBe(5);
    expect(o.outbox.lowest()).toBe(4);
    // 4 and 5 went out under those numbers: they are resent under them. The unsent follow, in order.
    const sent = o.outbox.take(4, 100);
    expect(sent.map((e) => [e.seq, e.id, e.type, e.body[0]])).toEqual([
      [4, 4, "metrics_batch", 40],
      [5, 5, "metrics_batch", 41],
      [6, 6, "event", 42],
      [7, 9, "task_result", 45],
      [8, 7, "metrics_batch", 43],
      [9, 8, "metrics_batch", 44],
    ]);
    // Ids go on from where the old numbers stood; the sent mark is gone.
    expect(o.outbox.append("event", body(10), 0, T0)).toBe(10);
    expect(o.outbox.counter("sent_high")).toBe(0);
  });

  test("migrates once: reopening the migrated store changes nothing", () => {
    using dir = tempDir();
    oldStore(dir.path);
    {
      using o = openOutbox(dir.path);
      o.outbox.take(4, 2);
    }
    using o = openOutbox(dir.path);
    expect(o.outbox.readFrom(0, 100).map((e) => [e.id, e.seq])).toEqual([
      [4, 4],
      [5, 5],
      [6, null],
      [9, null],
      [7, null],
      [8, null],
    ]);
  });
});

describe("outbox: a store made when bodies were held in the numbered rows", () => {
  /** Writes DIR/outbox.db as the id-keyed outbox with a seq column wrote it: ids 3..7, 3 and 4 numbered 11 and 12. */
  function idKeyedStore(dir: string): void {
    const db = new Database(join(dir, "outbox.db"), { create: true, strict: true });
    db.run("PRAGMA journal_mode = WAL");
    db.run(`CREATE TABLE outbox (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      seq INTEGER,
      bulk INTEGER NOT NULL,
      type TEXT NOT NULL,
      created INTEGER NOT NULL,
      samples INTEGER NOT NULL DEFAULT 0,
      bytes INTEGER NOT NULL,
      body BLOB NOT NULL)`);
    db.run("CREATE UNIQUE INDEX outbox_by_seq ON outbox (seq) WHERE seq IS NOT NULL");
    db.run("CREATE INDEX outbox_unsent ON outbox (bulk, id) WHERE seq IS NULL");
    db.run("CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)");
    const put = db.query(
      "INSERT INTO outbox (id, seq, bulk, type, created, samples, bytes, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    );
    put.run(3, 11, 1, "metrics_batch", T0 + 3, 10, 100, body(100, 3));
    put.run(4, 12, 1, "metrics_batch", T0 + 4, 10, 100, body(100, 4));
    put.run(5, null, 1, "metrics_batch", T0 + 5, 10, 100, body(100, 5));
    put.run(6, null, 0, "event", T0 + 6, 0, 100, body(100, 6));
    put.run(7, null, 1, "metrics_batch", T0 + 7, 10, 100, body(100, 7));
    // Ids 8 and 9 were handed out and their rows dropped: they are never reused.
    db.run("UPDATE sqlite_sequence SET seq = 9 WHERE name = 'outbox'");
    db.run(
      "INSERT INTO counters (name, value) VALUES ('last_seq', 12), ('dropped_samples', 20), ('samples_produced', 90)",
    );
    db.close();
  }

  test("opens with its backlog, its wire numbers and its order; bodies move to their own table", () => {
    using dir = tempDir();
    idKeyedStore(dir.path);
    using o = openOutbox(dir.path);
    const cols = (o.db.query("PRAGMA table_info(outbox)").all() as { name: string }[]).map((c) => c.name);
    expect(cols).not.toContain("body");
    expect(o.outbox.stats()).toMatchObject({ pending: 5, bytes: 500, samples: 40, droppedSamples: 20 });
    expect(o.outbox.counters().produced).toBe(90);
    expect(o.outbox.lastSeq()).toBe(12);
    expect(o.outbox.lowest()).toBe(11);
    const sent = o.outbox.take(11, 100);
    expect(sent.map((e) => [e.seq, e.id, e.type, e.body[0], e.body.byteLength])).toEqual([
      [11, 3, "metrics_batch", 3, 100],
      [12, 4, "metrics_batch", 4, 100],
      [13, 6, "event", 6, 100],
      [14, 5, "metrics_batch", 5, 100],
      [15, 7, "metrics_batch", 7, 100],
    ]);
    expect(o.outbox.append("event", body(10), 0, T0)).toBe(10);
    expect(o.outbox.ackUpTo(15)).toBe(5);
    expect(o.outbox.stats()).toMatchObject({ pending: 1, bytes: 10 });
  });

  test("migrates once: reopening the migrated store changes nothing", () => {
    using dir = tempDir();
    idKeyedStore(dir.path);
    {
      using o = openOutbox(dir.path);
      o.outbox.take(13, 1);
    }
    using o = openOutbox(dir.path);
    expect(o.outbox.readFrom(0, 100).map((e) => [e.id, e.seq, e.body[0]])).toEqual([
      [3, 11, 3],
      [4, 12, 4],
      [6, 13, 6],
      [5, null, 5],
      [7, null, 7],
    ]);
    expect(o.outbox.append("event", body(10), 0, T0)).toBe(10);
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
    store.outbox.take(0, 10_000);
    store.outbox.ackUpTo(store.outbox.lastSeq());
    store.reclaim();
    store.db.run("PRAGMA wal_checkpoint(TRUNCATE)");
    const after = statSync(store.path).size;
    store.close();
    expect(after).toBeLessThan(full / 4);
  });
});

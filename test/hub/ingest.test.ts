// Specification of hub ingest: exactly-once storage by sequence number, acks after commit, and queries.
import type { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { Ingest } from "../../hub/ingest/index.ts";
import { Registry } from "../../hub/registry/index.ts";
import { afterCommit, afterTx } from "../../hub/store/after-tx.ts";
import type { HubSql } from "../../hub/store/sql/index.ts";
import { createLogger } from "../../shared/log.ts";
import { MetricsRegistry } from "../../shared/metrics.ts";
import { decodeFrame, encodeFrame, envelope, type Message } from "../../shared/protocol/index.ts";
import { encodeMetrics, type MetricsFrame } from "../../shared/protocol/metrics-codec.ts";
import { rolledUpSamples, rollUp } from "../../shared/protocol/rollup.ts";
import { settleUntil } from "../support/fake-clock.ts";
import { admitDirect } from "../support/hub-core.ts";
import { metricsBatch } from "../support/metrics-batch.ts";
import { openTestStore, sqliteTest } from "../support/hub-store.ts";
import { tempDir } from "../support/processes.ts";

const NODE = "edge-1";
const T0 = 1_718_000_000_000;
const SEC = 1000;
const quiet = createLogger("test", { write: () => {} });

interface Ack {
  node: string;
  upto: number;
  /** What the database held for the node when the ack was sent. */
  storedSeq: number;
  storedBatches: number;
}

/** A hub store with one registered node, an Ingest whose acks are recorded; closes on dispose. */
async function openHub(dir: string, apply?: (node: string, msg: Message) => void) {
  const store = await openTestStore(dir);
  const { sql } = store;
  const metrics = new MetricsRegistry();
  const registry = new Registry(sql, {
    suspectAfterMs: 15_000,
    downAfterMs: 60_000,
    restartGraceMs: 30_000,
    keyLifetimeMs: 86_400_000,
  });
  await registry.load();
  if (!registry.get(NODE)) {
    const admitted = await admitDirect(registry, {
      node_id: NODE,
      level: 1,
      labels: {},
      capabilities: [],
      resources: {},
      version: "test",
      boot_id: "b",
      last_acked: 0,
    });
    expect(admitted.ok).toBe(true);
  }
  const acks: Ack[] = [];
  const ingest = new Ingest({
    sql,
    log: quiet,
    metrics,
    // What the store holds at the ack (on SQLite read at that instant; on PostgreSQL read just after,
    // which holds at least as much).
    acks: (node, upto) => {
      if (store.db) {
        acks.push({ node, upto, ...storedNow(store.db, node) });
        return;
      }
      const ack: Ack = { node, upto, storedSeq: -1, storedBatches: -1 };
      acks.push(ack);
      // A read that the test's end (the store closed) cut short leaves -1, which no check expects.
      void stored(sql, node).then(
        (s) => Object.assign(ack, s),
        () => {},
      );
    },
    ...(apply ? { apply: (_tx: HubSql, node: string, msg: Message) => apply(node, msg) } : {}),
  });
  // As the gateway does at the node's hello: its stored sequence read.
  await ingest.open(NODE);
  return {
    sql,
    db: store.db,
    metrics,
    registry,
    ingest,
    acks,
    [Symbol.dispose]: () => void ingest.flush().finally(() => store.close()),
  };
}

function storedNow(db: Database, node: string): { storedSeq: number; storedBatches: number } {
  const row = db.query("SELECT last_seq FROM nodes WHERE id = ?").get(node) as { last_seq: number };
  const n = db.query("SELECT count(*) AS n FROM batches WHERE node = ?").get(node) as { n: number };
  return { storedSeq: row.last_seq, storedBatches: n.n };
}

async function stored(sql: HubSql, node: string): Promise<{ storedSeq: number; storedBatches: number }> {
  const row = await sql.get<{ last_seq: number }>("SELECT last_seq FROM nodes WHERE id = ?", [node]);
  const n = await sql.get<{ n: number }>("SELECT count(*) AS n FROM batches WHERE node = ?", [node]);
  return { storedSeq: row!.last_seq, storedBatches: Number(n!.n) };
}

// The store refuses every new batch row until `allowBatches` (a trigger on either store).
async function refuseBatches(sql: HubSql): Promise<void> {
  if (sql.dialect === "sqlite")
    await sql.run(
      "CREATE TRIGGER no_room BEFORE INSERT ON batches BEGIN SELECT RAISE(ABORT, 'no room'); END",
    );
  else
    await sql.exec(`CREATE FUNCTION no_room() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no room'; END $$;
      CREATE TRIGGER no_room BEFORE INSERT ON batches FOR EACH ROW EXECUTE FUNCTION no_room();`);
}

async function allowBatches(sql: HubSql): Promise<void> {
  await sql.run(sql.dialect === "sqlite" ? "DROP TRIGGER no_room" : "DROP TRIGGER no_room ON batches");
}

/** A metrics_batch of NODE as it arrives off the wire (test/support/metrics-batch.ts). */
const batch = (
  q: number,
  series?: Record<string, (number | null)[]>,
  opts?: Parameters<typeof metricsBatch>[4],
): Message => metricsBatch(NODE, T0, q, series, opts);

function event(q: number, message: string): Message {
  return decodeFrame(
    encodeFrame(envelope("event", NODE, { kind: "test", at: T0, message }, { q, ts: T0 + q })),
  );
}

const batchRows = async (sql: HubSql) =>
  (await sql.all<{ seq: number }>("SELECT seq FROM batches WHERE node = ? ORDER BY seq", [NODE])).map(
    (r) => r.seq,
  );

describe("ingest: sequence numbers", () => {
  test("accepts batches in order, stores each once and acks the committed high-water mark", async () => {
    using dir = tempDir();
    using hub = await openHub(dir.path);
    expect([1, 2, 3].map((q) => hub.ingest.receive(NODE, batch(q)))).toEqual([
      "accepted",
      "accepted",
      "accepted",
    ]);
    await hub.ingest.flush();
    expect(await batchRows(hub.sql)).toEqual([1, 2, 3]);
    expect(hub.ingest.committed(NODE)).toBe(3);
    expect(await hub.registry.fresh(NODE)).toMatchObject({
      last_seq: 3,
      batches: 3,
      samples: 9,
      duplicates: 0,
    });
    expect(hub.acks.map((a) => [a.node, a.upto])).toEqual([[NODE, 3]]);
    expect(hub.metrics.value("novacron_hub_samples_ingested_total")).toBe(9);
  });

  test("acks only after the commit: nothing before it, and the database already holds what each ack covers", async () => {
    using dir = tempDir();
    using hub = await openHub(dir.path);
    hub.ingest.receive(NODE, batch(1));
    hub.ingest.receive(NODE, batch(2));
    expect(hub.acks).toEqual([]);
    expect(hub.ingest.committed(NODE)).toBe(0);
    // The grouped commit runs on its own within an event-loop turn.
    await settleUntil(
      () => hub.acks.length > 0 && hub.acks.every((a) => a.storedSeq >= 0),
      "the grouped commit to ack",
    );
    expect(hub.acks).toEqual([{ node: NODE, upto: 2, storedSeq: 2, storedBatches: 2 }]);
  });

  test("a duplicate (seq at or below the last) is counted, not stored twice, and answered with the current ack", async () => {
    using dir = tempDir();
    using hub = await openHub(dir.path);
    hub.ingest.receive(NODE, batch(1));
    hub.ingest.receive(NODE, batch(2));
    await hub.ingest.flush();
    expect(hub.ingest.receive(NODE, batch(2))).toBe("duplicate");
    expect(hub.ingest.receive(NODE, batch(1))).toBe("duplicate");
    await hub.ingest.flush();
    expect(await batchRows(hub.sql)).toEqual([1, 2]);
    expect(await hub.registry.fresh(NODE)).toMatchObject({
      last_seq: 2,
      batches: 2,
      samples: 6,
      duplicates: 2,
    });
    expect(hub.metrics.value("novacron_hub_duplicates_total")).toBe(2);
    expect(hub.acks.map((a) => a.upto)).toEqual([2, 2, 2]);
  });

  test("a duplicate of a message accepted but not yet committed is not acked early", async () => {
    using dir = tempDir();
    using hub = await openHub(dir.path);
    hub.ingest.receive(NODE, batch(1));
    expect(hub.ingest.receive(NODE, batch(1))).toBe("duplicate");
    expect(hub.acks).toEqual([]);
    await hub.ingest.flush();
    expect(await batchRows(hub.sql)).toEqual([1]);
    expect(hub.acks.map((a) => a.upto)).toEqual([1]);
  });

  test("a gap (seq > last + 1) is counted and not stored; the resend in order is", async () => {
    using dir = tempDir();
    using hub = await openHub(dir.path);
    hub.ingest.receive(NODE, batch(1));
    expect(hub.ingest.receive(NODE, batch(3))).toBe("gap");
    await hub.ingest.flush();
    expect(await batchRows(hub.sql)).toEqual([1]);
    expect(await hub.registry.fresh(NODE)).toMatchObject({ last_seq: 1, gaps: 1 });
    expect(hub.metrics.value("novacron_hub_sequence_gaps_total")).toBe(1);
    expect(hub.ingest.receive(NODE, batch(2))).toBe("accepted");
    expect(hub.ingest.receive(NODE, batch(3))).toBe("accepted");
    await hub.ingest.flush();
    expect(await batchRows(hub.sql)).toEqual([1, 2, 3]);
  });

  test("a gap is accepted when base === seq: the sender dropped everything between", async () => {
    using dir = tempDir();
    using hub = await openHub(dir.path);
    hub.ingest.receive(NODE, batch(1));
    expect(hub.ingest.receive(NODE, batch(5, undefined, { base: 4 }))).toBe("gap");
    expect(hub.ingest.receive(NODE, batch(5, undefined, { base: 5 }))).toBe("accepted");
    expect(hub.ingest.receive(NODE, batch(6, undefined, { base: 5 }))).toBe("accepted");
    await hub.ingest.flush();
    expect(await batchRows(hub.sql)).toEqual([1, 5, 6]);
    expect(await hub.registry.fresh(NODE)).toMatchObject({ last_seq: 6, batches: 3 });
    expect(hub.acks.at(-1)!.upto).toBe(6);
  });

  test("a batch whose data cannot decode is refused, counted, and acked past so it never blocks", async () => {
    using dir = tempDir();
    using hub = await openHub(dir.path);
    hub.ingest.receive(NODE, batch(1));
    const broken = batch(2, undefined, { data: Uint8Array.from([1, 3, 1, 0xff]) });
    expect(hub.ingest.receive(NODE, broken)).toBe("refused");
    expect(hub.metrics.value("novacron_hub_messages_refused_total", { reason: "bad_body" })).toBe(1);
    expect(hub.metrics.render()).toContain('novacron_hub_messages_refused_total{reason="bad_body"} 1');
    await hub.ingest.flush();
    expect(hub.acks.at(-1)!.upto).toBe(2);
    expect(hub.ingest.receive(NODE, broken)).toBe("duplicate");
    expect(hub.ingest.receive(NODE, batch(3))).toBe("accepted");
    await hub.ingest.flush();
    expect(await batchRows(hub.sql)).toEqual([1, 3]);
    expect(await hub.registry.fresh(NODE)).toMatchObject({ last_seq: 3, batches: 2, samples: 6 });
  });

  // Regression: hub/ingest/ingest.ts flush() adds the sender's declared `b.samples` to the node's sample count
  // (and to novacron_hub_samples_ingested_total) without checking it against the decoded frame, so a
  // buggy or hostile agent inflates the hub's counts. Fix: count countSamples(p.frame) (or refuse a batch
  // whose declared samples differ from its data).
  test("a batch whose declared sample count disagrees with its data is not counted at the declared number", async () => {
    using dir = tempDir();
    using hub = await openHub(dir.path);
    const verdict = hub.ingest.receive(NODE, batch(1, { "cpu.util": [1, 2, 3] }, { samples: 999 }));
    await hub.ingest.flush();
    const samples = (await hub.registry.fresh(NODE))!.samples;
    expect(verdict === "refused" ? samples === 0 : samples === 3).toBe(true);
  });

  test("other reliable messages are stored once, as received", async () => {
    using dir = tempDir();
    using hub = await openHub(dir.path);
    hub.ingest.receive(NODE, event(1, "disk full"));
    hub.ingest.receive(NODE, batch(2));
    hub.ingest.receive(NODE, event(1, "disk full"));
    await hub.ingest.flush();
    const rows = await hub.sql.all("SELECT seq, type, at, body FROM messages WHERE node = ?", [NODE]);
    expect(rows).toEqual([
      {
        seq: 1,
        type: "event",
        at: T0 + 1,
        body: JSON.stringify({ kind: "test", at: T0, message: "disk full" }),
      },
    ]);
    expect(hub.acks.at(-1)!.upto).toBe(2);
  });

  test("sequence state survives reopening the database", async () => {
    using dir = tempDir();
    {
      using hub = await openHub(dir.path);
      for (const q of [1, 2, 3]) hub.ingest.receive(NODE, batch(q));
      await hub.ingest.flush();
    }
    using hub = await openHub(dir.path);
    expect(hub.ingest.committed(NODE)).toBe(3);
    expect(hub.ingest.receive(NODE, batch(3))).toBe("duplicate");
    expect(hub.ingest.receive(NODE, batch(5))).toBe("gap");
    expect(hub.ingest.receive(NODE, batch(4))).toBe("accepted");
    await hub.ingest.flush();
    expect(await batchRows(hub.sql)).toEqual([1, 2, 3, 4]);
    expect(await hub.registry.fresh(NODE)).toMatchObject({
      last_seq: 4,
      batches: 4,
      samples: 12,
      duplicates: 1,
    });
    expect(await hub.ingest.series(NODE)).toEqual(["cpu.util"]);
  });
});

describe("ingest: a group's transaction", () => {
  test("a node whose stored sequence moved on elsewhere has its part left out, unacked; its resend is taken from what is stored", async () => {
    using dir = tempDir();
    using hub = await openHub(dir.path);
    hub.ingest.receive(NODE, batch(1));
    await hub.ingest.flush();
    // Another replica holding the node's session stored 2 and 3 meanwhile.
    await hub.sql.run("UPDATE nodes SET last_seq = 3 WHERE id = ?", [NODE]);
    expect(hub.ingest.receive(NODE, batch(2))).toBe("accepted");
    await hub.ingest.flush();
    expect(await batchRows(hub.sql)).toEqual([1]);
    expect(hub.acks.map((a) => a.upto)).toEqual([1]);
    expect(hub.ingest.committed(NODE)).toBe(3);
    // The agent resends from its last ack (1): held ones answer duplicate with the stored mark.
    expect(hub.ingest.receive(NODE, batch(2))).toBe("duplicate");
    expect(hub.ingest.receive(NODE, batch(3))).toBe("duplicate");
    expect(hub.ingest.receive(NODE, batch(4))).toBe("accepted");
    await hub.ingest.flush();
    expect(await batchRows(hub.sql)).toEqual([1, 4]);
    expect(hub.acks.map((a) => a.upto)).toEqual([1, 3, 3, 4]);
    expect(await hub.registry.fresh(NODE)).toMatchObject({
      last_seq: 4,
      batches: 2,
      samples: 6,
      duplicates: 2,
    });
  });

  test("a commit that fails stores and acks nothing, keeps its counts for the next group, and the resends are taken", async () => {
    using dir = tempDir();
    using hub = await openHub(dir.path);
    hub.ingest.receive(NODE, batch(1));
    await hub.ingest.flush();
    await refuseBatches(hub.sql);
    expect(hub.ingest.receive(NODE, batch(1))).toBe("duplicate");
    expect(hub.ingest.receive(NODE, batch(2))).toBe("accepted");
    expect(hub.ingest.receive(NODE, batch(3))).toBe("accepted");
    await hub.ingest.flush();
    expect(await batchRows(hub.sql)).toEqual([1]);
    expect(hub.ingest.committed(NODE)).toBe(1);
    expect(hub.acks.map((a) => a.upto)).toEqual([1, 1]);
    expect(await hub.registry.fresh(NODE)).toMatchObject({ last_seq: 1, duplicates: 0 });
    await allowBatches(hub.sql);
    // The resends are taken again, in order, from the last stored one.
    expect(hub.ingest.receive(NODE, batch(2))).toBe("accepted");
    expect(hub.ingest.receive(NODE, batch(3))).toBe("accepted");
    await hub.ingest.flush();
    expect(await batchRows(hub.sql)).toEqual([1, 2, 3]);
    expect(hub.acks.at(-1)!.upto).toBe(3);
    expect(await hub.registry.fresh(NODE)).toMatchObject({
      last_seq: 3,
      batches: 3,
      samples: 9,
      duplicates: 1,
    });
  });
});

describe("ingest: queries", () => {
  test("points at their own times: a batch is found by any part of its span, its points come back at their times, sorted among grid ticks", async () => {
    using dir = tempDir();
    using hub = await openHub(dir.path);
    hub.ingest.receive(NODE, batch(1, { "app.x": [1, 2, 3] }, { start: T0 }));
    // One tick of grid, and points of the same series reaching 40 s past it.
    const times = [T0 + 250, T0 + 1250, T0 + 40_000, T0 + 40_100];
    const enc = encodeMetrics({
      start: T0 + 250,
      interval: SEC,
      ticks: 1,
      series: [{ name: "app.x", values: [10, 11, 12, 13], times }],
    });
    const body = {
      start: T0 + 250,
      interval: SEC,
      ticks: 1,
      samples: 4,
      data: new Uint8Array(enc.data),
      z: enc.z,
    };
    const timed = decodeFrame(encodeFrame(envelope("metrics_batch", NODE, body, { q: 2, ts: T0 })));
    expect(hub.ingest.receive(NODE, timed)).toBe("accepted");
    await hub.ingest.flush();
    expect((await hub.ingest.query(NODE, "app.x", T0, T0 + 60_000)).points).toEqual([
      [T0, 1],
      [T0 + 250, 10],
      [T0 + SEC, 2],
      [T0 + 1250, 11],
      [T0 + 2 * SEC, 3],
      [T0 + 40_000, 12],
      [T0 + 40_100, 13],
    ]);
    expect((await hub.ingest.query(NODE, "app.x", T0 + 30_000, T0 + 40_050)).points).toEqual([
      [T0 + 40_000, 12],
    ]);
    expect((await stored(hub.sql, NODE)).storedBatches).toBe(2);
    expect(
      (await hub.sql.get<{ samples: number }>("SELECT samples FROM nodes WHERE id = ?", [NODE]))!.samples,
    ).toBe(7);
    expect(hub.ingest.latest().get(NODE)?.get("app.x")).toEqual([T0 + 40_100, 13]);
  });

  test("query() returns the points of one series within [from, to], oldest first, skipping holes", async () => {
    using dir = tempDir();
    using hub = await openHub(dir.path);
    const ten = (k: number) => Array.from({ length: 10 }, (_, i) => k * 10 + i + 0.5);
    const first: (number | null)[] = ten(0);
    first[4] = null;
    hub.ingest.receive(NODE, batch(1, { "cpu.util": first, "mem.used_pct": ten(5) }, { start: T0 }));
    hub.ingest.receive(NODE, batch(2, { "cpu.util": ten(1) }, { start: T0 + 10 * SEC }));
    await hub.ingest.flush();

    const points = (await hub.ingest.query(NODE, "cpu.util", T0 + 2 * SEC, T0 + 12 * SEC)).points;
    const expected: [number, number][] = [2, 3, 5, 6, 7, 8, 9, 10, 11, 12].map((i) => [
      T0 + i * SEC,
      i + 0.5,
    ]);
    expect(points).toEqual(expected);
    expect((await hub.ingest.query(NODE, "mem.used_pct", T0, T0)).points).toEqual([[T0, 50.5]]);
    expect((await hub.ingest.query(NODE, "cpu.util", T0 + 20 * SEC, T0 + 30 * SEC)).points).toEqual([]);
    expect((await hub.ingest.query(NODE, "no.such", T0, T0 + 30 * SEC)).points).toEqual([]);
    expect((await hub.ingest.query("ghost", "cpu.util", T0, T0 + 30 * SEC)).points).toEqual([]);
    expect(await hub.ingest.series(NODE)).toEqual(["cpu.util", "mem.used_pct"]);
  });

  test("latest() holds the newest value of every series", async () => {
    using dir = tempDir();
    using hub = await openHub(dir.path);
    hub.ingest.receive(
      NODE,
      batch(1, { "cpu.util": [1, 2, null], "mem.used_pct": [7, 8, 9] }, { start: T0 }),
    );
    await hub.ingest.flush();
    const latest = hub.ingest.latest().get(NODE)!;
    expect(latest.get("cpu.util")).toEqual([T0 + SEC, 2]);
    expect(latest.get("mem.used_pct")).toEqual([T0 + 2 * SEC, 9]);
  });
});

/** A rollup batch built the way an agent folds fine batches (`fold`: the fold's id on the agent). */
function rollupBatch(q: number, frames: MetricsFrame[], fold?: number): Message {
  const frame = rollUp(frames);
  const enc = encodeMetrics(frame);
  const body = {
    start: frame.start,
    interval: frame.interval,
    ticks: frame.ticks,
    samples: rolledUpSamples(frame),
    data: new Uint8Array(enc.data),
    z: enc.z,
    rollup: 1 as const,
    ...(fold !== undefined ? { fold } : {}),
  };
  return decodeFrame(encodeFrame(envelope("metrics_batch", NODE, body, { q, ts: frame.start })));
}

describe("ingest: rollups", () => {
  test("a rollup counts the fine samples it stands for; queries return its minutes, split ones merged", async () => {
    using dir = tempDir();
    using hub = await openHub(dir.path);
    const m0 = Math.ceil(T0 / 60_000) * 60_000;
    const fine = (start: number, values: number[]): MetricsFrame => ({
      start,
      interval: SEC,
      ticks: values.length,
      series: [{ name: "cpu.util", values }],
    });
    // Minute m0 is folded in two parts (a fold boundary inside it), minute m0+1 in one.
    expect(hub.ingest.receive(NODE, rollupBatch(1, [fine(m0, [1, 2, 3])]))).toBe("accepted");
    expect(
      hub.ingest.receive(NODE, rollupBatch(2, [fine(m0 + 30 * SEC, [10]), fine(m0 + 60 * SEC, [4, 6])])),
    ).toBe("accepted");
    expect(hub.ingest.receive(NODE, batch(3, { "cpu.util": [7] }, { start: m0 + 120 * SEC }))).toBe(
      "accepted",
    );
    await hub.ingest.flush();

    const row = (await hub.sql.get("SELECT samples, rolled_up FROM nodes WHERE id = ?", [NODE])) as {
      samples: number;
      rolled_up: number;
    };
    expect(row).toEqual({ samples: 7, rolled_up: 6 });
    expect(await hub.ingest.series(NODE)).toEqual(["cpu.util"]);
    const q = await hub.ingest.query(NODE, "cpu.util", m0, m0 + 10 * 60_000);
    expect(q.rollups).toEqual([
      [m0, 1, 10, 4, 4],
      [m0 + 60_000, 4, 6, 5, 2],
    ]);
    expect(q.points).toEqual([
      [m0, 4],
      [m0 + 60_000, 5],
      [m0 + 120_000, 7],
    ]);
    // Old rollups never stand in for the latest value.
    expect(hub.ingest.latest().get(NODE)!.get("cpu.util")).toEqual([m0 + 120_000, 7]);
    expect(hub.ingest.latest().get(NODE)!.has("cpu.util:min")).toBe(false);
  });
});

describe("ingest: rollups sent again", () => {
  test("the same fold sent again is counted as duplicates; minutes split by a fold boundary are kept, even when alike", async () => {
    using dir = tempDir();
    using hub = await openHub(dir.path);
    const m0 = Math.ceil(T0 / 60_000) * 60_000;
    const fine = (start: number, values: number[]): MetricsFrame => ({
      start,
      interval: SEC,
      ticks: values.length,
      series: [{ name: "cpu.util", values }],
    });
    hub.ingest.receive(NODE, rollupBatch(1, [fine(m0, [1, 2, 3]), fine(m0 + 60 * SEC, [5])], 11));
    hub.ingest.receive(NODE, rollupBatch(2, [fine(m0 + 30 * SEC, [9, 9])], 12));
    // A copy of the store sends its fold 11 again.
    hub.ingest.receive(NODE, rollupBatch(3, [fine(m0, [1, 2, 3]), fine(m0 + 60 * SEC, [5])], 11));
    // Minute m0+2 split in two halves that fold to the very same batch (a constant series).
    hub.ingest.receive(NODE, rollupBatch(4, [fine(m0 + 120 * SEC, [7])], 13));
    hub.ingest.receive(NODE, rollupBatch(5, [fine(m0 + 150 * SEC, [7])], 14));
    await hub.ingest.flush();
    const row = await hub.sql.get("SELECT samples, duplicate_samples FROM nodes WHERE id = ?", [NODE]);
    expect(row).toEqual({ samples: 8, duplicate_samples: 4 });
    expect((await hub.ingest.query(NODE, "cpu.util", m0, m0 + 180 * SEC)).rollups.map((m) => m[4])).toEqual([
      5, 1, 2,
    ]);
  });
});

describe("ingest: each sample once by node, series and time", () => {
  const counts = async (sql: HubSql) =>
    (await sql.get("SELECT samples, duplicate_samples, last_seq FROM nodes WHERE id = ?", [NODE])) as {
      samples: number;
      duplicate_samples: number;
      last_seq: number;
    };

  test("a batch sent again under a new number (a restored store) stores only the samples the hub lacks", async () => {
    using dir = tempDir();
    using hub = await openHub(dir.path);
    hub.ingest.receive(NODE, batch(1, { "cpu.util": [1, 2, 3], "mem.used_pct": [5, 6, 7] }, { start: T0 }));
    await hub.ingest.flush();
    // The copy packed the same ticks with one more, and a series the original did not have at that time.
    const again = batch(
      2,
      { "cpu.util": [1, 2, 3, 4], "mem.used_pct": [5, 6, 7, null], "temp.cpu_c": [40, 41, 42, 43] },
      { start: T0 },
    );
    expect(hub.ingest.receive(NODE, again)).toBe("accepted");
    await hub.ingest.flush();
    expect(await counts(hub.sql)).toEqual({ samples: 6 + 5, duplicate_samples: 6, last_seq: 2 });
    expect((await hub.ingest.query(NODE, "cpu.util", T0, T0 + 10 * SEC)).points).toEqual([
      [T0, 1],
      [T0 + SEC, 2],
      [T0 + 2 * SEC, 3],
      [T0 + 3 * SEC, 4],
    ]);
    expect((await hub.ingest.query(NODE, "temp.cpu_c", T0, T0 + 10 * SEC)).points).toHaveLength(4);
    expect(hub.metrics.render()).toMatch(/novacron_hub_duplicate_samples_total 6\b/);
  });

  test("the original and its copy in one group: the copy's held samples are found among the group's own rows", async () => {
    using dir = tempDir();
    using hub = await openHub(dir.path);
    hub.ingest.receive(NODE, batch(1, { "cpu.util": [1, 2, 3] }, { start: T0 }));
    hub.ingest.receive(NODE, batch(2, { "cpu.util": [1, 2, 3, 4] }, { start: T0 }));
    await hub.ingest.flush();
    expect(await counts(hub.sql)).toEqual({ samples: 3 + 1, duplicate_samples: 3, last_seq: 2 });
    expect((await hub.ingest.query(NODE, "cpu.util", T0, T0 + 10 * SEC)).points).toHaveLength(4);
  });

  test("points at their own times sent again are stored once: held times leave, new ones stay", async () => {
    using dir = tempDir();
    using hub = await openHub(dir.path);
    const timedBatch = (q: number, times: number[]) => {
      const enc = encodeMetrics({
        start: times[0]!,
        interval: SEC,
        ticks: 1,
        series: [{ name: "app.x", values: times.map((t) => t - T0), times }],
      });
      const body = {
        start: times[0]!,
        interval: SEC,
        ticks: 1,
        samples: times.length,
        data: new Uint8Array(enc.data),
        z: enc.z,
      };
      return decodeFrame(encodeFrame(envelope("metrics_batch", NODE, body, { q, ts: T0 })));
    };
    hub.ingest.receive(NODE, batch(1, { "cpu.util": [1, 2] }, { start: T0 }));
    hub.ingest.receive(NODE, timedBatch(2, [T0 + 100, T0 + 200, T0 + 300]));
    await hub.ingest.flush();
    // A restored store sends the same points again, with one the hub has not seen, under a new number.
    expect(hub.ingest.receive(NODE, timedBatch(3, [T0 + 100, T0 + 200, T0 + 300, T0 + 400]))).toBe(
      "accepted",
    );
    await hub.ingest.flush();
    expect(await counts(hub.sql)).toEqual({ samples: 2 + 3 + 1, duplicate_samples: 3, last_seq: 3 });
    expect((await hub.ingest.query(NODE, "app.x", T0, T0 + 10 * SEC)).points).toEqual([
      [T0 + 100, 100],
      [T0 + 200, 200],
      [T0 + 300, 300],
      [T0 + 400, 400],
    ]);
  });

  test("a batch the hub holds entirely stores nothing, and its number is acked all the same", async () => {
    using dir = tempDir();
    using hub = await openHub(dir.path);
    hub.ingest.receive(NODE, batch(1, { "cpu.util": [1, 2, 3] }, { start: T0 }));
    hub.ingest.receive(NODE, batch(2, { "cpu.util": [1, 2, 3] }, { start: T0 }));
    await hub.ingest.flush();
    expect(await counts(hub.sql)).toEqual({ samples: 3, duplicate_samples: 3, last_seq: 2 });
    expect((await stored(hub.sql, NODE)).storedBatches).toBe(1);
    expect(hub.acks.at(-1)).toMatchObject({ upto: 2 });
  });

  test("samples stored before the hub restarted are recognised too", async () => {
    using dir = tempDir();
    {
      using hub = await openHub(dir.path);
      hub.ingest.receive(NODE, batch(1, { "cpu.util": [1, 2, 3] }, { start: T0 }));
      await hub.ingest.flush();
      // A database from before the column: the stored batches themselves say how far samples go.
      await hub.sql.run("UPDATE nodes SET sample_end = 0");
    }
    using hub = await openHub(dir.path);
    hub.ingest.receive(NODE, batch(2, { "cpu.util": [2, 3, 4] }, { start: T0 + SEC }));
    await hub.ingest.flush();
    expect(await counts(hub.sql)).toMatchObject({ samples: 4, duplicate_samples: 2 });
    expect((await hub.ingest.query(NODE, "cpu.util", T0, T0 + 10 * SEC)).points.map((p) => p[0])).toEqual([
      T0,
      T0 + SEC,
      T0 + 2 * SEC,
      T0 + 3 * SEC,
    ]);
  });

  test("later batches in time order take the fast path and are stored whole", async () => {
    using dir = tempDir();
    using hub = await openHub(dir.path);
    for (let q = 1; q <= 50; q++) hub.ingest.receive(NODE, batch(q, { "cpu.util": [q, q, q] }));
    await hub.ingest.flush();
    expect(await counts(hub.sql)).toEqual({ samples: 150, duplicate_samples: 0, last_seq: 50 });
  });
});

describe("ingest: work started by stored messages", () => {
  test("work bound to the commit runs only for what was stored: not for a message its savepoint rolled back, not for a group that failed", async () => {
    using dir = tempDir();
    const ran: string[] = [];
    using hub = await openHub(dir.path, (_node, msg) => {
      if (msg.t !== "event") return;
      afterCommit(() => ran.push(`sent ${msg.b.message}`));
      afterTx(() => ran.push(`kick ${msg.b.message}`));
      if (msg.b.message === "bad") throw new Error("cannot apply");
    });
    for (const [q, m] of [
      [1, "one"],
      [2, "bad"],
      [3, "three"],
    ] as const)
      hub.ingest.receive(NODE, event(q, m));
    await hub.ingest.flush();
    expect(ran).toEqual(["sent one", "kick one", "kick bad", "sent three", "kick three"]);
    // A group that cannot be stored at all: nothing of it is sent, its kicks still run.
    ran.length = 0;
    await refuseBatches(hub.sql);
    hub.ingest.receive(NODE, event(4, "four"));
    hub.ingest.receive(NODE, batch(5));
    await hub.ingest.flush();
    expect(hub.ingest.committed(NODE)).toBe(3);
    expect(ran).toEqual(["kick four"]);
  });

  // SQLite's own connection: whether it is inside a transaction, read synchronously.
  sqliteTest(
    "runs once the group's transaction has ended, in order, also for a message refused by its savepoint",
    async () => {
      using dir = tempDir();
      const ran: { message: string; inTransaction: boolean; stored: number }[] = [];
      // Called only from flush, after `hub` is assigned.
      const storedEvents = () =>
        (hub.db!.query("SELECT count(*) AS n FROM messages").get() as { n: number }).n;
      using hub = await openHub(dir.path, (_node, msg) => {
        if (msg.t !== "event") return;
        afterTx(() =>
          ran.push({ message: msg.b.message, inTransaction: hub.db!.inTransaction, stored: storedEvents() }),
        );
        // A message whose effects cannot be applied is refused alone (its savepoint rolls back).
        if (msg.b.message === "bad") throw new Error("cannot apply");
      });
      const ingest = hub.ingest;
      for (const [q, m] of [
        [1, "one"],
        [2, "bad"],
        [3, "three"],
      ] as const)
        ingest.receive(NODE, event(q, m));
      await ingest.flush();
      // After the commit, not inside it: the two good messages were stored when each ran.
      expect(ran).toEqual([
        { message: "one", inTransaction: false, stored: 2 },
        { message: "bad", inTransaction: false, stored: 2 },
        { message: "three", inTransaction: false, stored: 2 },
      ]);
      // Outside an ingest transaction it is soon, not at once, and on a turn of its own: never inside
      // the body of an async transaction on the same connection, which spans microtasks only.
      const outside: { inTransaction: boolean }[] = [];
      afterTx(() => outside.push({ inTransaction: hub.db!.inTransaction }));
      expect(outside).toEqual([]);
      await hub.sql.tx(async (tx) => {
        for (let i = 0; i < 20; i++) await tx.get("SELECT 1");
      });
      expect(outside).toEqual([]);
      await new Promise((r) => setImmediate(r));
      expect(outside).toEqual([{ inTransaction: false }]);
    },
  );
});

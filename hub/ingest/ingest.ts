// Idempotent ingest: reliable messages are deduplicated by sequence, stored in grouped commits, then acked.
import { NovaError } from "../../shared/errors.ts";
import type { Logger } from "../../shared/log.ts";
import type { MetricsRegistry } from "../../shared/metrics.ts";
import type { Message } from "../../shared/protocol/index.ts";
import {
  countSamples,
  decodeMetrics,
  encodeMetrics,
  frameSpan,
  type MetricsFrame,
  sampleTime,
} from "../../shared/protocol/metrics-codec.ts";
import {
  mergeRollupPoints,
  type RollupPoint,
  rolledUpSamples,
  rollupBase,
  rollupPoints,
} from "../../shared/protocol/rollup.ts";
import { forUpdate, type HubSql, isRetryable, type SqlValue, textOrder } from "../store/sql/index.ts";
import { StoredSamples } from "./sample-dedupe.ts";

export type Verdict = "accepted" | "duplicate" | "gap" | "refused";

interface NodeSeq {
  /** Highest sequence accepted (possibly not yet committed). */
  accepted: number;
  /** Highest sequence durably committed. */
  committed: number;
}

interface Pending {
  node: string;
  seq: number;
  /** Absent for a refused message: only its sequence number is recorded, so it is never resent. */
  msg?: Message;
  frame?: MetricsFrame;
}

// CBOR may carry 64-bit integers, which decode as BigInt and which JSON.stringify refuses.
const jsonSafe = (_key: string, value: unknown) => (typeof value === "bigint" ? value.toString() : value);

export type AckSender = (node: string, upto: number) => void;

/** One `batches` row, in the insert's column order. */
type BatchRow = SqlValue[];

const BATCH_COLUMNS = `node, seq, start, "end", "interval", ticks, samples, z, data, rollup, fold`;
/** Rows per insert: 11 parameters each, far below either store's limit on one statement's parameters. */
const ROWS_PER_INSERT = 200;

/** Stores `rows` (and empties it) in as few statements as the parameter limit allows. */
async function insertBatches(tx: HubSql, rows: BatchRow[]): Promise<void> {
  // SQLite has no round trips to save, and one prepared single-row statement is the faster there.
  const per = tx.dialect === "postgres" ? ROWS_PER_INSERT : 1;
  for (let i = 0; i < rows.length; i += per) {
    const part = rows.slice(i, i + per);
    await tx.run(
      `INSERT INTO batches (${BATCH_COLUMNS}) VALUES ${part.map(() => "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)").join(", ")}
       ON CONFLICT DO NOTHING`,
      part.flat(),
    );
  }
  rows.length = 0;
}

/**
 * Moves each node's stored sequence and counters on, and the sequence of the store epoch it speaks
 * from. On PostgreSQL in one statement per table for the group (VALUES joined to the rows the group
 * locked); on SQLite a prepared statement per node.
 */
async function advanceNodes(
  tx: HubSql,
  perNode: ReadonlyMap<string, NodeAgg>,
  epochOf: ((node: string) => string | undefined) | undefined,
): Promise<void> {
  const nodes = [...perNode.keys()].sort();
  const epochs = nodes.flatMap((node) => {
    const epoch = epochOf?.(node);
    return epoch === undefined ? [] : [[node, epoch, perNode.get(node)!.seq] as [string, string, number]];
  });
  if (tx.dialect === "postgres") {
    for (let i = 0; i < nodes.length; i += ROWS_PER_INSERT) {
      const part = nodes.slice(i, i + ROWS_PER_INSERT);
      await tx.run(
        `UPDATE nodes AS n SET last_seq = GREATEST(n.last_seq, v.seq), samples = n.samples + v.samples,
           rolled_up = n.rolled_up + v.rolled_up, batches = n.batches + v.batches,
           duplicate_samples = n.duplicate_samples + v.dups, sample_end = GREATEST(n.sample_end, v.sample_end)
         FROM (VALUES ${part.map(() => "(?::text, ?::bigint, ?::bigint, ?::bigint, ?::bigint, ?::bigint, ?::bigint)").join(", ")})
           AS v(id, seq, samples, rolled_up, batches, dups, sample_end)
         WHERE n.id = v.id`,
        part.flatMap((node) => {
          const a = perNode.get(node)!;
          return [node, a.seq, a.samples, a.rolledUp, a.batches, a.duplicates, a.end];
        }),
      );
    }
    for (let i = 0; i < epochs.length; i += ROWS_PER_INSERT) {
      const part = epochs.slice(i, i + ROWS_PER_INSERT);
      await tx.run(
        `UPDATE node_epochs AS e SET seq_high = GREATEST(e.seq_high, v.seq)
         FROM (VALUES ${part.map(() => "(?::text, ?::text, ?::bigint)").join(", ")}) AS v(node, epoch, seq)
         WHERE e.node = v.node AND e.epoch = v.epoch`,
        part.flat(),
      );
    }
    return;
  }
  for (const node of nodes) {
    const a = perNode.get(node)!;
    await tx.run(
      `UPDATE nodes SET last_seq = max(last_seq, ?), samples = samples + ?, rolled_up = rolled_up + ?,
         batches = batches + ?, duplicate_samples = duplicate_samples + ?, sample_end = max(sample_end, ?)
       WHERE id = ?`,
      [a.seq, a.samples, a.rolledUp, a.batches, a.duplicates, a.end, node],
    );
  }
  for (const [node, epoch, seq] of epochs)
    await tx.run("UPDATE node_epochs SET seq_high = max(seq_high, ?) WHERE node = ? AND epoch = ?", [
      seq,
      node,
      epoch,
    ]);
}

/** What one group stores for one node. */
interface NodeAgg {
  seq: number;
  samples: number;
  rolledUp: number;
  batches: number;
  duplicates: number;
  end: number;
}

const emptyAgg = (): NodeAgg => ({ seq: 0, samples: 0, rolledUp: 0, batches: 0, duplicates: 0, end: 0 });

/** Receives reliable messages for every node and stores each exactly once. */
export class Ingest {
  /** For reading a node's sequence synchronously on first sight (SQLite); without it, `open` first. */
  readonly #sql: HubSql;
  readonly #log: Logger;
  readonly #seqs = new Map<string, NodeSeq>();
  readonly #known = new Map<string, Set<string>>();
  readonly #latest = new Map<string, Map<string, [number, number]>>();
  /** Each sample once by series and time. */
  readonly #samples: StoredSamples;
  #queue: Pending[] = [];
  /** Duplicates and gaps counted per node since the last group; written with the next one. */
  #counts = new Map<string, { duplicates: number; gaps: number }>();
  #scheduled = false;
  /** The groups being committed, one transaction at a time. */
  #running: Promise<void> | undefined;
  readonly #acks: AckSender;
  readonly #epochOf: ((node: string) => string | undefined) | undefined;
  readonly #countSamples: (by?: number) => void;
  readonly #countRefused: (by?: number, labels?: Record<string, string>) => void;
  readonly #countDuplicates: (by?: number) => void;
  readonly #countDuplicateSamples: (by?: number) => void;
  readonly #countGaps: (by?: number) => void;
  readonly #countCommits: (by?: number) => void;

  readonly #apply: ((tx: HubSql, node: string, msg: Message) => void | Promise<void>) | undefined;
  readonly #maxSeries: number;
  readonly #onCommit: ((ok: boolean, err?: unknown) => void) | undefined;
  /** Per node: series it sent past the bound, not re-exported. */
  readonly #overflow = new Map<string, Set<string>>();

  constructor(opts: {
    /**
     * The hub's store: groups are stored and queries read through it. A node's stored sequence is
     * read by `open` (at its hello), which must be awaited before its messages arrive.
     */
    sql: HubSql;
    log: Logger;
    metrics: MetricsRegistry;
    acks: AckSender;
    /**
     * Applies a non-metrics message's effects inside the transaction that stores it (exactly once),
     * through `tx` (on SQLite, synchronous writes on the hub's Database join that transaction too).
     */
    apply?: (tx: HubSql, node: string, msg: Message) => void | Promise<void>;
    /** The epoch of the node's store now speaking (its stored numbers are recorded against it). */
    epochOf?: (node: string) => string | undefined;
    /** Series per node kept for /metrics; a node's series past it are stored but not re-exported (default 1000). */
    maxSeriesPerNode?: number;
    /** Told the outcome of every group's commit (the store's readiness). */
    onCommit?: (ok: boolean, err?: unknown) => void;
  }) {
    this.#maxSeries = opts.maxSeriesPerNode ?? 1000;
    this.#epochOf = opts.epochOf;
    this.#apply = opts.apply;
    this.#log = opts.log;
    this.#acks = opts.acks;
    this.#sql = opts.sql;
    this.#onCommit = opts.onCommit;
    this.#samples = new StoredSamples();
    const m = opts.metrics;
    this.#countSamples = m.counter("novacron_hub_samples_ingested_total", "Samples stored durably");
    this.#countRefused = m.counter(
      "novacron_hub_messages_refused_total",
      "Reliable messages refused, by reason",
    );
    this.#countDuplicates = m.counter(
      "novacron_hub_duplicates_total",
      "Reliable messages received again and dropped",
    );
    this.#countDuplicateSamples = m.counter(
      "novacron_hub_duplicate_samples_total",
      "Samples received again (same node, series and time) and not stored twice",
    );
    this.#countGaps = m.counter(
      "novacron_hub_sequence_gaps_total",
      "Messages dropped because an earlier one was missing",
    );
    this.#countCommits = m.counter(
      "novacron_hub_ingest_commits_total",
      "Grouped ingest transactions committed",
    );
    m.gauge("novacron_hub_node_series", "Series of each node kept for re-export in /metrics", () =>
      [...this.#latest].map(([node, series]) => [{ node }, series.size] as [Record<string, string>, number]),
    );
    m.gauge(
      "novacron_hub_node_series_over_limit",
      "Distinct series of each node past the per-node bound (stored, not re-exported)",
      () =>
        [...this.#overflow].map(
          ([node, names]) => [{ node }, names.size] as [Record<string, string>, number],
        ),
    );
  }

  #state(node: string): NodeSeq {
    const s = this.#seqs.get(node);
    if (!s) throw new Error(`node ${node}'s stored sequence was not read: await open() first`);
    return s;
  }

  /**
   * Reads `node`'s stored sequence again (a session for it begins here): what another replica stored
   * for it since is then known, and nothing this hub accepted for it and has not stored is kept.
   */
  async open(node: string): Promise<void> {
    const row = await this.#sql.get<{ last_seq: number }>("SELECT last_seq FROM nodes WHERE id = ?", [node]);
    const last = row?.last_seq ?? 0;
    const s = this.#seqs.get(node);
    // A group in flight for the node commits or fails on its own; its outcome then decides.
    if (s && s.accepted !== s.committed) return;
    this.#seqs.set(node, { accepted: last, committed: last });
    this.#samples.forget(node);
  }

  /** Highest sequence number stored for a node. */
  committed(node: string): number {
    return this.#state(node).committed;
  }

  /**
   * Takes one reliable message. It is accepted when its sequence follows the last accepted one,
   * or when it is the sender's lowest held message (the sender dropped what lay between, and
   * counted it). Anything at or below the last is a duplicate; anything else waits for a resend.
   */
  receive(node: string, msg: Message): Verdict {
    const seq = msg.q!;
    const order = this.#order(node, seq, msg.base);
    if (order !== "accepted") return order;
    const s = this.#state(node);
    let frame: MetricsFrame | undefined;
    if (msg.t === "metrics_batch") {
      try {
        frame = decodeMetrics(msg.b);
      } catch (err) {
        return this.refuse(
          node,
          seq,
          msg.base,
          err instanceof NovaError ? err.code : "bad_body",
          (err as Error).message,
        );
      }
    }
    s.accepted = seq;
    this.#queue.push(frame ? { node, seq, msg, frame } : { node, seq, msg });
    if (this.#queue.length >= 2000) this.#flushNow();
    else this.#schedule();
    return "accepted";
  }

  /**
   * Records a reliable message that can never be stored (its body is invalid) as handled, so the
   * sender's ack moves past it and it cannot block the outbox behind it.
   */
  refuse(node: string, seq: number, base: number | undefined, reason: string, message: string): Verdict {
    const order = this.#order(node, seq, base);
    if (order !== "accepted") return order;
    this.#countRefused(1, { reason });
    this.#log.warn("reliable message refused", { node, seq, reason, error: message });
    this.#state(node).accepted = seq;
    this.#queue.push({ node, seq });
    this.#schedule();
    return "refused";
  }

  // Where a sequence number stands: next in line (or the sender's base), already held, or after a gap.
  #order(node: string, seq: number, base: number | undefined): Verdict {
    const s = this.#state(node);
    if (seq <= s.accepted) {
      this.#count(node, 1, 0);
      this.#countDuplicates();
      // The sender resent what we hold; tell it again how far we are.
      if (s.committed === s.accepted) this.#acks(node, s.committed);
      return "duplicate";
    }
    if (seq !== s.accepted + 1 && !(base !== undefined && seq === base)) {
      this.#count(node, 0, 1);
      this.#countGaps();
      return "gap";
    }
    return "accepted";
  }

  // Counts duplicates and gaps of a node in memory; the next group writes them (receive writes nothing).
  #count(node: string, duplicates: number, gaps: number): void {
    const c = this.#counts.get(node);
    if (c) {
      c.duplicates += duplicates;
      c.gaps += gaps;
    } else this.#counts.set(node, { duplicates, gaps });
    this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.#flushNow());
  }

  /**
   * Commits everything queued, a group per transaction and one transaction at a time, then acks each
   * node's new high-water mark. Resolves once what was queued when it was called is committed (or has
   * failed, and its senders will resend).
   */
  // A flush nobody awaits: what goes wrong is logged (a failed group is already logged and rewound).
  #flushNow(): void {
    this.flush().catch((err: unknown) =>
      this.#log.error("ingest flush failed", { error: (err as Error).message }),
    );
  }

  flush(): Promise<void> {
    this.#scheduled = false;
    this.#running ??= this.#drain().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0 || this.#counts.size > 0) {
      const queue = this.#queue;
      this.#queue = [];
      // After a failure the next message tries again (the senders resend), not a loop here.
      if (!(await this.#commit(queue))) return;
    }
  }

  // One group in one transaction: node rows locked in id order, each node's part stored only when its
  // row still holds what this hub committed last (another replica may have stored for it since).
  async #commit(queue: Pending[]): Promise<boolean> {
    const counts = this.#counts;
    this.#counts = new Map();
    const committedAt = new Map<string, number>();
    for (const p of queue)
      if (!committedAt.has(p.node)) committedAt.set(p.node, this.#state(p.node).committed);
    let perNode = new Map<string, NodeAgg>();
    let newSeries: [string, string][] = [];
    // Each batch as stored: without the samples the hub held already.
    let kept = new Map<Pending, MetricsFrame>();
    let moved = new Map<string, number>();
    // The body runs again after a deadlock on PostgreSQL: what an attempt kept in memory goes first.
    const forgetAttempt = () => {
      for (const [node, name] of newSeries) this.#known.get(node)?.delete(name);
      for (const node of committedAt.keys()) this.#samples.forget(node);
    };
    // Every node row the group writes, locked first in id order (no deadlock between two replicas).
    const locked = [...new Set([...committedAt.keys(), ...counts.keys()])].sort();
    let attempts = 0;
    try {
      // What applying the messages starts beyond the database runs once the transaction has ended
      // (afterTx, afterCommit: the store's tx collects it).
      await this.#sql.tx(async (tx) => {
        if (attempts++ > 0) forgetAttempt();
        perNode = new Map();
        newSeries = [];
        kept = new Map();
        moved = await this.#lockNodes(tx, locked, committedAt);
        // Batch rows go in a few multi-row inserts (one round trip each on PostgreSQL).
        const rows: BatchRow[] = [];
        for (const p of queue) {
          if (moved.has(p.node)) continue;
          const agg = perNode.get(p.node) ?? emptyAgg();
          perNode.set(p.node, agg);
          agg.seq = Math.max(agg.seq, p.seq);
          if (!p.msg) continue; // refused: advance past it, store nothing
          if (p.msg.t === "metrics_batch" && p.frame)
            await this.#storeBatch(tx, p, agg, newSeries, kept, rows);
          else await this.#storeMessage(tx, p, p.msg);
        }
        await insertBatches(tx, rows);
        await advanceNodes(tx, perNode, this.#epochOf);
        for (const [node, c] of counts)
          await tx.run("UPDATE nodes SET duplicates = duplicates + ?, gaps = gaps + ? WHERE id = ?", [
            c.duplicates,
            c.gaps,
            node,
          ]);
      });
    } catch (err) {
      // Nothing was stored: forget what we accepted so the senders' resends are taken again.
      this.#log.error("ingest commit failed; senders will resend", { error: (err as Error).message });
      this.#onCommit?.(false, err);
      // Names first seen in the rolled-back group were not stored either.
      forgetAttempt();
      for (const node of committedAt.keys()) this.#rewind(node);
      // The counts go with the next group, which the next message (a resend) starts: no loop here
      // while the store fails.
      for (const [node, c] of counts) {
        const now = this.#counts.get(node);
        if (now) {
          now.duplicates += c.duplicates;
          now.gaps += c.gaps;
        } else this.#counts.set(node, c);
      }
      return false;
    }
    this.#countCommits();
    this.#onCommit?.(true);
    for (const [p, frame] of kept) p.frame = frame;
    for (const [node, last] of moved) {
      this.#log.warn("a node's stored sequence moved on elsewhere; its messages are left for a resend", {
        node,
        stored: last,
      });
      this.#rewind(node);
      // What is stored now: the resend is taken from there (each message once, by whoever stored it).
      this.#seqs.set(node, { accepted: last, committed: last });
    }
    // Rollups are old data: the latest values come from fine batches.
    for (const p of queue)
      if (p.frame && !moved.has(p.node) && !(p.msg?.t === "metrics_batch" && p.msg.b.rollup === 1))
        this.#remember(p.node, p.frame);
    for (const [node, agg] of perNode) {
      const s = this.#state(node);
      s.committed = Math.max(s.committed, agg.seq);
      this.#countSamples(agg.samples);
      if (agg.duplicates > 0) this.#countDuplicateSamples(agg.duplicates);
      this.#acks(node, s.committed);
    }
    return true;
  }

  // Locks the group's node rows (id order, so two replicas never deadlock) and names the nodes whose
  // stored sequence is no longer the one this hub committed: their part of the group is left out.
  async #lockNodes(
    tx: HubSql,
    ids: readonly string[],
    committedAt: ReadonlyMap<string, number>,
  ): Promise<Map<string, number>> {
    const moved = new Map<string, number>();
    for (let i = 0; i < ids.length; i += 500) {
      const part = ids.slice(i, i + 500);
      const rows = await tx.all<{ id: string; last_seq: number }>(
        // Byte order (COLLATE "C"), as the ids are sorted here and as every other locker of these rows
        // orders them, whatever the database's locale.
        `SELECT id, last_seq FROM nodes WHERE id IN (${part.map(() => "?").join(", ")}) ORDER BY ${textOrder(tx.dialect, "id")}${forUpdate(tx.dialect)}`,
        part,
      );
      for (const r of rows) {
        const committed = committedAt.get(r.id);
        if (committed !== undefined && r.last_seq !== committed) moved.set(r.id, r.last_seq);
      }
    }
    return moved;
  }

  // Forgets what was accepted but not stored for `node`, with what waits for the next group: its
  // sender resends from its last ack, and each message is taken again in order.
  #rewind(node: string): void {
    const s = this.#seqs.get(node);
    if (s) s.accepted = s.committed;
    if (this.#queue.some((p) => p.node === node)) this.#queue = this.#queue.filter((p) => p.node !== node);
    // Read again from the store: the times raised in the rolled-back group were not stored.
    this.#samples.forget(node);
  }

  async #storeBatch(
    tx: HubSql,
    p: Pending,
    agg: NodeAgg,
    newSeries: [string, string][],
    keptFrames: Map<Pending, MetricsFrame>,
    rows: BatchRow[],
  ): Promise<void> {
    const msg = p.msg as Extract<Message, { t: "metrics_batch" }>;
    const b = msg.b;
    // What the data holds, not what the sender declares; a rollup stands for its counts.
    const rollup = b.rollup === 1;
    // Points at their own times may lie past the grid's last tick (never before its start).
    const gridEnd = b.start + (b.ticks - 1) * b.interval;
    const end = Math.max(gridEnd, frameSpan(p.frame!)?.last ?? gridEnd);
    let data = b.data;
    let z = b.z ?? 0;
    // It may hold samples stored before (a restored store sends its backlog again): each is kept once.
    // Those of this group count too, so its rows are stored before the store is looked at.
    if (await this.#samples.mayHold(tx, p.node, b.start)) await insertBatches(tx, rows);
    const kept = await this.#samples.withoutStored(
      tx,
      p.node,
      { frame: p.frame!, rollup, fold: b.fold },
      b.start,
      end,
    );
    if (kept.duplicates > 0) {
      agg.duplicates += kept.duplicates;
      keptFrames.set(p, kept.frame);
      if (kept.frame.series.length > 0) ({ data, z } = encodeMetrics(kept.frame));
    }
    const f = kept.frame;
    agg.end = Math.max(agg.end, end);
    this.#samples.stored(p.node, end);
    if (f.series.length === 0) return;
    const samples = rollup ? rolledUpSamples(f) : countSamples(f);
    rows.push([
      p.node,
      p.seq,
      b.start,
      end,
      b.interval,
      b.ticks,
      samples,
      z,
      data,
      rollup ? 1 : 0,
      rollup ? (b.fold ?? null) : null,
    ]);
    agg.samples += samples;
    if (rollup) agg.rolledUp += samples;
    agg.batches += 1;
    let known = this.#known.get(p.node);
    if (!known) {
      const rows = await tx.all<{ name: string }>("SELECT name FROM series WHERE node = ?", [p.node]);
      known = new Set(rows.map((r) => r.name));
      this.#known.set(p.node, known);
    }
    for (const col of f.series) {
      const name = rollup ? rollupBase(col.name) : col.name;
      if (!known.has(name)) {
        await tx.run("INSERT INTO series (node, name) VALUES (?, ?) ON CONFLICT DO NOTHING", [p.node, name]);
        known.add(name);
        newSeries.push([p.node, name]);
      }
    }
  }

  // Each message in its own savepoint: one that cannot be stored or applied is recorded as refused
  // (and acked past) instead of rolling back everyone else's messages in the group.
  async #storeMessage(tx: HubSql, p: Pending, msg: Message): Promise<void> {
    try {
      await tx.tx(async (one) => {
        await one.run(
          "INSERT INTO messages (node, seq, type, at, body) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
          // Whole milliseconds: the stores' time columns are 64-bit integers (PostgreSQL refuses a fraction).
          [p.node, p.seq, msg.t, Math.trunc(msg.ts), JSON.stringify(msg.b, jsonSafe)],
        );
        await this.#apply?.(one, p.node, msg);
      });
    } catch (err) {
      // A deadlock or serialization failure is the whole group's: it runs again (PostgreSQL).
      if (isRetryable(err)) throw err;
      this.#countRefused(1, { reason: "cannot_store" });
      this.#log.warn("reliable message could not be stored; refused", {
        node: p.node,
        seq: p.seq,
        type: msg.t,
        error: (err as Error).message,
      });
    }
  }

  // Keeps the newest value of each series in memory for /metrics re-export.
  #remember(node: string, frame: MetricsFrame): void {
    let m = this.#latest.get(node);
    if (!m) {
      m = new Map();
      this.#latest.set(node, m);
    }
    for (const col of frame.series) {
      for (let i = col.values.length - 1; i >= 0; i--) {
        const v = col.values[i];
        if (v !== null && v !== undefined) {
          const t = sampleTime(frame, col, i);
          const cur = m.get(col.name);
          if (!cur && m.size >= this.#maxSeries) {
            this.#overOne(node, col.name);
            break;
          }
          if (!cur || cur[0] <= t) m.set(col.name, [t, v]);
          break;
        }
      }
    }
  }

  // Counts a series past the bound once (the set itself is bounded: at most 10,000 names per node).
  #overOne(node: string, name: string): void {
    let names = this.#overflow.get(node);
    if (!names) {
      names = new Set();
      this.#overflow.set(node, names);
    }
    if (names.size < 10_000) names.add(name);
  }

  /** Latest value of every series of every node (time, value). */
  latest(): ReadonlyMap<string, ReadonlyMap<string, [number, number]>> {
    return this.#latest;
  }

  /** Names of the series a node has sent. */
  async series(node: string): Promise<string[]> {
    const rows = await this.#sql.all<{ name: string }>(
      "SELECT name FROM series WHERE node = ? ORDER BY name",
      [node],
    );
    return rows.map((r) => r.name);
  }

  /**
   * Points of one series of one node within [from, to], oldest first, and the minutes that arrived as
   * rollups (their averages are among the points).
   */
  async query(
    node: string,
    series: string,
    from: number,
    to: number,
  ): Promise<{ points: [number, number][]; rollups: RollupPoint[] }> {
    const rows = await this.#sql.all<{
      start: number;
      interval: number;
      ticks: number;
      z: 0 | 1;
      data: Uint8Array;
      rollup: number;
    }>(
      `SELECT start, "interval", ticks, z, data, rollup FROM batches
       WHERE node = ? AND start <= ? AND start >= ? AND "end" >= ? ORDER BY start, seq`,
      [node, to, from - 86_400_000, from],
    );
    const points: [number, number][] = [];
    const minutes = new Map<number, RollupPoint>();
    // Points at their own times may interleave with other batches' ticks.
    let unordered = false;
    for (const r of rows) {
      const frame = decodeMetrics(r);
      if (r.rollup === 1) {
        // A minute split across two rollups (a fold boundary) is merged back into one.
        for (const m of rollupPoints(frame, series)) {
          if (m[0] < from || m[0] > to) continue;
          const had = minutes.get(m[0]);
          minutes.set(m[0], had ? mergeRollupPoints(had, m) : m);
        }
        continue;
      }
      for (const col of frame.series) {
        if (col.name !== series) continue;
        if (col.times) unordered = true;
        col.values.forEach((v, i) => {
          const t = sampleTime(frame, col, i);
          if (v !== null && t >= from && t <= to) points.push([t, v]);
        });
      }
    }
    const rollups = [...minutes.values()];
    if (unordered && rollups.length === 0) points.sort((a, b) => a[0] - b[0]);
    if (rollups.length > 0) {
      for (const m of rollups) points.push([m[0], m[3]]);
      points.sort((a, b) => a[0] - b[0]);
    }
    return { points, rollups };
  }
}

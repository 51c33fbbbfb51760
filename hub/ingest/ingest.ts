// Idempotent ingest: reliable messages are deduplicated by sequence, stored in grouped commits, then acked.
import type { Database, Statement } from "bun:sqlite";
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
import { StoredSamples } from "./sample-dedupe.ts";
import { TxEffects } from "../store/after-tx.ts";

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

/** Receives reliable messages for every node and stores each exactly once. */
export class Ingest {
  readonly #db: Database;
  readonly #log: Logger;
  readonly #seqs = new Map<string, NodeSeq>();
  readonly #known = new Map<string, Set<string>>();
  readonly #latest = new Map<string, Map<string, [number, number]>>();
  /** Each sample once by series and time. */
  readonly #samples: StoredSamples;
  #queue: Pending[] = [];
  #scheduled = false;
  readonly #acks: AckSender;
  readonly #insertBatch: Statement;
  readonly #insertSeries: Statement;
  readonly #insertMessage: Statement;
  readonly #advance: Statement;
  readonly #dup: Statement;
  readonly #gap: Statement;
  readonly #epochSeq: Statement;
  readonly #epochOf: ((node: string) => string | undefined) | undefined;
  readonly #countSamples: (by?: number) => void;
  readonly #countRefused: (by?: number, labels?: Record<string, string>) => void;
  readonly #countDuplicates: (by?: number) => void;
  readonly #countDuplicateSamples: (by?: number) => void;
  readonly #countGaps: (by?: number) => void;
  readonly #countCommits: (by?: number) => void;

  readonly #apply: ((node: string, msg: Message) => void) | undefined;
  readonly #maxSeries: number;
  /** Per node: series it sent past the bound, not re-exported. */
  readonly #overflow = new Map<string, Set<string>>();

  constructor(
    db: Database,
    opts: {
      log: Logger;
      metrics: MetricsRegistry;
      acks: AckSender;
      /** Applies a non-metrics message's effects inside the transaction that stores it (exactly once). */
      apply?: (node: string, msg: Message) => void;
      /** The epoch of the node's store now speaking (its stored numbers are recorded against it). */
      epochOf?: (node: string) => string | undefined;
      /** Series per node kept for /metrics; a node's series past it are stored but not re-exported (default 1000). */
      maxSeriesPerNode?: number;
    },
  ) {
    this.#db = db;
    this.#maxSeries = opts.maxSeriesPerNode ?? 1000;
    this.#epochOf = opts.epochOf;
    this.#apply = opts.apply;
    this.#log = opts.log;
    this.#acks = opts.acks;
    this.#insertBatch = db.query(
      `INSERT OR IGNORE INTO batches (node, seq, start, end, interval, ticks, samples, z, data, rollup, fold)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.#insertSeries = db.query("INSERT OR IGNORE INTO series (node, name) VALUES (?, ?)");
    this.#insertMessage = db.query(
      "INSERT OR IGNORE INTO messages (node, seq, type, at, body) VALUES (?, ?, ?, ?, ?)",
    );
    this.#advance = db.query(
      `UPDATE nodes SET last_seq = max(last_seq, ?), samples = samples + ?, rolled_up = rolled_up + ?,
       batches = batches + ?, duplicate_samples = duplicate_samples + ?, sample_end = max(sample_end, ?)
       WHERE id = ?`,
    );
    this.#samples = new StoredSamples(db);
    this.#epochSeq = db.query(
      "UPDATE node_epochs SET seq_high = max(seq_high, ?) WHERE node = ? AND epoch = ?",
    );
    this.#dup = db.query("UPDATE nodes SET duplicates = duplicates + 1 WHERE id = ?");
    this.#gap = db.query("UPDATE nodes SET gaps = gaps + 1 WHERE id = ?");
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
    let s = this.#seqs.get(node);
    if (!s) {
      const row = this.#db.query("SELECT last_seq FROM nodes WHERE id = ?").get(node) as {
        last_seq: number;
      } | null;
      const last = row?.last_seq ?? 0;
      s = { accepted: last, committed: last };
      this.#seqs.set(node, s);
    }
    return s;
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
    if (this.#queue.length >= 2000) this.flush();
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
      this.#dup.run(node);
      this.#countDuplicates();
      // The sender resent what we hold; tell it again how far we are.
      if (s.committed === s.accepted) this.#acks(node, s.committed);
      return "duplicate";
    }
    if (seq !== s.accepted + 1 && !(base !== undefined && seq === base)) {
      this.#gap.run(node);
      this.#countGaps();
      return "gap";
    }
    return "accepted";
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.flush());
  }

  /** Commits everything queued in one transaction, then acks each node's new high-water mark. */
  flush(): void {
    this.#scheduled = false;
    const queue = this.#queue;
    if (queue.length === 0) return;
    this.#queue = [];
    const perNode = new Map<
      string,
      { seq: number; samples: number; rolledUp: number; batches: number; duplicates: number; end: number }
    >();
    const newSeries: [string, string][] = [];
    // What applying the messages starts beyond the database runs once the transaction has ended.
    const effects = new TxEffects();
    try {
      const tx = this.#db.transaction(() => {
        for (const p of queue) {
          const agg = perNode.get(p.node) ?? {
            seq: 0,
            samples: 0,
            rolledUp: 0,
            batches: 0,
            duplicates: 0,
            end: 0,
          };
          agg.seq = Math.max(agg.seq, p.seq);
          if (!p.msg) {
            // refused: advance past it, store nothing
          } else if (p.msg.t === "metrics_batch" && p.frame) {
            const b = p.msg.b;
            // What the data holds, not what the sender declares; a rollup stands for its counts.
            const rollup = b.rollup === 1;
            // Points at their own times may lie past the grid's last tick (never before its start).
            const gridEnd = b.start + (b.ticks - 1) * b.interval;
            const end = Math.max(gridEnd, frameSpan(p.frame)?.last ?? gridEnd);
            let data = b.data;
            let z = b.z ?? 0;
            // It may hold samples stored before (a restored store sends its backlog again): each is kept once.
            const kept = this.#samples.withoutStored(
              p.node,
              { frame: p.frame, rollup, fold: b.fold },
              b.start,
              end,
            );
            if (kept.duplicates > 0) {
              agg.duplicates += kept.duplicates;
              p.frame = kept.frame;
              if (kept.frame.series.length > 0) ({ data, z } = encodeMetrics(kept.frame));
            }
            const f = p.frame;
            agg.end = Math.max(agg.end, end);
            this.#samples.stored(p.node, end);
            if (f.series.length === 0) {
              perNode.set(p.node, agg);
              continue;
            }
            const samples = rollup ? rolledUpSamples(f) : countSamples(f);
            this.#insertBatch.run(
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
            );
            agg.samples += samples;
            if (rollup) agg.rolledUp += samples;
            agg.batches += 1;
            let known = this.#known.get(p.node);
            if (!known) {
              known = new Set(
                (
                  this.#db.query("SELECT name FROM series WHERE node = ?").all(p.node) as { name: string }[]
                ).map((r) => r.name),
              );
              this.#known.set(p.node, known);
            }
            for (const col of f.series) {
              const name = rollup ? rollupBase(col.name) : col.name;
              if (!known.has(name)) {
                this.#insertSeries.run(p.node, name);
                known.add(name);
                newSeries.push([p.node, name]);
              }
            }
          } else {
            // Each message in its own savepoint: one that cannot be stored or applied is recorded as
            // refused (and acked past) instead of rolling back everyone else's messages in the group.
            this.#db.run("SAVEPOINT one_message");
            try {
              this.#insertMessage.run(p.node, p.seq, p.msg.t, p.msg.ts, JSON.stringify(p.msg.b, jsonSafe));
              this.#apply?.(p.node, p.msg);
              this.#db.run("RELEASE one_message");
            } catch (err) {
              this.#db.run("ROLLBACK TO one_message");
              this.#db.run("RELEASE one_message");
              this.#countRefused(1, { reason: "cannot_store" });
              this.#log.warn("reliable message could not be stored; refused", {
                node: p.node,
                seq: p.seq,
                type: p.msg.t,
                error: (err as Error).message,
              });
            }
          }
          perNode.set(p.node, agg);
        }
        for (const [node, agg] of perNode) {
          this.#advance.run(agg.seq, agg.samples, agg.rolledUp, agg.batches, agg.duplicates, agg.end, node);
          const epoch = this.#epochOf?.(node);
          if (epoch !== undefined) this.#epochSeq.run(agg.seq, node, epoch);
        }
      });
      effects.collect(() => tx());
    } catch (err) {
      // Nothing was stored: forget what we accepted so the senders' resends are taken again.
      this.#log.error("ingest commit failed; senders will resend", { error: (err as Error).message });
      // Names first seen in the rolled-back group were not stored either.
      for (const [node, name] of newSeries) this.#known.get(node)?.delete(name);
      for (const node of perNode.keys()) {
        const s = this.#seqs.get(node);
        if (s) s.accepted = s.committed;
        // Read again from the store: the times raised in the rolled-back group were not stored.
        this.#samples.forget(node);
      }
      this.#runEffects(effects);
      return;
    }
    this.#countCommits();
    // Rollups are old data: the latest values come from fine batches.
    for (const p of queue)
      if (p.frame && !(p.msg?.t === "metrics_batch" && p.msg.b.rollup === 1)) this.#remember(p.node, p.frame);
    for (const [node, agg] of perNode) {
      const s = this.#state(node);
      s.committed = Math.max(s.committed, agg.seq);
      this.#countSamples(agg.samples);
      if (agg.duplicates > 0) this.#countDuplicateSamples(agg.duplicates);
      this.#acks(node, s.committed);
    }
    this.#runEffects(effects);
  }

  #runEffects(effects: TxEffects): void {
    effects.run((err) =>
      this.#log.error("work started by stored messages failed", { error: (err as Error).message }),
    );
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
  series(node: string): string[] {
    return (
      this.#db.query("SELECT name FROM series WHERE node = ? ORDER BY name").all(node) as { name: string }[]
    ).map((r) => r.name);
  }

  /**
   * Points of one series of one node within [from, to], oldest first, and the minutes that arrived as
   * rollups (their averages are among the points).
   */
  query(
    node: string,
    series: string,
    from: number,
    to: number,
  ): { points: [number, number][]; rollups: RollupPoint[] } {
    const rows = this.#db
      .query(
        `SELECT start, interval, ticks, z, data, rollup FROM batches
         WHERE node = ? AND start <= ? AND start >= ? AND end >= ? ORDER BY start, seq`,
      )
      .all(node, to, from - 86_400_000, from) as {
      start: number;
      interval: number;
      ticks: number;
      z: 0 | 1;
      data: Uint8Array;
      rollup: number;
    }[];
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

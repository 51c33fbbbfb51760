// Each node's store epochs: which stores it spoke from, how far the hub stored from each, and its counters.
import type { Database, Statement } from "bun:sqlite";
import type { HeartbeatBody } from "../../shared/protocol/index.ts";

/** One store (epoch) of a node, as the hub knows it. */
export interface EpochRecord {
  epoch: string;
  first_seen: number;
  last_seen: number;
  /** Highest sequence number stored while this epoch was speaking. */
  seq_high: number;
  produced: number;
  dropped: number;
  dropped_by: Record<string, number>;
  /** Samples the store held, unacknowledged, at its last report. */
  held: number;
  /** Times a copy of this store came back behind the hub (a restored snapshot, or a copy elsewhere). */
  restored: number;
}

/** The counters a node reported last (from its newest epoch). */
export interface NodeCounters {
  epoch: string;
  produced: number;
  dropped: number;
  dropped_by: Record<string, number>;
  held: number;
}

interface Row extends Omit<EpochRecord, "dropped_by"> {
  dropped_by: string;
}

/** What the hub answers a hello that names an epoch. */
export interface EpochVerdict {
  /** The store is a copy of one the hub stored more from than it has numbered: it must start a new epoch. */
  restored: boolean;
  /**
   * The node's counters as last seen, for a store that is behind to resume from. `produced` is at least
   * what the hub stored and the node dropped: a report lags, and the original may have sent more after it.
   */
  counters?: { produced: number; dropped: number };
}

/** Epoch history per node, in the hub database; reports are kept in memory and written with `flush`. */
export class NodeEpochs {
  readonly #db: Database;
  readonly #now: () => number;
  readonly #get: Statement;
  readonly #list: Statement;
  readonly #seen: Statement;
  readonly #report: Statement;
  readonly #restored: Statement;
  readonly #current = new Map<string, string>();
  readonly #pending = new Map<string, NodeCounters & { at: number }>();

  constructor(db: Database, now: () => number) {
    this.#db = db;
    this.#now = now;
    this.#get = db.query("SELECT * FROM node_epochs WHERE node = ? AND epoch = ?");
    this.#list = db.query("SELECT * FROM node_epochs WHERE node = ? ORDER BY first_seen, epoch");
    this.#seen = db.query(
      `INSERT INTO node_epochs (node, epoch, first_seen, last_seen) VALUES (?1, ?2, ?3, ?3)
       ON CONFLICT(node, epoch) DO UPDATE SET last_seen = max(last_seen, ?3)`,
    );
    this.#report = db.query(
      `INSERT INTO node_epochs (node, epoch, first_seen, last_seen, produced, dropped, dropped_by, held)
       VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6, ?7)
       ON CONFLICT(node, epoch) DO UPDATE SET last_seen = max(last_seen, ?3), produced = max(produced, ?4),
         dropped = max(dropped, ?5), dropped_by = ?6, held = ?7`,
    );
    this.#restored = db.query("UPDATE node_epochs SET restored = restored + 1 WHERE node = ? AND epoch = ?");
  }

  /**
   * A hello naming `epoch`, whose store has handed out wire numbers up to `seqHigh`, while the hub
   * has stored the node's numbers up to `storedSeq` and `storedSamples` of its samples. A store the
   * hub knows that is behind it is a copy.
   */
  hello(
    node: string,
    epoch: string,
    seqHigh: number,
    storedSeq: number,
    storedSamples: number,
  ): EpochVerdict {
    const known = this.#get.get(node, epoch) !== null;
    const restored = known && storedSeq > seqHigh;
    this.#seen.run(node, epoch, this.#now());
    if (restored) this.#restored.run(node, epoch);
    this.#current.set(node, epoch);
    const c = this.counters(node);
    const verdict: EpochVerdict = { restored };
    if (c || storedSamples > 0) {
      const dropped = c?.dropped ?? 0;
      verdict.counters = { produced: Math.max(c?.produced ?? 0, dropped + storedSamples), dropped };
    }
    return verdict;
  }

  /** A heartbeat that carries counters: kept in memory until the next flush. */
  report(node: string, hb: HeartbeatBody): void {
    if (hb.epoch === undefined || hb.produced === undefined) return;
    this.#current.set(node, hb.epoch);
    this.#pending.set(node, {
      epoch: hb.epoch,
      produced: hb.produced,
      dropped: hb.dropped ?? 0,
      dropped_by: hb.dropped_by ?? {},
      held: hb.held ?? 0,
      at: this.#now(),
    });
  }

  /** The epoch the node speaks from now (undefined for an agent that sends none). */
  current(node: string): string | undefined {
    return this.#current.get(node);
  }

  /** Writes the reports kept in memory, in one transaction (the registry flushes with its own). */
  flush(): void {
    if (this.#pending.size === 0) return;
    this.#db.transaction(() => {
      for (const [node, r] of this.#pending)
        this.#report.run(node, r.epoch, r.at, r.produced, r.dropped, JSON.stringify(r.dropped_by), r.held);
    })();
    this.#pending.clear();
  }

  /** A node's epochs, oldest first, with its latest report (kept in memory until the next flush). */
  list(node: string): EpochRecord[] {
    const rows = (this.#list.all(node) as Row[]).map((r) => ({
      epoch: r.epoch,
      first_seen: r.first_seen,
      last_seen: r.last_seen,
      seq_high: r.seq_high,
      produced: r.produced,
      dropped: r.dropped,
      dropped_by: JSON.parse(r.dropped_by) as Record<string, number>,
      held: r.held,
      restored: r.restored,
    }));
    const p = this.#pending.get(node);
    if (!p) return rows;
    const row = rows.find((r) => r.epoch === p.epoch);
    const merged = {
      produced: Math.max(row?.produced ?? 0, p.produced),
      dropped: Math.max(row?.dropped ?? 0, p.dropped),
      dropped_by: p.dropped_by,
      held: p.held,
      last_seen: Math.max(row?.last_seen ?? 0, p.at),
    };
    if (row) Object.assign(row, merged);
    else rows.push({ epoch: p.epoch, first_seen: p.at, seq_high: 0, restored: 0, ...merged });
    return rows;
  }

  /**
   * The node's counters: those of its latest report. Counters carry on across epochs (a copy resumes
   * from them), so produced and dropped are the highest any epoch reported.
   */
  counters(node: string): NodeCounters | undefined {
    const epochs = this.list(node);
    const reported = epochs.filter((e) => e.produced > 0 || e.dropped > 0);
    if (reported.length === 0) return undefined;
    const last = reported.reduce((a, e) => (e.last_seen >= a.last_seen ? e : a));
    return {
      epoch: last.epoch,
      produced: Math.max(...reported.map((e) => e.produced)),
      dropped: Math.max(...reported.map((e) => e.dropped)),
      dropped_by: last.dropped_by,
      held: last.held,
    };
  }
}

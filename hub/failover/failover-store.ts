// What failover writes to the hub database: its event log and the allocations it marked lost.
import type { Database, Statement } from "bun:sqlite";
import type { AllocStatusName } from "../../shared/workload/index.ts";

/** One entry of the failover log, as `GET /api/v1/failover/events` lists it. */
export interface FailoverEvent {
  id: number;
  at: number;
  /** `node` (a liveness transition), `mark_lost`, `place`, `stop`, `keep`, `restart`. */
  kind: string;
  node: string | null;
  workload: string | null;
  alloc: string | null;
  /** For node transitions: `suspect -> disconnected`. */
  change: string | null;
  reason: string;
  evidence: string[];
}

export interface LostMark {
  alloc: string;
  at: number;
  prev_status: AllocStatusName;
  /** The status message written when the mark was made: a different one means the node reported since. */
  message: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS failover_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  kind TEXT NOT NULL,
  node TEXT,
  workload TEXT,
  alloc TEXT,
  change TEXT,
  reason TEXT NOT NULL,
  evidence TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS failover_events_by_node ON failover_events (node, id);
CREATE TABLE IF NOT EXISTS failover_lost (
  alloc TEXT PRIMARY KEY,
  at INTEGER NOT NULL,
  prev_status TEXT NOT NULL,
  message TEXT NOT NULL
);
`;

/** The failover tables; created on first use, kept across hub restarts. */
export class FailoverStore {
  readonly #db: Database;
  readonly #insert: Statement;
  readonly #marks: Statement;
  readonly #listeners = new Set<(e: Omit<FailoverEvent, "id">) => void>();

  constructor(db: Database) {
    this.#db = db;
    db.run(SCHEMA);
    this.#insert = db.query(
      "INSERT INTO failover_events (at, kind, node, workload, alloc, change, reason, evidence) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    );
    this.#marks = db.query("SELECT * FROM failover_lost");
  }

  record(e: Omit<FailoverEvent, "id">): void {
    this.#insert.run(
      e.at,
      e.kind,
      e.node,
      e.workload,
      e.alloc,
      e.change,
      e.reason,
      JSON.stringify(e.evidence),
    );
    for (const fn of this.#listeners) fn(e);
  }

  /** Hears every entry as it is recorded (alerting evaluates on node transitions at once); returns the way to stop. */
  subscribe(fn: (e: Omit<FailoverEvent, "id">) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Entries after id `after`, oldest first (at most `limit`). */
  after(after: number, limit = 1000): FailoverEvent[] {
    const rows = this.#db
      .query("SELECT * FROM failover_events WHERE id > ? ORDER BY id LIMIT ?")
      .all(after, limit) as (Omit<FailoverEvent, "evidence"> & { evidence: string })[];
    return rows.map((r) => ({ ...r, evidence: JSON.parse(r.evidence) }));
  }

  /** The newest entry's id (0 for an empty log). */
  lastId(): number {
    return (this.#db.query("SELECT max(id) AS m FROM failover_events").get() as { m: number | null }).m ?? 0;
  }

  /** Newest first; optionally for one node or one workload. */
  events(opts: { node?: string; workload?: string; limit?: number } = {}): FailoverEvent[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (opts.node) {
      where.push("node = ?");
      args.push(opts.node);
    }
    if (opts.workload) {
      where.push("workload = ?");
      args.push(opts.workload);
    }
    args.push(Math.min(Math.max(opts.limit ?? 200, 1), 5000));
    const rows = this.#db
      .query(
        `SELECT * FROM failover_events ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY id DESC LIMIT ?`,
      )
      .all(...args) as (Omit<FailoverEvent, "evidence"> & { evidence: string })[];
    return rows.map((r) => ({ ...r, evidence: JSON.parse(r.evidence) }));
  }

  marks(): Map<string, LostMark> {
    return new Map((this.#marks.all() as LostMark[]).map((m) => [m.alloc, m]));
  }

  mark(m: LostMark): void {
    this.#db
      .query("INSERT OR REPLACE INTO failover_lost (alloc, at, prev_status, message) VALUES (?, ?, ?, ?)")
      .run(m.alloc, m.at, m.prev_status, m.message);
  }

  unmark(alloc: string): void {
    this.#db.query("DELETE FROM failover_lost WHERE alloc = ?").run(alloc);
  }
}

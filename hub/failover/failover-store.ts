// What failover writes to the hub database: its event log and the allocations it marked lost.
import type { AllocStatusName } from "../../shared/workload/index.ts";
import { afterCommit } from "../store/after-tx.ts";
import { keyLock } from "../store/sql/dialect.ts";
import type { HubSql } from "../store/sql/index.ts";

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

type EventRow = Omit<FailoverEvent, "evidence"> & { evidence: string };
const toEvent = (r: EventRow): FailoverEvent => ({ ...r, evidence: JSON.parse(r.evidence) });

/**
 * The failover tables (made by the migrations), kept across hub restarts. Reads and writes go through
 * `via`: a transaction's handle, or the store's own.
 */
export class FailoverStore {
  readonly #sql: HubSql;
  readonly #listeners = new Set<(e: Omit<FailoverEvent, "id">) => void>();

  constructor(sql: HubSql) {
    this.#sql = sql;
  }

  /**
   * Writes one entry; listeners hear it once it has committed. Entries are written one transaction at
   * a time across every hub on the store (an advisory lock held until the commit, on PostgreSQL), so
   * ids commit in the order they are handed out: a reader that follows `id > cursor` (the alerter)
   * never passes an id whose row commits later.
   */
  async record(e: Omit<FailoverEvent, "id">, via: HubSql = this.#sql): Promise<void> {
    const write = async (tx: HubSql) => {
      const lock = keyLock(tx.dialect);
      if (lock) await tx.get(lock, ["failover_events"]);
      await tx.run(
        "INSERT INTO failover_events (at, kind, node, workload, alloc, change, reason, evidence) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [e.at, e.kind, e.node, e.workload, e.alloc, e.change, e.reason, JSON.stringify(e.evidence)],
      );
      afterCommit(() => {
        for (const fn of this.#listeners) fn(e);
      });
    };
    // Inside a caller's transaction its handle holds the lock until that commits; alone, a transaction
    // of its own does.
    if (via !== this.#sql) await write(via);
    else await this.#sql.tx(write);
  }

  /** Hears every entry once recorded (alerting evaluates on node transitions at once); returns the way to stop. */
  subscribe(fn: (e: Omit<FailoverEvent, "id">) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Entries after id `after`, oldest first (at most `limit`). */
  async after(after: number, limit = 1000, via: HubSql = this.#sql): Promise<FailoverEvent[]> {
    const rows = await via.all<EventRow>("SELECT * FROM failover_events WHERE id > ? ORDER BY id LIMIT ?", [
      after,
      limit,
    ]);
    return rows.map(toEvent);
  }

  /** The newest entry's id (0 for an empty log). */
  async lastId(via: HubSql = this.#sql): Promise<number> {
    const r = await via.get<{ m: number | null }>("SELECT max(id) AS m FROM failover_events");
    return r?.m ?? 0;
  }

  /** Newest first; optionally for one node or one workload. */
  async events(opts: { node?: string; workload?: string; limit?: number } = {}): Promise<FailoverEvent[]> {
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
    const rows = await this.#sql.all<EventRow>(
      `SELECT * FROM failover_events ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY id DESC LIMIT ?`,
      args,
    );
    return rows.map(toEvent);
  }

  async marks(via: HubSql = this.#sql): Promise<Map<string, LostMark>> {
    const rows = await via.all<LostMark>("SELECT alloc, at, prev_status, message FROM failover_lost");
    return new Map(rows.map((m) => [m.alloc, m]));
  }

  async mark(m: LostMark, via: HubSql = this.#sql): Promise<void> {
    await via.run(
      `INSERT INTO failover_lost (alloc, at, prev_status, message) VALUES (?, ?, ?, ?)
       ON CONFLICT (alloc) DO UPDATE SET at = excluded.at, prev_status = excluded.prev_status, message = excluded.message`,
      [m.alloc, m.at, m.prev_status, m.message],
    );
  }

  async unmark(alloc: string, via: HubSql = this.#sql): Promise<void> {
    await via.run("DELETE FROM failover_lost WHERE alloc = ?", [alloc]);
  }
}

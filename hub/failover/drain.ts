// Operator drain, make-before-break: each copy on a draining node gets a healthy twin elsewhere before it stops.
import type { AllocStatusName, WorkloadSpec } from "../../shared/workload/index.ts";
import { textOrder } from "../store/sql/dialect.ts";
import type { HubSql } from "../store/sql/index.ts";

/** A node being drained, as stored (and listed by `GET /api/v1/failover/drains`). */
export interface DrainRecord {
  node: string;
  started: number;
  /** After this, what is still on the node is stopped, moved or not. */
  deadline: number;
  /** Copies being moved off the node at once. */
  max_parallel: number;
  /** When nothing was left to move (null while moving). */
  done: number | null;
}

/** One copy being moved: the new copy is placed; the old stops once the new one is healthy. */
export interface DrainMove {
  old: string;
  new: string;
  node: string;
  workload: string;
  started: number;
}

/** Drains and the moves in flight, kept in the hub database (made by the migrations) so that a restarted hub finishes them. */
export class DrainStore {
  readonly #sql: HubSql;

  constructor(sql: HubSql) {
    this.#sql = sql;
  }

  async start(d: Omit<DrainRecord, "done">, via: HubSql = this.#sql): Promise<void> {
    await via.run(
      `INSERT INTO failover_drains (node, started, deadline, max_parallel, done) VALUES (?, ?, ?, ?, NULL)
       ON CONFLICT (node) DO UPDATE SET started = excluded.started, deadline = excluded.deadline,
         max_parallel = excluded.max_parallel, done = NULL`,
      [d.node, d.started, d.deadline, d.max_parallel],
    );
  }

  /** Ends a drain (undrain); moves in flight are left to finish as ordinary copies. */
  async end(node: string): Promise<boolean> {
    return this.#sql.tx(async (tx) => {
      await tx.run("DELETE FROM failover_moves WHERE node = ?", [node]);
      return (await tx.run("DELETE FROM failover_drains WHERE node = ?", [node])).changes > 0;
    });
  }

  async finish(node: string, at: number, via: HubSql = this.#sql): Promise<void> {
    await via.run("UPDATE failover_drains SET done = ? WHERE node = ?", [at, node]);
  }

  async drains(via: HubSql = this.#sql): Promise<DrainRecord[]> {
    return via.all<DrainRecord>(
      `SELECT node, started, deadline, max_parallel, done FROM failover_drains ORDER BY ${textOrder(via.dialect, "node")}`,
    );
  }

  async moves(via: HubSql = this.#sql): Promise<DrainMove[]> {
    return via.all<DrainMove>(
      `SELECT old, new, node, workload, started FROM failover_moves ORDER BY started, ${textOrder(via.dialect, "old")}`,
    );
  }

  async addMove(m: DrainMove, via: HubSql = this.#sql): Promise<void> {
    await via.run(
      `INSERT INTO failover_moves (old, new, node, workload, started) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (old) DO UPDATE SET new = excluded.new, node = excluded.node, workload = excluded.workload,
         started = excluded.started`,
      [m.old, m.new, m.node, m.workload, m.started],
    );
  }

  async dropMove(old: string, via: HubSql = this.#sql): Promise<void> {
    await via.run("DELETE FROM failover_moves WHERE old = ?", [old]);
  }
}

/** A copy as the drain decision sees it. */
export interface DrainAlloc {
  id: string;
  workload: string;
  node: string;
  /** Wanted running (desired = run). */
  active: boolean;
  status: AllocStatusName;
  healthy: boolean | null;
  spec: WorkloadSpec;
}

export interface DrainDecisions {
  /** Place a twin of this copy elsewhere. */
  start: { old: string; workload: string; node: string }[];
  /** The twin is healthy: stop the old copy. */
  finish: { old: string; new: string; node: string; workload: string }[];
  /** A twin that is gone (stopped, or never placed): forget the move, so it is tried again. */
  retry: { old: string }[];
  /** Past the deadline: stop the old copy, moved or not. */
  force: { old: string; node: string; workload: string }[];
  /** Nothing left on the node. */
  done: string[];
}

// Healthy enough to let the old copy go: running, and healthy by its check when it has one.
const healthy = (a: DrainAlloc) =>
  a.active && a.status === "running" && (a.spec.health ? a.healthy === true : a.healthy !== false);

/** Decides the next drain steps; touches nothing. */
export function decideDrain(s: {
  now: number;
  drains: readonly DrainRecord[];
  moves: readonly DrainMove[];
  allocs: ReadonlyMap<string, DrainAlloc>;
  /** Active copies per draining node. */
  onNode: (node: string) => readonly DrainAlloc[];
}): DrainDecisions {
  const d: DrainDecisions = { start: [], finish: [], retry: [], force: [], done: [] };
  const moving = new Map(s.moves.map((m) => [m.old, m]));
  // Moves of their own (by hand, or asked for by a node's rule): finished or dropped, never restarted.
  const draining = new Set(s.drains.map((x) => x.node));
  for (const m of s.moves) {
    if (draining.has(m.node)) continue;
    const old = s.allocs.get(m.old);
    const twin = s.allocs.get(m.new);
    if (!twin?.active || !old?.active) d.retry.push({ old: m.old });
    else if (healthy(twin)) d.finish.push({ old: m.old, new: twin.id, node: m.node, workload: m.workload });
  }
  for (const drain of s.drains) {
    const here = s.onNode(drain.node);
    if (here.length === 0) {
      if (drain.done === null) d.done.push(drain.node);
      continue;
    }
    if (s.now >= drain.deadline) {
      for (const a of here) d.force.push({ old: a.id, node: drain.node, workload: a.workload });
      continue;
    }
    let inFlight = 0;
    for (const a of here) {
      const m = moving.get(a.id);
      if (!m) continue;
      const twin = s.allocs.get(m.new);
      if (!twin?.active) d.retry.push({ old: a.id });
      else if (healthy(twin))
        d.finish.push({ old: a.id, new: twin.id, node: drain.node, workload: a.workload });
      else inFlight += 1;
    }
    for (const a of here) {
      if (inFlight >= drain.max_parallel) break;
      // Pinned copies have nowhere else to go, and jobs finish where they are: both wait for the deadline.
      if (moving.has(a.id) || (a.spec.nodes ?? []).length > 0 || a.spec.driver === "job") continue;
      d.start.push({ old: a.id, workload: a.workload, node: drain.node });
      inFlight += 1;
    }
  }
  return d;
}

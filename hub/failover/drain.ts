// Operator drain, make-before-break: each copy on a draining node gets a healthy twin elsewhere before it stops.
import type { Database } from "bun:sqlite";
import type { AllocStatusName, WorkloadSpec } from "../../shared/workload/index.ts";

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

const SCHEMA = `
CREATE TABLE IF NOT EXISTS failover_drains (
  node TEXT PRIMARY KEY,
  started INTEGER NOT NULL,
  deadline INTEGER NOT NULL,
  max_parallel INTEGER NOT NULL,
  done INTEGER
);
CREATE TABLE IF NOT EXISTS failover_moves (
  old TEXT PRIMARY KEY,
  new TEXT NOT NULL,
  node TEXT NOT NULL,
  workload TEXT NOT NULL,
  started INTEGER NOT NULL
);
`;

/** Drains and the moves in flight, kept in the hub database so that a restarted hub finishes them. */
export class DrainStore {
  readonly #db: Database;

  constructor(db: Database) {
    this.#db = db;
    db.run(SCHEMA);
  }

  start(d: Omit<DrainRecord, "done">): void {
    this.#db
      .query(
        "INSERT OR REPLACE INTO failover_drains (node, started, deadline, max_parallel, done) VALUES (?, ?, ?, ?, NULL)",
      )
      .run(d.node, d.started, d.deadline, d.max_parallel);
  }

  /** Ends a drain (undrain); moves in flight are left to finish as ordinary copies. */
  end(node: string): boolean {
    this.#db.query("DELETE FROM failover_moves WHERE node = ?").run(node);
    return this.#db.query("DELETE FROM failover_drains WHERE node = ?").run(node).changes > 0;
  }

  finish(node: string, at: number): void {
    this.#db.query("UPDATE failover_drains SET done = ? WHERE node = ?").run(at, node);
  }

  drains(): DrainRecord[] {
    return this.#db.query("SELECT * FROM failover_drains ORDER BY node").all() as DrainRecord[];
  }

  moves(): DrainMove[] {
    return this.#db.query("SELECT * FROM failover_moves ORDER BY started").all() as DrainMove[];
  }

  addMove(m: DrainMove): void {
    this.#db
      .query(
        "INSERT OR REPLACE INTO failover_moves (old, new, node, workload, started) VALUES (?, ?, ?, ?, ?)",
      )
      .run(m.old, m.new, m.node, m.workload, m.started);
  }

  dropMove(old: string): void {
    this.#db.query("DELETE FROM failover_moves WHERE old = ?").run(old);
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

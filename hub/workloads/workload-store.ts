// Workloads and their allocations in the hub database.
import { randomBytes } from "node:crypto";
import type { AllocSpec, AllocStatusName, WorkloadSpec } from "../../shared/workload/index.ts";
import { forUpdate, textOrder } from "../store/sql/dialect.ts";
import type { HubSql } from "../store/sql/index.ts";

export type RolloutState =
  | { state: "idle" }
  | {
      state: "rolling" | "canary" | "blue-green";
      from: number;
      to: number;
      step_started: number;
      message?: string;
      /**
       * Copies stopped first because old and new take the same fixed port: their nodes get the new
       * version once each stopped copy has reported that it stopped.
       */
      handoff?: { node: string; stopped: string }[];
    }
  | { state: "awaiting-promotion"; from: number; to: number; step_started: number; message?: string }
  | { state: "rolled-back" | "failed"; from: number; to: number; message: string };

export interface WorkloadRecord {
  name: string;
  version: number;
  spec: WorkloadSpec;
  previous_spec: WorkloadSpec | null;
  rollout: RolloutState;
  created: number;
  updated: number;
}

export interface AllocRecord {
  id: string;
  workload: string;
  node: string;
  version: number;
  spec: WorkloadSpec;
  desired: "run" | "stop";
  status: AllocStatusName;
  message: string | null;
  generation: number;
  pid: number | null;
  restarts: number;
  healthy: boolean | null;
  running_since: number | null;
  exit_code: number | null;
  signal: string | null;
  duration_ms: number | null;
  output_tail: string | null;
  created: number;
  updated: number;
}

interface AllocRow extends Omit<AllocRecord, "spec" | "healthy"> {
  spec: string;
  healthy: number | null;
}

const toAlloc = (r: AllocRow): AllocRecord => ({
  ...r,
  spec: JSON.parse(r.spec),
  healthy: r.healthy === null ? null : r.healthy !== 0,
});

type WorkloadRow = Omit<WorkloadRecord, "spec" | "previous_spec" | "rollout"> & {
  spec: string;
  previous_spec: string | null;
  rollout: string;
};

const toWorkload = (r: WorkloadRow): WorkloadRecord => {
  const { placement: _, ...rest } = r as WorkloadRow & { placement?: unknown };
  return {
    ...rest,
    spec: JSON.parse(r.spec),
    previous_spec: r.previous_spec ? JSON.parse(r.previous_spec) : null,
    rollout: JSON.parse(r.rollout),
  };
};

/** What the hub's synchronous readers (federation's summary) see: read again after each change, and every second. */
export interface WorkloadView {
  workloads: readonly WorkloadRecord[];
  /** Every allocation wanted running. */
  active: readonly AllocRecord[];
}

/**
 * Persistence of workloads, allocations and per-node generations. Reads take the handle to read through
 * (a transaction's, or the store's own); writes take the transaction's. The controller decides from
 * reads inside its own transaction, under the workload's row lock.
 */
export class WorkloadStore {
  readonly sql: HubSql;
  readonly #now: () => number;
  #view: WorkloadView = { workloads: [], active: [] };

  constructor(sql: HubSql, now: () => number = Date.now) {
    this.sql = sql;
    this.#now = now;
  }

  /** The workloads and active allocations as last read by `refreshView` (for synchronous readers). */
  get view(): WorkloadView {
    return this.#view;
  }

  /** Reads the view again. */
  async refreshView(): Promise<void> {
    const [workloads, active] = await Promise.all([this.list(), this.activeAllocs()]);
    this.#view = { workloads, active };
  }

  async get(name: string, via: HubSql = this.sql): Promise<WorkloadRecord | undefined> {
    const r = await via.get<WorkloadRow>("SELECT * FROM workloads WHERE name = ?", [name]);
    return r ? toWorkload(r) : undefined;
  }

  /**
   * The workload, its row locked until `tx` ends (PostgreSQL; SQLite's write transaction excludes
   * every other writer already): what two replicas decide about one workload, they decide in turn.
   */
  async lock(tx: HubSql, name: string): Promise<WorkloadRecord | undefined> {
    const r = await tx.get<WorkloadRow>(`SELECT * FROM workloads WHERE name = ?${forUpdate(tx.dialect)}`, [
      name,
    ]);
    return r ? toWorkload(r) : undefined;
  }

  async list(via: HubSql = this.sql): Promise<WorkloadRecord[]> {
    const rows = await via.all<WorkloadRow>(
      `SELECT * FROM workloads ORDER BY ${textOrder(via.dialect, "name")}`,
    );
    return rows.map(toWorkload);
  }

  /** Inserts a workload at version 1; false when one of that name exists. */
  async insert(tx: HubSql, spec: WorkloadSpec): Promise<boolean> {
    const now = this.#now();
    const r = await tx.run(
      "INSERT INTO workloads (name, version, spec, created, updated) VALUES (?, 1, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
      [spec.name, JSON.stringify(spec), now, now],
    );
    return r.changes > 0;
  }

  /** Stores a new version; the one it replaces is kept for rollback. */
  async update(
    tx: HubSql,
    name: string,
    spec: WorkloadSpec,
    version: number,
    previous: WorkloadSpec | null,
    rollout: RolloutState,
  ): Promise<void> {
    await tx.run(
      "UPDATE workloads SET spec = ?, version = ?, previous_spec = ?, rollout = ?, updated = ? WHERE name = ?",
      [
        JSON.stringify(spec),
        version,
        previous ? JSON.stringify(previous) : null,
        JSON.stringify(rollout),
        this.#now(),
        name,
      ],
    );
  }

  async setRollout(tx: HubSql, name: string, rollout: RolloutState): Promise<void> {
    await tx.run("UPDATE workloads SET rollout = ?, updated = ? WHERE name = ?", [
      JSON.stringify(rollout),
      this.#now(),
      name,
    ]);
  }

  async delete(tx: HubSql, name: string): Promise<void> {
    await tx.run("DELETE FROM workloads WHERE name = ?", [name]);
  }

  /** Creates an allocation of `spec` at `version` on `node`, wanted running; returns its id. */
  async createAlloc(
    tx: HubSql,
    workload: string,
    node: string,
    version: number,
    spec: WorkloadSpec,
  ): Promise<string> {
    const id = `${workload}-v${version}-${randomBytes(4).toString("hex")}`;
    const now = this.#now();
    await tx.run(
      "INSERT INTO allocs (id, workload, node, version, spec, desired, created, updated) VALUES (?, ?, ?, ?, ?, 'run', ?, ?)",
      [id, workload, node, version, JSON.stringify(spec), now, now],
    );
    return id;
  }

  async alloc(id: string, via: HubSql = this.sql): Promise<AllocRecord | undefined> {
    const r = await via.get<AllocRow>("SELECT * FROM allocs WHERE id = ?", [id]);
    return r ? toAlloc(r) : undefined;
  }

  async allocsOf(workload: string, via: HubSql = this.sql): Promise<AllocRecord[]> {
    const rows = await via.all<AllocRow>(
      `SELECT * FROM allocs WHERE workload = ? ORDER BY created, ${textOrder(via.dialect, "id")}`,
      [workload],
    );
    return rows.map(toAlloc);
  }

  /** Every allocation wanted running, on any node. */
  async activeAllocs(via: HubSql = this.sql): Promise<AllocRecord[]> {
    const rows = await via.all<AllocRow>(
      `SELECT * FROM allocs WHERE desired = 'run' ORDER BY created, ${textOrder(via.dialect, "id")}`,
    );
    return rows.map(toAlloc);
  }

  /** The explanation of the workload's last placement, as stored. */
  async placement(name: string, via: HubSql = this.sql): Promise<unknown> {
    const r = await via.get<{ placement: string | null }>("SELECT placement FROM workloads WHERE name = ?", [
      name,
    ]);
    return r?.placement ? JSON.parse(r.placement) : null;
  }

  async setPlacement(tx: HubSql, name: string, plan: unknown): Promise<void> {
    await tx.run("UPDATE workloads SET placement = ? WHERE name = ?", [JSON.stringify(plan), name]);
  }

  async allocsOnNode(node: string, via: HubSql = this.sql): Promise<AllocRecord[]> {
    const rows = await via.all<AllocRow>(
      `SELECT * FROM allocs WHERE node = ? ORDER BY created, ${textOrder(via.dialect, "id")}`,
      [node],
    );
    return rows.map(toAlloc);
  }

  /** The node's desired set, as sent in an `allocs` message. */
  async desiredOn(node: string, via: HubSql = this.sql): Promise<AllocSpec[]> {
    const rows = await via.all<AllocRow>(
      `SELECT * FROM allocs WHERE node = ? AND desired = 'run' ORDER BY created, ${textOrder(via.dialect, "id")}`,
      [node],
    );
    return rows.map((r) => ({
      id: r.id,
      workload: r.workload,
      version: r.version,
      spec: JSON.parse(r.spec),
    }));
  }

  async setDesired(tx: HubSql, id: string, desired: "run" | "stop"): Promise<void> {
    await tx.run("UPDATE allocs SET desired = ?, updated = ? WHERE id = ?", [desired, this.#now(), id]);
  }

  /** Records what an agent reported about an allocation. */
  async report(
    tx: HubSql,
    id: string,
    r: { status: AllocStatusName; message?: string; pid?: number; restarts?: number; healthy?: boolean },
  ): Promise<void> {
    const now = this.#now();
    const healthy = r.healthy === undefined ? null : r.healthy ? 1 : 0;
    await tx.run(
      `UPDATE allocs SET status = ?, message = ?, pid = coalesce(?, pid),
         restarts = coalesce(?, restarts),
         -- A report without a health verdict keeps the last one (a task stopped for being unhealthy
         -- reports "failed" without repeating it); a task starting afresh has none yet.
         -- Typed: PostgreSQL cannot tell the type of a parameter that is only ever NULL.
         healthy = CASE WHEN CAST(? AS INTEGER) IS NOT NULL THEN CAST(? AS INTEGER)
                        WHEN ? = 'running' AND status != 'running' THEN NULL
                        ELSE healthy END,
         running_since = CASE WHEN ? = 'running' THEN coalesce(running_since, ?) ELSE NULL END,
         updated = ? WHERE id = ?`,
      [
        r.status,
        r.message ?? null,
        r.pid ?? null,
        r.restarts ?? null,
        healthy,
        healthy,
        r.status,
        r.status,
        now,
        now,
        id,
      ],
    );
  }

  /** Failover marks a copy lost: its status only (its start time stays, for `longest_running`). */
  async markLost(tx: HubSql, id: string, message: string): Promise<void> {
    await tx.run("UPDATE allocs SET status = 'lost', message = ?, updated = ? WHERE id = ?", [
      message,
      this.#now(),
      id,
    ]);
  }

  /** Failover takes a lost mark back: the status the copy had before, unless the node has reported since. */
  async restoreStatus(tx: HubSql, id: string, status: AllocStatusName, lostMessage: string): Promise<void> {
    await tx.run(
      "UPDATE allocs SET status = ?, message = NULL, updated = ? WHERE id = ? AND status = 'lost' AND message = ?",
      [status, this.#now(), id, lostMessage],
    );
  }

  /** Records a job's outcome. */
  async result(
    tx: HubSql,
    id: string,
    r: { exit_code: number | null; signal?: string; duration_ms: number; output_tail: string },
  ): Promise<void> {
    await tx.run(
      "UPDATE allocs SET exit_code = ?, signal = ?, duration_ms = ?, output_tail = ?, updated = ? WHERE id = ?",
      [r.exit_code, r.signal ?? null, r.duration_ms, r.output_tail, this.#now(), id],
    );
  }

  /** Sets the node's generation (only ever upwards). */
  async setGeneration(tx: HubSql, node: string, generation: number): Promise<void> {
    await tx.run(
      `INSERT INTO node_generations (node, generation) VALUES (?, ?)
       ON CONFLICT (node) DO UPDATE SET generation = CASE
         WHEN excluded.generation > node_generations.generation THEN excluded.generation
         ELSE node_generations.generation END`,
      [node, generation],
    );
  }

  /**
   * The node's generation. `share`: inside a transaction, hold the row until it ends (PostgreSQL), so a
   * bump another transaction has begun is committed first and none begins meanwhile.
   */
  async generation(node: string, via: HubSql = this.sql, share = false): Promise<number> {
    const lock = share && via.dialect === "postgres" ? " FOR SHARE" : "";
    const row = await via.get<{ generation: number }>(
      `SELECT generation FROM node_generations WHERE node = ?${lock}`,
      [node],
    );
    return row?.generation ?? 0;
  }

  /** Bumps the node's generation and stamps it on the allocations the node is to run; returns it. */
  async bumpGeneration(tx: HubSql, node: string): Promise<number> {
    const row = await tx.get<{ generation: number }>(
      `INSERT INTO node_generations (node, generation) VALUES (?, 1)
       ON CONFLICT (node) DO UPDATE SET generation = node_generations.generation + 1 RETURNING generation`,
      [node],
    );
    const generation = row!.generation;
    await tx.run("UPDATE allocs SET generation = ? WHERE node = ? AND desired = 'run'", [generation, node]);
    return generation;
  }

  /** Forgets stopped allocations that the node no longer runs (kept for a while for the API). */
  async pruneStopped(tx: HubSql, olderThanMs: number): Promise<void> {
    await tx.run("DELETE FROM allocs WHERE desired = 'stop' AND updated < ?", [this.#now() - olderThanMs]);
  }
}

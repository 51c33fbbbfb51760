// Workloads and their allocations in the hub database.
import type { Database } from "bun:sqlite";
import { randomBytes } from "node:crypto";
import type { AllocSpec, AllocStatusName, WorkloadSpec } from "../../shared/workload/index.ts";

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

/** Persistence of workloads, allocations and per-node generations. */
export class WorkloadStore {
  readonly db: Database;
  readonly #now: () => number;

  constructor(db: Database, now: () => number = Date.now) {
    this.db = db;
    this.#now = now;
  }

  get(name: string): WorkloadRecord | undefined {
    const r = this.db.query("SELECT * FROM workloads WHERE name = ?").get(name) as
      | (Omit<WorkloadRecord, "spec" | "previous_spec" | "rollout"> & {
          spec: string;
          previous_spec: string | null;
          rollout: string;
        })
      | null;
    if (!r) return undefined;
    return {
      ...r,
      spec: JSON.parse(r.spec),
      previous_spec: r.previous_spec ? JSON.parse(r.previous_spec) : null,
      rollout: JSON.parse(r.rollout),
    };
  }

  list(): WorkloadRecord[] {
    const names = this.db.query("SELECT name FROM workloads ORDER BY name").all() as { name: string }[];
    return names.map((n) => this.get(n.name)!);
  }

  insert(spec: WorkloadSpec): WorkloadRecord {
    const now = this.#now();
    this.db
      .query("INSERT INTO workloads (name, version, spec, created, updated) VALUES (?, 1, ?, ?, ?)")
      .run(spec.name, JSON.stringify(spec), now, now);
    return this.get(spec.name)!;
  }

  /** Stores a new version; the one it replaces is kept for rollback. */
  update(
    name: string,
    spec: WorkloadSpec,
    version: number,
    previous: WorkloadSpec | null,
    rollout: RolloutState,
  ): void {
    this.db
      .query(
        "UPDATE workloads SET spec = ?, version = ?, previous_spec = ?, rollout = ?, updated = ? WHERE name = ?",
      )
      .run(
        JSON.stringify(spec),
        version,
        previous ? JSON.stringify(previous) : null,
        JSON.stringify(rollout),
        this.#now(),
        name,
      );
  }

  setRollout(name: string, rollout: RolloutState): void {
    this.db
      .query("UPDATE workloads SET rollout = ?, updated = ? WHERE name = ?")
      .run(JSON.stringify(rollout), this.#now(), name);
  }

  delete(name: string): void {
    this.db.query("DELETE FROM workloads WHERE name = ?").run(name);
  }

  /** Creates an allocation of `spec` at `version` on `node`, wanted running. */
  createAlloc(workload: string, node: string, version: number, spec: WorkloadSpec): AllocRecord {
    const id = `${workload}-v${version}-${randomBytes(4).toString("hex")}`;
    const now = this.#now();
    this.db
      .query(
        "INSERT INTO allocs (id, workload, node, version, spec, desired, created, updated) VALUES (?, ?, ?, ?, ?, 'run', ?, ?)",
      )
      .run(id, workload, node, version, JSON.stringify(spec), now, now);
    return this.alloc(id)!;
  }

  alloc(id: string): AllocRecord | undefined {
    const r = this.db.query("SELECT * FROM allocs WHERE id = ?").get(id) as AllocRow | null;
    return r ? toAlloc(r) : undefined;
  }

  allocsOf(workload: string): AllocRecord[] {
    return (
      this.db
        .query("SELECT * FROM allocs WHERE workload = ? ORDER BY created, id")
        .all(workload) as AllocRow[]
    ).map(toAlloc);
  }

  /** Every allocation wanted running, on any node. */
  activeAllocs(): AllocRecord[] {
    return (this.db.query("SELECT * FROM allocs WHERE desired = 'run'").all() as AllocRow[]).map(toAlloc);
  }

  /** The explanation of the workload's last placement, as stored. */
  placement(name: string): unknown {
    const r = this.db.query("SELECT placement FROM workloads WHERE name = ?").get(name) as {
      placement: string | null;
    } | null;
    return r?.placement ? JSON.parse(r.placement) : null;
  }

  setPlacement(name: string, plan: unknown): void {
    this.db.query("UPDATE workloads SET placement = ? WHERE name = ?").run(JSON.stringify(plan), name);
  }

  allocsOnNode(node: string): AllocRecord[] {
    return (
      this.db.query("SELECT * FROM allocs WHERE node = ? ORDER BY created, id").all(node) as AllocRow[]
    ).map(toAlloc);
  }

  /** The node's desired set, as sent in an `allocs` message. */
  desiredOn(node: string): AllocSpec[] {
    const rows = this.db
      .query("SELECT * FROM allocs WHERE node = ? AND desired = 'run' ORDER BY created, id")
      .all(node) as AllocRow[];
    return rows.map((r) => ({
      id: r.id,
      workload: r.workload,
      version: r.version,
      spec: JSON.parse(r.spec),
    }));
  }

  setDesired(id: string, desired: "run" | "stop"): void {
    this.db.query("UPDATE allocs SET desired = ?, updated = ? WHERE id = ?").run(desired, this.#now(), id);
  }

  /** Records what an agent reported about an allocation. */
  report(
    id: string,
    r: { status: AllocStatusName; message?: string; pid?: number; restarts?: number; healthy?: boolean },
  ): void {
    const now = this.#now();
    this.db
      .query(
        `UPDATE allocs SET status = $status, message = $message, pid = coalesce($pid, pid),
           restarts = coalesce($restarts, restarts),
           -- A report without a health verdict keeps the last one (a task stopped for being unhealthy
           -- reports "failed" without repeating it); a task starting afresh has none yet.
           healthy = CASE WHEN $healthy IS NOT NULL THEN $healthy
                          WHEN $status = 'running' AND status != 'running' THEN NULL
                          ELSE healthy END,
           running_since = CASE WHEN $status = 'running' THEN coalesce(running_since, $now) ELSE NULL END,
           updated = $now WHERE id = $id`,
      )
      .run({
        id,
        status: r.status,
        message: r.message ?? null,
        pid: r.pid ?? null,
        restarts: r.restarts ?? null,
        healthy: r.healthy === undefined ? null : r.healthy ? 1 : 0,
        now,
      });
  }

  /** Failover marks a copy lost: its status only (its start time stays, for `longest_running`). */
  markLost(id: string, message: string): void {
    this.db
      .query("UPDATE allocs SET status = 'lost', message = ?, updated = ? WHERE id = ?")
      .run(message, this.#now(), id);
  }

  /** Failover takes a lost mark back: the status the copy had before, unless the node has reported since. */
  restoreStatus(id: string, status: AllocStatusName, lostMessage: string): void {
    this.db
      .query(
        "UPDATE allocs SET status = ?, message = NULL, updated = ? WHERE id = ? AND status = 'lost' AND message = ?",
      )
      .run(status, this.#now(), id, lostMessage);
  }

  /** Records a job's outcome. */
  result(
    id: string,
    r: { exit_code: number | null; signal?: string; duration_ms: number; output_tail: string },
  ): void {
    this.db
      .query(
        "UPDATE allocs SET exit_code = ?, signal = ?, duration_ms = ?, output_tail = ?, updated = ? WHERE id = ?",
      )
      .run(r.exit_code, r.signal ?? null, r.duration_ms, r.output_tail, this.#now(), id);
  }

  /** Bumps and returns the node's generation, stamping it on the node's allocations that changed. */
  nextGeneration(node: string): number {
    const row = this.db
      .query(
        `INSERT INTO node_generations (node, generation) VALUES (?, 1)
         ON CONFLICT(node) DO UPDATE SET generation = generation + 1 RETURNING generation`,
      )
      .get(node) as { generation: number };
    return row.generation;
  }

  /** Sets the node's generation (only ever upwards). */
  setGeneration(node: string, generation: number): void {
    this.db
      .query(
        `INSERT INTO node_generations (node, generation) VALUES (?, ?)
         ON CONFLICT(node) DO UPDATE SET generation = max(generation, excluded.generation)`,
      )
      .run(node, generation);
  }

  generation(node: string): number {
    const row = this.db.query("SELECT generation FROM node_generations WHERE node = ?").get(node) as {
      generation: number;
    } | null;
    return row?.generation ?? 0;
  }

  /** Bumps the node's generation and stamps it on the allocations the node is to run; returns it. */
  bumpGeneration(node: string): number {
    const generation = this.nextGeneration(node);
    this.db
      .query("UPDATE allocs SET generation = ? WHERE node = ? AND desired = 'run'")
      .run(generation, node);
    return generation;
  }

  /** Forgets stopped allocations that the node no longer runs (kept for a while for the API). */
  pruneStopped(olderThanMs: number): void {
    this.db.query("DELETE FROM allocs WHERE desired = 'stop' AND updated < ?").run(this.#now() - olderThanMs);
  }
}

// Allocation state in the agent's SQLite file: the desired allocs and, per alloc, what runs and how it went.
import type { Database, Statement } from "bun:sqlite";
import type { AllocSpec, AllocStatusName } from "../../shared/workload/index.ts";
import type { TaskResultEvent } from "./types.ts";

/** One alloc as stored: the desired spec and the runtime facts a restarted agent needs. */
export interface TaskRow {
  alloc: string;
  spec: AllocSpec;
  /** Generation of the last desired set that contained this alloc. */
  generation: number;
  /** False once the hub's set no longer has it: being stopped, the row goes when it has stopped. */
  desired: boolean;
  status: AllocStatusName;
  message: string | null;
  pid: number | null;
  pidStart: number | null;
  bootId: string | null;
  /** Version of the spec the process at `pid` was started from. */
  runVersion: number | null;
  /** When the last start of this version was attempted (null: never started). */
  startedMs: number | null;
  restarts: number;
  /**
   * The intent of a start, saved before the process exists: the id the process carries in its
   * environment (NOVACRON_LAUNCH). Cleared once its pid is saved; still set after a crash in between,
   * so the next start can tell a process it started from none (see findLaunched in proc.ts).
   */
  launchId: string | null;
  /** Should a process run (exec: running or waiting out a back-off; job: not finished). */
  wantRun: boolean;
  /** Job: its result is known; it never runs again (for this version). */
  finished: boolean;
  result: TaskResultEvent | null;
  /** Job: onResult was delivered (else it is delivered again on start). */
  reported: boolean;
  paused: boolean;
  /** Stopped by a local rule (stopBelow) until resumeAll. */
  held: boolean;
}

interface RawRow {
  alloc: string;
  spec: string;
  generation: number;
  desired: number;
  status: string;
  message: string | null;
  pid: number | null;
  pid_start: number | null;
  boot_id: string | null;
  run_version: number | null;
  started_ms: number | null;
  launch_id: string | null;
  restarts: number;
  want_run: number;
  finished: number;
  result: string | null;
  reported: number;
  paused: number;
  held: number;
}

const COLUMNS = [
  "alloc",
  "spec",
  "generation",
  "desired",
  "status",
  "message",
  "pid",
  "pid_start",
  "boot_id",
  "run_version",
  "started_ms",
  "launch_id",
  "restarts",
  "want_run",
  "finished",
  "result",
  "reported",
  "paused",
  "held",
] as const;

/** The task tables (task_allocs, task_meta) in the agent's database. */
export class TaskStore {
  readonly #db: Database;
  readonly #all: Statement;
  readonly #save: Statement;
  readonly #delete: Statement;
  readonly #getMeta: Statement;
  readonly #setMeta: Statement;

  constructor(db: Database) {
    this.#db = db;
    db.run(`CREATE TABLE IF NOT EXISTS task_allocs (
      alloc TEXT PRIMARY KEY, spec TEXT NOT NULL, generation INTEGER NOT NULL, desired INTEGER NOT NULL,
      status TEXT NOT NULL, message TEXT, pid INTEGER, pid_start INTEGER, boot_id TEXT, run_version INTEGER,
      started_ms INTEGER, restarts INTEGER NOT NULL, want_run INTEGER NOT NULL, finished INTEGER NOT NULL,
      result TEXT, reported INTEGER NOT NULL, paused INTEGER NOT NULL, held INTEGER NOT NULL)`);
    db.run("CREATE TABLE IF NOT EXISTS task_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
    // Added after the table first shipped.
    const columns = db.query("PRAGMA table_info(task_allocs)").all() as { name: string }[];
    if (!columns.some((c) => c.name === "launch_id"))
      db.run("ALTER TABLE task_allocs ADD COLUMN launch_id TEXT");
    this.#all = db.query(`SELECT ${COLUMNS.join(", ")} FROM task_allocs ORDER BY alloc`);
    this.#save = db.query(
      `INSERT OR REPLACE INTO task_allocs (${COLUMNS.join(", ")}) VALUES (${COLUMNS.map(() => "?").join(", ")})`,
    );
    this.#delete = db.query("DELETE FROM task_allocs WHERE alloc = ?");
    this.#getMeta = db.query("SELECT value FROM task_meta WHERE key = ?");
    this.#setMeta = db.query(
      "INSERT INTO task_meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    );
  }

  /** Every stored alloc. */
  all(): TaskRow[] {
    return (this.#all.all() as RawRow[]).map(fromRaw);
  }

  save(row: TaskRow): void {
    this.#save.run(
      row.alloc,
      JSON.stringify(row.spec),
      row.generation,
      row.desired ? 1 : 0,
      row.status,
      row.message,
      row.pid,
      row.pidStart,
      row.bootId,
      row.runVersion,
      row.startedMs,
      row.launchId,
      row.restarts,
      row.wantRun ? 1 : 0,
      row.finished ? 1 : 0,
      row.result ? JSON.stringify(row.result) : null,
      row.reported ? 1 : 0,
      row.paused ? 1 : 0,
      row.held ? 1 : 0,
    );
  }

  delete(alloc: string): void {
    this.#delete.run(alloc);
  }

  /** A number kept in task_meta (applied generation, rule thresholds). */
  getNumber(key: string, fallback: number): number {
    const row = this.#getMeta.get(key) as { value: string } | null;
    return row ? Number(row.value) : fallback;
  }

  setNumber(key: string, value: number): void {
    this.#setMeta.run(key, String(value));
  }

  /** Runs `fn` in one transaction. */
  transaction(fn: () => void): void {
    this.#db.transaction(fn)();
  }
}

function fromRaw(r: RawRow): TaskRow {
  return {
    alloc: r.alloc,
    spec: JSON.parse(r.spec) as AllocSpec,
    generation: r.generation,
    desired: r.desired === 1,
    status: r.status as AllocStatusName,
    message: r.message,
    pid: r.pid,
    pidStart: r.pid_start,
    bootId: r.boot_id,
    runVersion: r.run_version,
    startedMs: r.started_ms,
    launchId: r.launch_id,
    restarts: r.restarts,
    wantRun: r.want_run === 1,
    finished: r.finished === 1,
    result: r.result ? (JSON.parse(r.result) as TaskResultEvent) : null,
    reported: r.reported === 1,
    paused: r.paused === 1,
    held: r.held === 1,
  };
}

/** A fresh row for a newly assigned alloc. */
export function newRow(spec: AllocSpec, generation: number): TaskRow {
  return {
    alloc: spec.id,
    spec,
    generation,
    desired: true,
    status: "pending",
    message: null,
    pid: null,
    pidStart: null,
    bootId: null,
    runVersion: null,
    startedMs: null,
    launchId: null,
    restarts: 0,
    wantRun: true,
    finished: false,
    result: null,
    reported: false,
    paused: false,
    held: false,
  };
}

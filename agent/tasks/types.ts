// The task runner's public types: what it reports (status and job results) and how a task looks from outside.
import type { AllocStatusName } from "../../shared/workload/index.ts";

/** A change of an alloc's state, for the hub (sent through the outbox). */
export interface TaskStatusEvent {
  alloc: string;
  workload: string;
  version: number;
  status: AllocStatusName;
  /** Generation of the last desired set that contained the alloc. */
  generation: number;
  message?: string;
  pid?: number;
  restarts: number;
  /** Present once a health check has given a verdict. */
  healthy?: boolean;
}

/** A job's outcome, reported once (`task_result`). */
export interface TaskResultEvent {
  alloc: string;
  workload: string;
  /** null when killed by a signal, or when the status is unknown (see `signal` and the status message). */
  exit_code: number | null;
  signal?: string;
  duration_ms: number;
  /** Last 4 KiB of combined stdout and stderr. */
  output_tail: string;
  started_ms: number;
}

/** Where the task runner reports; both are called synchronously and must not throw (errors are logged). */
export interface TaskEvents {
  onStatus(e: TaskStatusEvent): void;
  /**
   * Called inside the SQLite transaction that records the result (on the database the manager was
   * given): a write to the same database, such as an outbox append, commits with it or not at all.
   * It must not send anything before that commit.
   */
  onResult(e: TaskResultEvent): void;
}

/** One task as `GET /v1/tasks` shows it. */
export interface TaskView {
  alloc: string;
  workload: string;
  version: number;
  status: string;
  pid: number | null;
  restarts: number;
  healthy: boolean | null;
  priority: number;
  paused: boolean;
}

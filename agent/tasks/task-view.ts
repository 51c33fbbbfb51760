// How a task looks from outside: its row, pid and health as a TaskView (GET /v1/tasks) or a TaskStatusEvent (to the hub).
import type { TaskRow } from "./task-store.ts";
import type { TaskStatusEvent, TaskView } from "./types.ts";

/** The task for the local API; while a replacement is under way, the version that runs is the old one. */
export function taskView(row: Readonly<TaskRow>, pid: number | null, healthy: boolean | null): TaskView {
  return {
    alloc: row.alloc,
    workload: row.spec.workload,
    version: pid !== null && row.runVersion !== null ? row.runVersion : row.spec.version,
    status: row.status,
    pid,
    restarts: row.restarts,
    healthy,
    priority: row.spec.spec.priority,
    paused: row.paused,
  };
}

/** The status report for the hub; optional fields only when they say something. */
export function statusEvent(
  row: Readonly<TaskRow>,
  pid: number | null,
  healthy: boolean | null,
): TaskStatusEvent {
  return {
    alloc: row.alloc,
    workload: row.spec.workload,
    version: row.spec.version,
    status: row.status,
    generation: row.generation,
    restarts: row.restarts,
    ...(row.message ? { message: row.message } : {}),
    ...(pid !== null ? { pid } : {}),
    ...(healthy !== null ? { healthy } : {}),
  };
}

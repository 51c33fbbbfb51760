// Public surface of the agent's workload runner: exec and job tasks, supervised, limited, logged and re-adopted.
export { TaskManager, type TaskManagerOptions } from "./task-manager.ts";
export type { TaskEvents, TaskResultEvent, TaskStatusEvent, TaskView } from "./types.ts";
export { type Fenceable, Fencing, type FencingOptions } from "./fencing.ts";
export { TasksModule, type TasksModuleDeps } from "./tasks-module.ts";

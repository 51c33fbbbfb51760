// What each task needs from its manager: store, cgroups, reports, clock and settings, all injected.
import type { Clock } from "../../shared/clock.ts";
import type { Logger } from "../../shared/log.ts";
import type { Cgroups } from "./cgroup.ts";
import type { Task } from "./task.ts";
import type { TaskStore } from "./task-store.ts";
import type { TaskEvents } from "./types.ts";

/** What a task needs from its manager; everything is injected. */
export interface TaskContext {
  readonly log: Logger;
  readonly store: TaskStore;
  readonly cgroups: Cgroups;
  readonly events: TaskEvents;
  readonly dataDir: string;
  readonly bootId: string;
  readonly adoptPollMs: number;
  readonly logMaxBytes: number;
  readonly agentEnv: Record<string, string | undefined>;
  /** Aborted by TaskManager.stop(): from then on a task neither acts nor writes. */
  readonly signal: AbortSignal;
  readonly clock: Clock;
  /** Tasks with a priority below this start paused (a pause rule is active). */
  pauseThreshold(): number;
  forget(task: Task): void;
}

// The shapes the rule engine reads and produces: snapshots in, decisions (with their actions) out.

/** Alert severities a rule may raise. */
export const SEVERITIES = ["info", "warning", "critical"] as const;
export type Severity = (typeof SEVERITIES)[number];

/** The agent's own state, as conditions see it through `state.<name>`. */
export interface AgentState {
  /** Whether the link to a hub is up (a condition reads it as 1 or 0). */
  readonly connected: boolean;
  /** Seconds since the link went down; 0 while connected. */
  readonly offline_s: number;
  /** Offline buffer use, 0..1 of its byte budget. */
  readonly buffer_fill: number;
  readonly tasks_running: number;
  readonly tasks_paused: number;
}

/** The state variables a condition may name, without the `state.` prefix. */
export const STATE_VARS = [
  "connected",
  "offline_s",
  "buffer_fill",
  "tasks_running",
  "tasks_paused",
] as const satisfies readonly (keyof AgentState)[];
export type StateVar = (typeof STATE_VARS)[number];

/** What one evaluation sees: the latest value of every series (key as the collector writes it) and the agent state. */
export interface Snapshot {
  readonly values: ReadonlyMap<string, number>;
  readonly state: AgentState;
}

/**
 * What a decision asks the agent to do. The engine only decides; a thin layer applies these.
 * Task actions take effect on tasks whose priority is below `below`.
 */
export type Action =
  | { readonly type: "alert"; readonly message: string; readonly severity: Severity }
  /** Clears the alert raised by `rule` (the deciding rule itself unless another is named). */
  | { readonly type: "clear_alert"; readonly rule: string }
  | { readonly type: "pause_tasks"; readonly below: number }
  /** Releases what this rule paused or stopped. */
  | { readonly type: "resume_tasks" }
  | { readonly type: "stop_tasks"; readonly below: number }
  | { readonly type: "evict_cache"; readonly fraction: number }
  | { readonly type: "evict_cache"; readonly prefix: string }
  | { readonly type: "downsample_buffer" }
  | { readonly type: "prune_buffer"; readonly older_than_ms: number }
  | { readonly type: "set_sample_interval"; readonly interval_ms: number }
  | { readonly type: "request_migration"; readonly reason: string };
export type ActionType = Action["type"];

/** A rule changing state: it fired (its condition held for `for`) or cleared (its clear condition held for `clear_for`). */
export interface Decision {
  readonly rule: string;
  /** Time of the evaluation that decided, in ms since the epoch. */
  readonly at: number;
  readonly kind: "fire" | "clear";
  /** "condition": the rule's own condition decided; "reload": a firing rule removed or changed by a new config. */
  readonly cause: "condition" | "reload";
  readonly actions: readonly Action[];
  /**
   * Every series and state value the deciding condition reads (`state.*` keys for the agent state),
   * at `at`; null for a series missing from the snapshot. Empty for a clear caused by a reload.
   */
  readonly inputs: Readonly<Record<string, number | null>>;
}

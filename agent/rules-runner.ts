// Runs the offline rules on every tick and applies their decisions: tasks, alerts, sampling, reports.
import type { Logger } from "../shared/log.ts";
import type { MessageType } from "../shared/protocol/index.ts";
import {
  type Action,
  type AgentState,
  compileRules,
  type Decision,
  DecisionLog,
  RuleEngine,
  validationBody,
} from "../shared/rules/index.ts";
import { systemClock } from "../shared/clock.ts";
import type { Database } from "bun:sqlite";
import type { LocalCache } from "./cache/index.ts";
import type { TaskManager } from "./tasks/index.ts";

export interface RulesRunnerDeps {
  db: Database;
  log: Logger;
  tasks: () => TaskManager | undefined;
  cache: () => LocalCache | undefined;
  /** Puts a must-deliver message into the outbox. */
  report: (type: MessageType, body: object) => void;
  /** A rule asked for another sampling interval (undefined: back to the configured one). */
  setSampleInterval: (ms: number | undefined) => void;
}

/** The agent's rule engine with its decision log; everything it decides is logged and reported. */
export class RulesRunner {
  readonly #engine: RuleEngine;
  readonly #decisions: DecisionLog;
  readonly #d: RulesRunnerDeps;
  // Task holds per rule, so one rule clearing does not release what another still holds.
  readonly #pauses = new Map<string, number>();
  readonly #stops = new Map<string, number>();

  constructor(rules: unknown, deps: RulesRunnerDeps) {
    this.#d = deps;
    this.#engine = new RuleEngine(compileRules(rules), systemClock);
    this.#decisions = new DecisionLog(deps.db);
    const restored = this.#engine.restoreState(this.#decisions.loadState());
    if (restored > 0) deps.log.info("rules resumed from the local store", { rules: restored });
  }

  /** Evaluates every rule against one tick. */
  evaluate(values: Record<string, number>, state: AgentState, now: number): void {
    const decisions = this.#engine.evaluate({ values: new Map(Object.entries(values)), state }, now);
    if (decisions.length > 0) this.#handle(decisions);
  }

  /** Hot reload: rules whose condition did not change keep their state. */
  replace(rules: unknown): void {
    const decisions = this.#engine.replace(compileRules(rules));
    this.#handle(decisions);
    this.#decisions.saveState(this.#engine.snapshotState());
  }

  /** The decision log, newest first, for the local API. */
  list(limit: number): ReturnType<DecisionLog["list"]> {
    return this.#decisions.list({ limit });
  }

  #handle(decisions: readonly Decision[]): void {
    const ids = this.#decisions.record(decisions, this.#engine.snapshotState());
    for (const d of decisions) {
      this.#d.log.info(`rule ${d.kind === "fire" ? "fired" : "cleared"}`, {
        rule: d.rule,
        actions: d.actions.length,
      });
      for (const a of d.actions) this.#apply(d, a);
      // The outbox delivers it exactly once, whenever the hub is reachable again.
      this.#d.report("decision_validation", { ...validationBody(d), kind: d.kind });
    }
    this.#decisions.markValidated(ids);
  }

  #apply(d: Decision, a: Action): void {
    const tasks = this.#d.tasks();
    switch (a.type) {
      case "alert":
        this.#d.report("event", {
          kind: "alert",
          at: d.at,
          message: a.message,
          fields: { severity: a.severity, source: `rule:${d.rule}`, inputs: d.inputs },
        });
        return;
      case "clear_alert":
        this.#d.report("event", {
          kind: "alert_clear",
          at: d.at,
          message: `cleared: ${a.rule}`,
          fields: { source: `rule:${a.rule}` },
        });
        return;
      case "pause_tasks":
        this.#pauses.set(d.rule, a.below);
        tasks?.pauseBelow(Math.max(...this.#pauses.values()));
        return;
      case "stop_tasks":
        this.#stops.set(d.rule, a.below);
        tasks?.stopBelow(Math.max(...this.#stops.values()));
        return;
      case "resume_tasks":
        this.#pauses.delete(d.rule);
        this.#stops.delete(d.rule);
        tasks?.resumeAll();
        // Holds of other rules still firing stay in force.
        if (this.#pauses.size > 0) tasks?.pauseBelow(Math.max(...this.#pauses.values()));
        if (this.#stops.size > 0) tasks?.stopBelow(Math.max(...this.#stops.values()));
        return;
      case "set_sample_interval":
        this.#d.setSampleInterval(d.kind === "fire" ? a.interval_ms : undefined);
        return;
      case "request_migration":
        this.#d.report("event", {
          kind: "migration_request",
          at: d.at,
          message: a.reason,
          fields: { rule: d.rule },
        });
        return;
      case "evict_cache": {
        const evicted =
          this.#d.cache()?.evict("prefix" in a ? { prefix: a.prefix } : { fraction: a.fraction }) ?? 0;
        this.#d.log.info("cache entries evicted by a rule", { rule: d.rule, evicted });
        return;
      }
      case "downsample_buffer":
      case "prune_buffer":
        // Not built yet on this agent: the decision is logged and reported, the action is not taken.
        this.#d.log.warn("rule action not available on this agent yet", { rule: d.rule, action: a.type });
        return;
      default: {
        const never: never = a;
        void never;
      }
    }
  }
}

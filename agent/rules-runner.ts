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
import type { Clock } from "../shared/clock.ts";
import type { Database } from "bun:sqlite";
import type { LocalCache } from "./cache/index.ts";
import type { TaskManager } from "./tasks/index.ts";

/** How long a series' last value stands in for a missing one; older, a condition sees no value. */
export const STALE_MS = 5 * 60_000;

export interface RulesRunnerDeps {
  db: Database;
  log: Logger;
  clock: Clock;
  tasks: () => TaskManager | undefined;
  cache: () => LocalCache | undefined;
  /** Puts a must-deliver message into the outbox. */
  report: (type: MessageType, body: object) => void;
  /** The offline buffer: fold every unsent fine sample into rollups, or drop bulk older than a cut-off. */
  buffer: {
    downsample: () => number;
    prune: (createdBefore: number) => number;
  };
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
  readonly #latest = new Map<string, [t: number, value: number]>();

  constructor(rules: unknown, deps: RulesRunnerDeps) {
    this.#d = deps;
    this.#engine = new RuleEngine(compileRules(rules), deps.clock);
    this.#decisions = new DecisionLog(deps.db);
    const restored = this.#engine.restoreState(this.#decisions.loadState());
    if (restored > 0) deps.log.info("rules resumed from the local store", { rules: restored });
  }

  /**
   * Evaluates every rule against one tick. A series missing from this tick (a sensor that pushes a
   * point a minute, a disk sampled every 30 s) keeps its last value until it is STALE_MS old.
   */
  evaluate(values: Record<string, number>, state: AgentState, now: number): void {
    for (const [name, v] of Object.entries(values)) this.#latest.set(name, [now, v]);
    const current = new Map<string, number>();
    for (const [name, [t, v]] of this.#latest) {
      if (now - t > STALE_MS) this.#latest.delete(name);
      else current.set(name, v);
    }
    const decisions = this.#engine.evaluate({ values: current, state }, now);
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
      case "downsample_buffer": {
        // On a fire only: a clear has nothing to undo (rollups are not turned back into samples).
        if (d.kind !== "fire") return;
        const folded = this.#d.buffer.downsample();
        this.#d.log.info("buffer downsampled by a rule", { rule: d.rule, samples: folded });
        return;
      }
      case "prune_buffer": {
        if (d.kind !== "fire") return;
        const dropped = this.#d.buffer.prune(d.at - a.older_than_ms);
        this.#d.log.warn("buffer pruned by a rule; dropped batches are counted", { rule: d.rule, dropped });
        return;
      }
      default: {
        const never: never = a;
        void never;
      }
    }
  }
}

// Runs the offline rules on every tick and applies their decisions: tasks, alerts, sampling, reports.
import type { Logger } from "../../shared/log.ts";
import type { MessageType } from "../../shared/protocol/index.ts";
import {
  type Action,
  type AgentState,
  type CompiledRuleSet,
  type Decision,
  DecisionLog,
  type DecisionVerdict,
  type MergedRules,
  mergeRuleSets,
  parseRuleSetBodies,
  RuleEngine,
  type RuleOrigin,
  type RuleSetBody,
  validationBody,
} from "../../shared/rules/index.ts";
import type { Clock } from "../../shared/clock.ts";
import type { Database } from "bun:sqlite";
import type { LocalCache } from "../cache/index.ts";
import type { TaskManager } from "../tasks/index.ts";

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
  /** The config file, named in warnings about retired expression spellings. */
  source?: string;
}

/** The hub's rule sets as the agent keeps them (in its store, so they hold across a restart with no hub). */
interface HubRules {
  /** The hub's config revision that carried them. */
  rev: number;
  sets: RuleSetBody[];
}

const HUB_RULES_KEY = "hub_rule_sets";

/** What the agent runs, for /v1/status. */
export interface RulesStatus {
  /** Rules running, and how many of them came from the hub. */
  running: number;
  from_hub: number;
  /** The hub's rule sets in force, with their revisions, and the hub config revision that carried them. */
  rule_sets: { name: string; rev: number }[];
  config_rev: number;
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
  /** The node's own rules (its config file), and the hub's rule sets; the engine runs them merged. */
  #local: unknown;
  #hub: HubRules = { rev: 0, sets: [] };
  #origins: ReadonlyMap<string, RuleOrigin> = new Map();
  #conditions = new Map<string, { when: string; clear: string }>();

  constructor(rules: unknown, deps: RulesRunnerDeps) {
    this.#d = deps;
    this.#local = rules;
    this.#decisions = new DecisionLog(deps.db);
    const merged = this.#restoreHub(rules) ?? mergeRuleSets(rules, []);
    this.#engine = new RuleEngine(merged.set, deps.clock);
    this.#adopt(merged);
    this.#warnRetired(merged.set);
    const restored = this.#engine.restoreState(this.#decisions.loadState());
    if (restored > 0) deps.log.info("rules resumed from the local store", { rules: restored });
  }

  // The hub's rule sets kept from an earlier run: in force again at once, hub or no hub.
  #restoreHub(local: unknown): MergedRules | undefined {
    const text = this.#decisions.loadValue(HUB_RULES_KEY);
    if (!text) return undefined;
    try {
      const stored = JSON.parse(text) as HubRules;
      const merged = mergeRuleSets(local, parseRuleSetBodies(stored.sets));
      this.#hub = { rev: Number(stored.rev) || 0, sets: stored.sets };
      this.#d.log.info("rule sets from the hub restored from the local store", {
        rule_sets: describeSets(stored.sets),
      });
      return merged;
    } catch (err) {
      this.#d.log.error("stored rule sets from the hub are unusable; running the local rules only", {
        error: (err as Error).message,
      });
      return undefined;
    }
  }

  #adopt(merged: MergedRules): void {
    this.#origins = merged.origins;
    this.#conditions = new Map(
      merged.set.rules.map((r) => [r.name, { when: r.whenText, clear: r.clearText }]),
    );
  }

  // Once per config load: each retired spelling, where it is and what to write instead.
  #warnRetired(set: CompiledRuleSet): void {
    for (const w of set.warnings)
      this.#d.log.warn(`retired expression spelling: ${w}`, this.#d.source ? { file: this.#d.source } : {});
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

  /** Hot reload of the node's own rules (the hub's stay merged in): rules whose condition did not change keep their state. */
  replace(rules: unknown): void {
    const merged = mergeRuleSets(rules, this.#hub.sets);
    this.#local = rules;
    this.#swap(merged);
    this.#warnRetired(merged.set);
  }

  /**
   * A hub `config` message: its `rule_sets` replace the hub's sets held so far (merged with the node's own
   * rules by rule name) and are kept in the store. A config without `rule_sets` changes nothing here.
   * Returns false, logging why, when the sets are refused (the running rules stay).
   */
  applyHub(rev: number, config: Record<string, unknown>): boolean {
    if (!("rule_sets" in config)) return true;
    let merged: MergedRules;
    let sets: RuleSetBody[];
    try {
      sets = parseRuleSetBodies(config.rule_sets);
      merged = mergeRuleSets(this.#local, sets);
    } catch (err) {
      this.#d.log.error("rule sets from the hub refused; keeping the running rules", {
        config_rev: rev,
        error: (err as Error).message,
      });
      return false;
    }
    const same = JSON.stringify(sets) === JSON.stringify(this.#hub.sets);
    this.#hub = { rev, sets };
    this.#decisions.saveValue(HUB_RULES_KEY, JSON.stringify(this.#hub));
    if (same) return true;
    this.#swap(merged);
    this.#warnRetired(merged.set);
    const applied = sets.map((s) => ({ name: s.name, rev: s.rev }));
    this.#d.log.info("rule sets from the hub applied", {
      rule_sets: describeSets(sets) || "none",
      config_rev: rev,
    });
    // The hub learns what the node runs, exactly once, whenever it is reachable.
    this.#d.report("event", {
      kind: "rules_applied",
      at: this.#d.clock.now(),
      message: `rule sets applied: ${describeSets(sets) || "none"}`,
      fields: { config_rev: rev, rule_sets: applied },
    });
    return true;
  }

  /** The hub's verdicts on decisions this node reported: those decisions become validated. */
  onVerdicts(verdicts: readonly DecisionVerdict[]): void {
    const n = this.#decisions.setVerdicts(verdicts);
    if (n > 0) this.#d.log.debug("hub verdicts received", { decisions: n });
  }

  /** What runs: rule counts, the hub's sets and revisions. */
  status(): RulesStatus {
    return {
      running: this.#conditions.size,
      from_hub: this.#origins.size,
      rule_sets: this.#hub.sets.map((s) => ({ name: s.name, rev: s.rev })),
      config_rev: this.#hub.rev,
    };
  }

  // Decisions of a reload come from the rules before it, so their origin is read before the swap.
  #swap(merged: MergedRules): void {
    const decisions = this.#engine.replace(merged.set);
    this.#handle(decisions);
    this.#adopt(merged);
    this.#decisions.saveState(this.#engine.snapshotState());
  }

  /** The decision log, newest first, for the local API. */
  list(limit: number): ReturnType<DecisionLog["list"]> {
    return this.#decisions.list({ limit });
  }

  #handle(decisions: readonly Decision[]): void {
    const origin = (d: Decision) => this.#origins.get(d.rule);
    const ids = this.#decisions.record(decisions, this.#engine.snapshotState(), origin);
    decisions.forEach((d, i) => {
      this.#d.log.info(`rule ${d.kind === "fire" ? "fired" : "cleared"}`, {
        rule: d.rule,
        actions: d.actions.length,
      });
      for (const a of d.actions) this.#apply(d, a);
      // The outbox delivers it exactly once, whenever the hub is reachable again; it stays unvalidated
      // until the hub's verdict comes back (onVerdicts).
      const o = origin(d);
      const cond = this.#conditions.get(d.rule);
      this.#d.report("decision_validation", {
        ...validationBody(d),
        kind: d.kind,
        id: ids[i],
        ...(cond && d.cause === "condition" ? { condition: d.kind === "fire" ? cond.when : cond.clear } : {}),
        ...(o ? { rule_set: o.set, rule_set_rev: o.rev } : {}),
      });
    });
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

function describeSets(sets: readonly RuleSetBody[]): string {
  return sets.map((s) => `${s.name}@${s.rev}`).join(",");
}

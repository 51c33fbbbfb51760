// The rule engine: one pure state machine per rule (idle → pending → firing → clearing → idle); decides, never acts.
import * as v from "valibot";
import type { Clock } from "../clock.ts";
import type { CompiledRule, CompiledRuleSet } from "./compile.ts";
import type { Decision, Snapshot } from "./types.ts";

/**
 * idle: `when` does not hold. pending: `when` has held since `since`. firing: fired at `firedAt`, the clear
 * condition does not hold. clearing: fired, and the clear condition has held since `since`.
 */
export type RulePhase = "idle" | "pending" | "firing" | "clearing";

interface RuleState {
  phase: RulePhase;
  /** pending: when `when` began to hold; clearing: when the clear condition began to hold. */
  since: number;
  /** Time of the last firing, for the cooldown; null if never. */
  firedAt: number | null;
}

/** One rule's state as the local API shows it. */
export interface RuleStatus {
  readonly rule: string;
  readonly phase: RulePhase;
  readonly since: number | null;
  readonly fired_at: number | null;
}

const PersistedRule = v.object({
  id: v.string(),
  phase: v.picklist(["idle", "pending", "firing", "clearing"]),
  since: v.number(),
  fired_at: v.nullable(v.number()),
});

/** The engine's state as stored on disk: per rule name, its identity (conditions) and state machine. */
export const RuleEngineState = v.object({
  v: v.literal(1),
  rules: v.record(v.string(), PersistedRule),
});
export type RuleEngineState = v.InferOutput<typeof RuleEngineState>;

function fresh(): RuleState {
  return { phase: "idle", since: 0, firedAt: null };
}

/** Evaluates a compiled rule set against snapshots; time comes from the caller (or the injected clock). */
export class RuleEngine {
  readonly #clock: Clock;
  #rules: readonly CompiledRule[] = [];
  #states: RuleState[] = [];
  #revision = 0;

  constructor(set: CompiledRuleSet, clock: Clock) {
    this.#clock = clock;
    this.#rules = set.rules;
    this.#states = set.rules.map(fresh);
  }

  /** Rises whenever any rule's state changes: persist the state when it differs from the last one saved. */
  get revision(): number {
    return this.#revision;
  }

  /** The rules in force. */
  get rules(): readonly CompiledRule[] {
    return this.#rules;
  }

  /**
   * Steps every rule with one snapshot taken at `now`; returns the fire and clear decisions, in rule order.
   * A rule fires once `when` has held at every evaluation for `for` ms and `cooldown` ms have passed since
   * it last fired; it clears once its clear condition has held at every evaluation for `clear_for` ms.
   */
  evaluate(snapshot: Snapshot, now: number = this.#clock.now()): Decision[] {
    const out: Decision[] = [];
    const rules = this.#rules;
    const states = this.#states;
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i]!;
      const st = states[i]!;
      switch (st.phase) {
        case "idle":
          if (r.when(snapshot)) this.#pend(r, st, snapshot, now, out);
          break;
        case "pending":
          if (!r.when(snapshot)) {
            st.phase = "idle";
            this.#revision++;
          } else this.#tryFire(r, st, snapshot, now, out);
          break;
        case "firing":
          if (r.clear(snapshot)) {
            st.phase = "clearing";
            st.since = now;
            this.#revision++;
            this.#tryClear(r, st, snapshot, now, out);
          }
          break;
        case "clearing":
          if (!r.clear(snapshot)) {
            st.phase = "firing";
            this.#revision++;
          } else this.#tryClear(r, st, snapshot, now, out);
          break;
        default:
          st.phase satisfies never;
      }
    }
    return out;
  }

  #pend(r: CompiledRule, st: RuleState, s: Snapshot, now: number, out: Decision[]): void {
    st.phase = "pending";
    st.since = now;
    this.#revision++;
    this.#tryFire(r, st, s, now, out);
  }

  #tryFire(r: CompiledRule, st: RuleState, s: Snapshot, now: number, out: Decision[]): void {
    if (now - st.since < r.forMs) return;
    if (st.firedAt !== null && now - st.firedAt < r.cooldownMs) return;
    st.phase = "firing";
    st.firedAt = now;
    this.#revision++;
    out.push({
      rule: r.name,
      at: now,
      kind: "fire",
      cause: "condition",
      actions: r.actions,
      inputs: r.whenInputs(s),
    });
  }

  #tryClear(r: CompiledRule, st: RuleState, s: Snapshot, now: number, out: Decision[]): void {
    if (now - st.since < r.clearForMs) return;
    st.phase = "idle";
    this.#revision++;
    out.push({
      rule: r.name,
      at: now,
      kind: "clear",
      cause: "condition",
      actions: r.clearActions,
      inputs: r.clearInputs(s),
    });
    // With a clear condition that overlaps `when`, the rule may already be on its way to the next firing.
    if (r.when(s)) this.#pend(r, st, s, now, out);
  }

  /**
   * Hot reload: a rule whose name and conditions (`when`, clear condition) are unchanged keeps its state,
   * even if its durations or actions changed; any other rule starts idle. A firing rule that is removed or
   * whose conditions changed is cleared now (its old clear actions, cause "reload"), so that nothing it
   * paused or raised stays behind; those decisions are returned.
   */
  replace(set: CompiledRuleSet, now: number = this.#clock.now()): Decision[] {
    const old = new Map(this.#rules.map((r, i) => [r.name, { rule: r, state: this.#states[i]! }]));
    const states = set.rules.map((r) => {
      const prev = old.get(r.name);
      if (prev && prev.rule.identity === r.identity) {
        old.delete(r.name);
        return prev.state;
      }
      return fresh();
    });
    const out: Decision[] = [];
    for (const { rule, state } of old.values()) {
      if (state.phase === "firing" || state.phase === "clearing") {
        out.push({
          rule: rule.name,
          at: now,
          kind: "clear",
          cause: "reload",
          actions: rule.clearActions,
          inputs: {},
        });
      }
    }
    this.#rules = set.rules;
    this.#states = states;
    this.#revision++;
    return out;
  }

  /** The state of every rule, serialisable as JSON, to be stored and given to `restoreState` after a restart. */
  snapshotState(): RuleEngineState {
    const rules: RuleEngineState["rules"] = {};
    this.#rules.forEach((r, i) => {
      const st = this.#states[i]!;
      rules[r.name] = { id: r.identity, phase: st.phase, since: st.since, fired_at: st.firedAt };
    });
    return { v: 1, rules };
  }

  /**
   * Resumes rules from a stored state (anything that is not a valid state is ignored); returns how many rules
   * were restored. Only rules with the same name and conditions are restored. Firing rules stay firing and
   * keep their cooldown. A pending or clearing timer starts again at the next evaluation, because nobody
   * watched the condition while the agent was down: `for` means "seen to hold", never "assumed to".
   */
  restoreState(state: unknown): number {
    const parsed = v.safeParse(RuleEngineState, state);
    if (!parsed.success) return 0;
    let restored = 0;
    this.#rules.forEach((r, i) => {
      const saved = parsed.output.rules[r.name];
      if (!saved || saved.id !== r.identity) return;
      const firing = saved.phase === "firing" || saved.phase === "clearing";
      this.#states[i] = { phase: firing ? "firing" : "idle", since: saved.since, firedAt: saved.fired_at };
      restored++;
    });
    this.#revision++;
    return restored;
  }

  /** Each rule's phase, for the local API. */
  status(): RuleStatus[] {
    return this.#rules.map((r, i) => {
      const st = this.#states[i]!;
      const timed = st.phase === "pending" || st.phase === "clearing";
      return { rule: r.name, phase: st.phase, since: timed ? st.since : null, fired_at: st.firedAt };
    });
  }
}

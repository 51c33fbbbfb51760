// The hub's own check of a node's offline decision: would the hub's rules have decided the same?
import type { Body } from "../../shared/protocol/index.ts";
import {
  type AgentState,
  type CompiledRuleSet,
  compileRules,
  DEFAULT_RULES,
  STATE_VARS,
} from "../../shared/rules/index.ts";
import type { DecisionCheck } from "./event-store.ts";

/**
 * Checks each decision against `rules` (the hub's policy for its nodes; the default rule set unless
 * configured otherwise): the rule of the same name must exist, and its fire (or clear) condition must
 * hold for the inputs the node reported. Durations are the node's to judge; the hub checks the values.
 */
export function decisionPolicy(rules: unknown = DEFAULT_RULES): DecisionCheck {
  const set: CompiledRuleSet = compileRules(rules);
  return (_node: string, d: Body<"decision_validation">) => {
    const rule = set.rules.find((r) => r.name === d.rule);
    if (!rule) return { verdict: "unknown", reason: `the hub holds no rule named ${d.rule}` };
    const values = new Map<string, number>();
    const state: Record<string, number | boolean> = {
      connected: false,
      offline_s: 0,
      buffer_fill: 0,
      tasks_running: 0,
      tasks_paused: 0,
    };
    for (const [key, v] of Object.entries(d.inputs)) {
      if (typeof v !== "number") continue;
      const s = key.startsWith("state.") ? key.slice(6) : undefined;
      if (s && (STATE_VARS as readonly string[]).includes(s)) state[s] = s === "connected" ? v !== 0 : v;
      else values.set(key, v);
    }
    const snapshot = { values, state: state as unknown as AgentState };
    const kind = d.kind ?? "fire";
    const holds = kind === "fire" ? rule.when(snapshot) : rule.clear(snapshot);
    const text = kind === "fire" ? rule.whenText : rule.clearText;
    return holds
      ? { verdict: "agree", reason: `${text} holds for the reported inputs` }
      : { verdict: "disagree", reason: `${text} does not hold for the reported inputs` };
  };
}

// The hub's own check of a node's offline decision: would the rule the hub holds have decided the same?
import type { Body } from "../../shared/protocol/index.ts";
import {
  type AgentState,
  type CompiledRule,
  type CompiledRuleSet,
  compileRules,
  DEFAULT_RULES,
  STATE_VARS,
} from "../../shared/rules/index.ts";
import type { HubSql } from "../store/sql/index.ts";
import type { DecisionCheck, Verdict } from "./event-store.ts";

/** Whether `rule`'s fire (or clear) condition holds for the inputs the node reported. */
function judge(rule: CompiledRule, d: Body<"decision_validation">, where: string): Verdict {
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
  const text = kind === "fire" ? rule.whenText : rule.clearText;
  if (d.condition !== undefined && d.condition !== text) {
    return {
      verdict: "disagree",
      reason: `the node ran "${d.condition}", ${where} says "${text}"`,
    };
  }
  const holds = kind === "fire" ? rule.when(snapshot) : rule.clear(snapshot);
  return holds
    ? { verdict: "agree", reason: `${text} holds for the reported inputs (${where})` }
    : { verdict: "disagree", reason: `${text} does not hold for the reported inputs (${where})` };
}

/**
 * Checks each decision against `rules` (the hub's policy for nodes' own rules; the default rule set unless
 * configured otherwise): the rule of the same name must exist, and its fire (or clear) condition must
 * hold for the inputs the node reported. Durations are the node's to judge; the hub checks the values.
 */
export function decisionPolicy(
  rules: unknown = DEFAULT_RULES,
): (node: string, d: Body<"decision_validation">) => Verdict {
  const set: CompiledRuleSet = compileRules(rules);
  return (_node: string, d: Body<"decision_validation">) => {
    const rule = set.rules.find((r) => r.name === d.rule);
    if (!rule) return { verdict: "unknown", reason: `the hub holds no rule named ${d.rule}` };
    return judge(rule, d, "the hub's default rules");
  };
}

/**
 * Decisions from a rule the hub distributed are judged by that rule set at the revision the node ran
 * (`compiled(name, rev)`); decisions from the node's own rules go to `fallback`.
 */
export function ruleSetPolicy(
  compiled: (name: string, rev: number, via: HubSql) => Promise<CompiledRuleSet | undefined>,
  fallback: DecisionCheck,
): DecisionCheck {
  return async (node, d, via) => {
    if (d.rule_set === undefined) return fallback(node, d, via);
    const rev = d.rule_set_rev ?? 0;
    const where = `rule set ${d.rule_set} revision ${rev}`;
    const set = await compiled(d.rule_set, rev, via);
    if (!set) return { verdict: "unknown", reason: `the hub holds no ${where}` };
    const rule = set.rules.find((r) => r.name === d.rule);
    if (!rule) return { verdict: "disagree", reason: `${where} has no enabled rule named ${d.rule}` };
    // A clear because the rules changed (cause "reload") is the node following a new revision, not a reading.
    if (d.action.startsWith("clear (reload)")) {
      return { verdict: "agree", reason: `cleared because the node's rules changed (${where})` };
    }
    return judge(rule, d, where);
  };
}

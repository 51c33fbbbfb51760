// Hub alert rules: their kinds, the built-in defaults, and the one parser that checks an operator's rule.
import * as v from "valibot";
import { formatDuration } from "../../shared/config/index.ts";
import { RequestError } from "../../shared/errors.ts";
import {
  AlertRuleBody,
  checkBody,
  type OPS,
  RuleName,
  type RULE_KINDS,
  type SEVERITIES,
} from "./alert-schemas.ts";

export type RuleKind = (typeof RULE_KINDS)[number];
export type Severity = (typeof SEVERITIES)[number];
export type Op = (typeof OPS)[number];

/** One alert rule, built in or an operator's. */
export interface AlertRule {
  name: string;
  kind: RuleKind;
  severity: Severity;
  /**
   * How long the condition must hold before the alert opens (series), how long a node must be
   * offline (node_offline), how long without new drops before a drop alert resolves
   * (buffer_dropping), or how long an event alert stays open (failover_done).
   */
  for_ms: number;
  /** `series` rules: the series name, with or without labels (`disk.used_pct` matches every mount). */
  series?: string;
  op?: Op;
  threshold?: number;
  enabled: boolean;
  builtin: boolean;
}

/** The rules every hub has; an operator rule of the same name replaces one (e.g. to disable it). */
export const BUILTIN_RULES: readonly AlertRule[] = [
  { name: "node-down", kind: "node_down", severity: "critical", for_ms: 0 },
  { name: "node-offline-1h", kind: "node_offline", severity: "critical", for_ms: 3_600_000 },
  {
    name: "disk-full",
    kind: "series",
    severity: "warning",
    for_ms: 0,
    series: "disk.used_pct",
    op: ">",
    threshold: 90,
  },
  { name: "rollout-failed", kind: "rollout_failed", severity: "warning", for_ms: 0 },
  { name: "failover-done", kind: "failover_done", severity: "info", for_ms: 3_600_000 },
  { name: "failover-failed", kind: "failover_failed", severity: "critical", for_ms: 0 },
  { name: "buffer-dropping", kind: "buffer_dropping", severity: "warning", for_ms: 600_000 },
].map((r) => ({ ...r, enabled: true, builtin: true }) as AlertRule);

/** Checks a rule name from a path; a bad one is a 400 naming `field`. */
export function checkRuleName(name: unknown, field = "name"): string {
  const r = v.safeParse(RuleName, name);
  if (!r.success) throw new RequestError(`${field}: ${r.issues[0].message}`, field);
  return r.output;
}

/** A rule from an API body (`for` as "5m" or ms); throws RequestError naming the bad field. */
export function parseRule(body: unknown): AlertRule {
  const b = checkBody(AlertRuleBody, body);
  const rule: AlertRule = {
    name: b.name,
    kind: b.kind,
    severity: b.severity ?? "warning",
    for_ms: b.for ?? BUILTIN_RULES.find((r) => r.kind === b.kind)?.for_ms ?? 0,
    enabled: b.enabled !== false,
    builtin: false,
  };
  if (b.kind === "series") Object.assign(rule, { series: b.series, op: b.op ?? ">", threshold: b.threshold });
  return rule;
}

/** The rules in force: built-ins, with operator rules replacing those of the same name, then the rest. */
export function effectiveRules(operator: readonly AlertRule[]): AlertRule[] {
  const byName = new Map(operator.map((r) => [r.name, r]));
  const out = BUILTIN_RULES.map((r) => byName.get(r.name) ?? r);
  for (const r of operator) if (!BUILTIN_RULES.some((b) => b.name === r.name)) out.push(r);
  return out;
}

/** A rule as the API shows it (`for` in words too). */
export function ruleView(r: AlertRule) {
  return { ...r, for: formatDuration(r.for_ms) };
}

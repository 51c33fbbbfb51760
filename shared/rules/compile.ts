// Compiles validated rules once into plain closures over a Snapshot (shared/expr's compiler); no code is generated from text.
import { compileTruth, type NumFn } from "../expr/index.ts";
import { type Condition, conditionInputs, formatCondition } from "./condition.ts";
import { parseRules, type RuleSpec } from "./schema.ts";
import type { Action, Severity, Snapshot } from "./types.ts";

/** A compiled condition. */
export type Predicate = (s: Snapshot) => boolean;

/** A value reader; NaN stands for "no value" (a series missing from the snapshot, or not a number). */
type Reader = NumFn<Snapshot>;

/** One rule, ready to evaluate. */
export interface CompiledRule {
  readonly name: string;
  readonly when: Predicate;
  readonly clear: Predicate;
  /** Canonical text of `when` and of the clear condition (`not (...)` when the rule gives none). */
  readonly whenText: string;
  readonly clearText: string;
  /** Same name and same identity: a reload keeps the rule's state. */
  readonly identity: string;
  /** Read into a decision's `inputs` when the rule fires, or clears. */
  readonly whenInputs: (s: Snapshot) => Record<string, number | null>;
  readonly clearInputs: (s: Snapshot) => Record<string, number | null>;
  readonly forMs: number;
  readonly clearForMs: number;
  readonly cooldownMs: number;
  readonly severity: Severity;
  readonly actions: readonly Action[];
  readonly clearActions: readonly Action[];
}

/** The enabled rules of one config revision, in file order. */
export interface CompiledRuleSet {
  readonly rules: readonly CompiledRule[];
  /** Retired spellings the list used, one line each, naming the rule and field (see shared/expr). */
  readonly warnings: readonly string[];
}

/** The reader of a name a rule condition reads: `state.<var>` or a series key. */
function reader(name: string): Reader {
  switch (name) {
    case "state.connected":
      return (s) => (s.state.connected ? 1 : 0);
    case "state.offline_s":
      return (s) => s.state.offline_s;
    case "state.buffer_fill":
      return (s) => s.state.buffer_fill;
    case "state.tasks_running":
      return (s) => s.state.tasks_running;
    case "state.tasks_paused":
      return (s) => s.state.tasks_paused;
    default:
      return (s) => s.values.get(name) ?? Number.NaN;
  }
}

/** Compiles a condition to a closure (short-circuiting `and`/`or`). */
export function compileCondition(c: Condition): Predicate {
  return compileTruth<Snapshot>(c, reader);
}

/** Builds the reader of a decision's inputs: each series or state value the condition reads (null if missing). */
function inputsOf(c: Condition): (s: Snapshot) => Record<string, number | null> {
  const reads = conditionInputs(c).map((key) => ({ key, read: reader(key) }));
  return (s) => {
    const out: Record<string, number | null> = {};
    for (const r of reads) {
      const x = r.read(s);
      out[r.key] = Number.isNaN(x) ? null : x;
    }
    return out;
  };
}

/** Compiles one validated rule. */
export function compileRule(spec: RuleSpec): CompiledRule {
  const clearCond: Condition = spec.clearWhen ?? { kind: "not", item: spec.when };
  const whenText = formatCondition(spec.when);
  const clearText = formatCondition(clearCond);
  return {
    name: spec.name,
    when: compileCondition(spec.when),
    clear: compileCondition(clearCond),
    whenText,
    clearText,
    identity: `${whenText}\n${clearText}`,
    whenInputs: inputsOf(spec.when),
    clearInputs: inputsOf(clearCond),
    forMs: spec.forMs,
    clearForMs: spec.clearForMs,
    cooldownMs: spec.cooldownMs,
    severity: spec.severity,
    actions: spec.actions,
    clearActions: spec.clearActions,
  };
}

/**
 * Validates a rule list as YAML gives it (see schema.ts) and compiles its enabled rules;
 * throws ConfigError naming the rule and the field.
 */
export function compileRules(input: unknown, field = "rules"): CompiledRuleSet {
  const specs = parseRules(input, field);
  return {
    rules: specs.filter((r) => r.enabled).map(compileRule),
    warnings: specs.flatMap((r) => r.warnings),
  };
}

// Compiles validated rules once into plain closures over a Snapshot; no code is generated from text.
import {
  type Comparison,
  type Condition,
  conditionInputs,
  formatCondition,
  type Operand,
} from "./condition.ts";
import { parseRules, type RuleSpec } from "./schema.ts";
import type { Action, Severity, Snapshot } from "./types.ts";

/** A compiled condition. */
export type Predicate = (s: Snapshot) => boolean;

/** A value reader; NaN stands for "no value" (a series missing from the snapshot, or not a number). */
type Reader = (s: Snapshot) => number;

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
}

function reader(o: Operand): Reader {
  switch (o.kind) {
    case "number": {
      const value = o.value;
      return () => value;
    }
    case "series": {
      const key = o.key;
      return (s) => s.values.get(key) ?? Number.NaN;
    }
    case "state":
      switch (o.name) {
        case "connected":
          return (s) => (s.state.connected ? 1 : 0);
        case "offline_s":
          return (s) => s.state.offline_s;
        case "buffer_fill":
          return (s) => s.state.buffer_fill;
        case "tasks_running":
          return (s) => s.state.tasks_running;
        case "tasks_paused":
          return (s) => s.state.tasks_paused;
        default:
          return o.name satisfies never;
      }
    default:
      return o satisfies never;
  }
}

/**
 * A missing series makes its comparison false, whatever the operator (`!=` included): a rule never fires
 * on data it does not have. NaN fails every ordered comparison and `===`, so only `!=` needs the check.
 */
function comparison(op: Comparison, left: Operand, right: Operand): Predicate {
  const a = reader(left);
  // The common shape, `series OP number`, reads the constant once here rather than through a closure.
  if (right.kind === "number") {
    const n = right.value;
    switch (op) {
      case ">":
        return (s) => a(s) > n;
      case ">=":
        return (s) => a(s) >= n;
      case "<":
        return (s) => a(s) < n;
      case "<=":
        return (s) => a(s) <= n;
      case "==":
        return (s) => a(s) === n;
      case "!=":
        return (s) => {
          const x = a(s);
          return !Number.isNaN(x) && x !== n;
        };
      default:
        return op satisfies never;
    }
  }
  const b = reader(right);
  switch (op) {
    case ">":
      return (s) => a(s) > b(s);
    case ">=":
      return (s) => a(s) >= b(s);
    case "<":
      return (s) => a(s) < b(s);
    case "<=":
      return (s) => a(s) <= b(s);
    case "==":
      return (s) => a(s) === b(s);
    case "!=":
      return (s) => {
        const x = a(s);
        const y = b(s);
        return !Number.isNaN(x) && !Number.isNaN(y) && x !== y;
      };
    default:
      return op satisfies never;
  }
}

/** Compiles a condition to a closure (short-circuiting `and`/`or`). */
export function compileCondition(c: Condition): Predicate {
  switch (c.kind) {
    case "cmp":
      return comparison(c.op, c.left, c.right);
    case "not": {
      const p = compileCondition(c.item);
      return (s) => !p(s);
    }
    case "and": {
      const ps = c.items.map(compileCondition);
      if (ps.length === 2) {
        const [p, q] = ps as [Predicate, Predicate];
        return (s) => p(s) && q(s);
      }
      return (s) => {
        for (const p of ps) if (!p(s)) return false;
        return true;
      };
    }
    case "or": {
      const ps = c.items.map(compileCondition);
      if (ps.length === 2) {
        const [p, q] = ps as [Predicate, Predicate];
        return (s) => p(s) || q(s);
      }
      return (s) => {
        for (const p of ps) if (p(s)) return true;
        return false;
      };
    }
    default:
      return c satisfies never;
  }
}

/** Builds the reader of a decision's inputs: each series or state value the condition reads (null if missing). */
function inputsOf(c: Condition): (s: Snapshot) => Record<string, number | null> {
  const reads = conditionInputs(c).map((o) => ({
    key: o.kind === "state" ? `state.${o.name}` : o.kind === "series" ? o.key : "",
    read: reader(o),
  }));
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
  return {
    rules: parseRules(input, field)
      .filter((r) => r.enabled)
      .map(compileRule),
  };
}

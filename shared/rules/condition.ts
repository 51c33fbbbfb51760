// Rule conditions: the shared expression language (shared/expr) with series and `state.*` names, or structured YAML.
import {
  COMPARISONS,
  type Comparison,
  type Expr,
  ExprError,
  exprNames,
  formatExpr,
  parseCondition as parseConditionExpr,
  type Retired,
  type Scope,
  tokenize,
} from "../expr/index.ts";
import { STATE_VARS } from "./types.ts";

export { COMPARISONS, type Comparison } from "../expr/index.ts";
/** A condition that cannot be parsed; `path` is where inside the field (".all[1]"). */
export { ExprError as ConditionError } from "../expr/index.ts";

/** A parsed condition: an expression of the shared language that gives a truth value. */
export type Condition = Expr;

/** Names in a rule: `state.<var>` reads the agent state; any other name is a series key (labels canonical). */
export const RULE_SCOPE: Scope = {
  names: "a series, a state variable",
  name(key, col) {
    if (key.startsWith("state.") && !(STATE_VARS as readonly string[]).includes(key.slice(6))) {
      throw new ExprError(
        `unknown state variable "${key}" at column ${col} (known: ${STATE_VARS.map((s) => `state.${s}`).join(", ")})`,
      );
    }
    return key;
  },
};

/** Parses a condition written as text, e.g. `cpu.util > 80 and not state.connected == 1`. */
export function parseConditionText(text: string, retired?: Retired[]): Condition {
  const parsed = parseConditionExpr(text, RULE_SCOPE);
  retired?.push(...parsed.retired);
  return parsed.expr;
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/**
 * The key a condition uses for series `key`: labels sorted by name, no spaces (`x{b="1", a="2"}` →
 * `x{a="2",b="1"}`). The collector's keys already have this form; a snapshot of pushed series whose label
 * sets are written otherwise should use it. Undefined when `key` is not a series name.
 */
export function canonicalSeriesKey(key: string): string | undefined {
  try {
    const [first, second] = tokenize(key);
    return first?.t === "ident" && second?.t === "end" ? first.key : undefined;
  } catch {
    return undefined;
  }
}

/** Parses the operand of a structured comparison's `series` or `state` key. */
function structuredOperand(node: Record<string, unknown>, path: string): Expr {
  if ("series" in node) {
    if (typeof node.series !== "string") throw new ExprError("must be a series name", `${path}.series`);
    let key: string | undefined;
    try {
      key = canonicalSeriesKey(node.series);
    } catch {
      key = undefined;
    }
    if (key === undefined || key.startsWith("state.")) {
      throw new ExprError(`"${node.series}" is not a series name`, `${path}.series`);
    }
    return { kind: "var", name: key };
  }
  const name = node.state;
  const bare = typeof name === "string" && name.startsWith("state.") ? name.slice(6) : name;
  if (typeof bare !== "string" || !(STATE_VARS as readonly string[]).includes(bare)) {
    throw new ExprError(`must be one of ${STATE_VARS.join(", ")}`, `${path}.state`);
  }
  return { kind: "var", name: `state.${bare}` };
}

const STRUCTURED_KEYS = "all, any, not, or series/state with op and value";

/**
 * Parses a condition as YAML gives it: a text expression, or `{all: [...]}`, `{any: [...]}`, `{not: ...}`,
 * `{series: "cpu.util", op: ">", value: 80}` or `{state: "offline_s", op: ">", value: 600}`, nested freely.
 * Errors carry the path inside the field (".all[1].op"); retired spellings found in text go to `retired`.
 */
export function parseCondition(input: unknown, path = "", retired?: Retired[]): Condition {
  if (typeof input === "string") {
    try {
      return parseConditionText(input, retired);
    } catch (err) {
      if (err instanceof ExprError) throw new ExprError(err.message, path);
      throw err;
    }
  }
  if (!isRecord(input)) {
    throw new ExprError(
      'must be an expression such as "cpu.util > 80" or a map with all, any, not or series',
      path,
    );
  }
  const keys = Object.keys(input);
  if ("all" in input || "any" in input) {
    const kw = "all" in input ? "all" : "any";
    if (keys.length !== 1) throw new ExprError(`"${kw}" must stand alone in its map`, path);
    const list = input[kw];
    if (!Array.isArray(list) || list.length === 0) {
      throw new ExprError("must be a non-empty list of conditions", `${path}.${kw}`);
    }
    const items = list.map((c, i) => parseCondition(c, `${path}.${kw}[${i}]`, retired));
    if (items.length === 1) return items[0]!;
    const kind = kw === "all" ? "and" : "or";
    return { kind, items: items.flatMap((c) => (c.kind === kind ? c.items : [c])) };
  }
  if ("not" in input) {
    if (keys.length !== 1) throw new ExprError('"not" must stand alone in its map', path);
    return { kind: "not", item: parseCondition(input.not, `${path}.not`, retired) };
  }
  if ("series" in input || "state" in input) {
    const extra = keys.filter((k) => !["series", "state", "op", "value"].includes(k));
    if (extra.length > 0 || ("series" in input && "state" in input)) {
      throw new ExprError(
        `unknown key "${extra[0] ?? "state"}"; a comparison has series (or state), op and value`,
        path,
      );
    }
    const left = structuredOperand(input, path);
    if (!(COMPARISONS as readonly unknown[]).includes(input.op)) {
      throw new ExprError(
        `${input.op === undefined ? "missing" : `unknown operator ${JSON.stringify(input.op)}`}; use one of ${COMPARISONS.join(" ")}`,
        `${path}.op`,
      );
    }
    if (typeof input.value !== "number" || !Number.isFinite(input.value)) {
      throw new ExprError("must be a number", `${path}.value`);
    }
    return { kind: "cmp", op: input.op as Comparison, left, right: { kind: "num", value: input.value } };
  }
  throw new ExprError(
    `unknown condition form (keys: ${keys.join(", ") || "none"}; use ${STRUCTURED_KEYS})`,
    path,
  );
}

/** The canonical text of a condition; two conditions with the same text behave the same. */
export const formatCondition: (c: Condition) => string = formatExpr;

/** The series keys and `state.*` names a condition reads, each once, in order of appearance. */
export const conditionInputs: (c: Condition) => string[] = exprNames;

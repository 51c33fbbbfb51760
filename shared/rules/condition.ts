// The condition language: a hand-written recursive-descent parser (text or structured YAML) to an AST, and its canonical form.
import { ConditionError, type Token, tokenize } from "./_lexer.ts";
import { STATE_VARS, type StateVar } from "./types.ts";

export { ConditionError } from "./_lexer.ts";

/** Comparison operators. */
export const COMPARISONS = [">", ">=", "<", "<=", "==", "!="] as const;
export type Comparison = (typeof COMPARISONS)[number];

/** A comparison side: a series (key as the collector writes it, labels included), a state variable or a number. */
export type Operand =
  | { readonly kind: "series"; readonly key: string }
  | { readonly kind: "state"; readonly name: StateVar }
  | { readonly kind: "number"; readonly value: number };

/** A parsed condition; `and`/`or` are flattened (n-ary). */
export type Condition =
  | { readonly kind: "cmp"; readonly op: Comparison; readonly left: Operand; readonly right: Operand }
  | { readonly kind: "and"; readonly items: readonly Condition[] }
  | { readonly kind: "or"; readonly items: readonly Condition[] }
  | { readonly kind: "not"; readonly item: Condition };

/** Resolves a name to a state variable or a series; `state.` is reserved for the agent state. */
function operandOfName(key: string, col: number): Operand {
  if (key.startsWith("state.")) {
    const name = key.slice(6);
    if (!(STATE_VARS as readonly string[]).includes(name)) {
      throw new ConditionError(
        `unknown state variable "${key}" at column ${col} (known: ${STATE_VARS.map((s) => `state.${s}`).join(", ")})`,
      );
    }
    return { kind: "state", name: name as StateVar };
  }
  return { kind: "series", key };
}

class Parser {
  readonly #tokens: Token[];
  #pos = 0;

  constructor(tokens: Token[]) {
    this.#tokens = tokens;
  }

  parse(): Condition {
    if (this.#peek().t === "end") throw new ConditionError("empty expression");
    const c = this.#or();
    const t = this.#peek();
    if (t.t !== "end") {
      throw new ConditionError(
        t.t === ")"
          ? `unmatched ")" at column ${t.col}`
          : `expected "and", "or" or the end, got "${t.text}" at column ${t.col}`,
      );
    }
    return c;
  }

  #peek(): Token {
    return this.#tokens[this.#pos]!;
  }

  #next(): Token {
    return this.#tokens[this.#pos++]!;
  }

  #isKw(word: "and" | "or" | "not"): boolean {
    const t = this.#peek();
    return t.t === "kw" && t.word === word;
  }

  #or(): Condition {
    const items = [this.#and()];
    while (this.#isKw("or")) {
      this.#next();
      items.push(this.#and());
    }
    return items.length === 1 ? items[0]! : { kind: "or", items: flatten("or", items) };
  }

  #and(): Condition {
    const items = [this.#unary()];
    while (this.#isKw("and")) {
      this.#next();
      items.push(this.#unary());
    }
    return items.length === 1 ? items[0]! : { kind: "and", items: flatten("and", items) };
  }

  #unary(): Condition {
    if (this.#isKw("not")) {
      this.#next();
      return { kind: "not", item: this.#unary() };
    }
    const t = this.#peek();
    if (t.t === "(") {
      this.#next();
      const inner = this.#or();
      const close = this.#next();
      if (close.t !== ")") {
        throw new ConditionError(
          close.t === "end"
            ? `missing ")" for "(" at column ${t.col}`
            : `expected ")" but got "${close.text}" at column ${close.col}`,
        );
      }
      return inner;
    }
    return this.#comparison();
  }

  #comparison(): Condition {
    const left = this.#operand();
    const opTok = this.#next();
    if (opTok.t !== "op") {
      const got = opTok.t === "end" ? "the end" : `"${opTok.text}"`;
      throw new ConditionError(
        `expected a comparison (> >= < <= == !=) but got ${got} at column ${opTok.col}`,
      );
    }
    if (!(COMPARISONS as readonly string[]).includes(opTok.text)) {
      throw new ConditionError(`unknown operator "${opTok.text}" at column ${opTok.col}`);
    }
    const right = this.#operand();
    if (left.kind === "number" && right.kind === "number") {
      throw new ConditionError(`compares two numbers at column ${opTok.col}`);
    }
    return { kind: "cmp", op: opTok.text as Comparison, left, right };
  }

  #operand(): Operand {
    const t = this.#next();
    if (t.t === "num") return { kind: "number", value: t.value };
    if (t.t === "ident") return operandOfName(t.key, t.col);
    const got = t.t === "end" ? "the end" : `"${t.text}"`;
    throw new ConditionError(`expected a series, state variable or number but got ${got} at column ${t.col}`);
  }
}

function flatten(kind: "and" | "or", items: Condition[]): Condition[] {
  return items.flatMap((c) => (c.kind === kind ? c.items : [c]));
}

/** Parses a condition written as text, e.g. `cpu.util > 80 and not state.connected == 1`. */
export function parseConditionText(text: string): Condition {
  return new Parser(tokenize(text)).parse();
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
function structuredOperand(node: Record<string, unknown>, path: string): Operand {
  if ("series" in node) {
    if (typeof node.series !== "string") throw new ConditionError("must be a series name", `${path}.series`);
    let toks: Token[];
    try {
      toks = tokenize(node.series);
    } catch (err) {
      throw new ConditionError((err as Error).message, `${path}.series`);
    }
    const [first, second] = toks;
    if (first?.t !== "ident" || second?.t !== "end" || first.key.startsWith("state.")) {
      throw new ConditionError(`"${node.series}" is not a series name`, `${path}.series`);
    }
    return { kind: "series", key: first.key };
  }
  const name = node.state;
  const bare = typeof name === "string" && name.startsWith("state.") ? name.slice(6) : name;
  if (typeof bare !== "string" || !(STATE_VARS as readonly string[]).includes(bare)) {
    throw new ConditionError(`must be one of ${STATE_VARS.join(", ")}`, `${path}.state`);
  }
  return { kind: "state", name: bare as StateVar };
}

const STRUCTURED_KEYS = "all, any, not, or series/state with op and value";

/**
 * Parses a condition as YAML gives it: a text expression, or `{all: [...]}`, `{any: [...]}`, `{not: ...}`,
 * `{series: "cpu.util", op: ">", value: 80}` or `{state: "offline_s", op: ">", value: 600}`, nested freely.
 * Errors carry the path inside the field (".all[1].op").
 */
export function parseCondition(input: unknown, path = ""): Condition {
  if (typeof input === "string") {
    try {
      return parseConditionText(input);
    } catch (err) {
      if (err instanceof ConditionError) throw new ConditionError(err.message, path);
      throw err;
    }
  }
  if (!isRecord(input)) {
    throw new ConditionError(
      'must be an expression such as "cpu.util > 80" or a map with all, any, not or series',
      path,
    );
  }
  const keys = Object.keys(input);
  if ("all" in input || "any" in input) {
    const kw = "all" in input ? "all" : "any";
    if (keys.length !== 1) throw new ConditionError(`"${kw}" must stand alone in its map`, path);
    const list = input[kw];
    if (!Array.isArray(list) || list.length === 0) {
      throw new ConditionError("must be a non-empty list of conditions", `${path}.${kw}`);
    }
    const items = list.map((c, i) => parseCondition(c, `${path}.${kw}[${i}]`));
    if (items.length === 1) return items[0]!;
    const kind = kw === "all" ? "and" : "or";
    return { kind, items: flatten(kind, items) };
  }
  if ("not" in input) {
    if (keys.length !== 1) throw new ConditionError('"not" must stand alone in its map', path);
    return { kind: "not", item: parseCondition(input.not, `${path}.not`) };
  }
  if ("series" in input || "state" in input) {
    const extra = keys.filter((k) => !["series", "state", "op", "value"].includes(k));
    if (extra.length > 0 || ("series" in input && "state" in input)) {
      throw new ConditionError(
        `unknown key "${extra[0] ?? "state"}"; a comparison has series (or state), op and value`,
        path,
      );
    }
    const left = structuredOperand(input, path);
    if (!(COMPARISONS as readonly unknown[]).includes(input.op)) {
      throw new ConditionError(
        `${input.op === undefined ? "missing" : `unknown operator ${JSON.stringify(input.op)}`}; use one of ${COMPARISONS.join(" ")}`,
        `${path}.op`,
      );
    }
    if (typeof input.value !== "number" || !Number.isFinite(input.value)) {
      throw new ConditionError("must be a number", `${path}.value`);
    }
    return { kind: "cmp", op: input.op as Comparison, left, right: { kind: "number", value: input.value } };
  }
  throw new ConditionError(
    `unknown condition form (keys: ${keys.join(", ") || "none"}; use ${STRUCTURED_KEYS})`,
    path,
  );
}

function formatOperand(o: Operand): string {
  if (o.kind === "number") return String(o.value);
  return o.kind === "state" ? `state.${o.name}` : o.key;
}

/** The canonical text of a condition; two conditions with the same text behave the same. */
export function formatCondition(c: Condition): string {
  switch (c.kind) {
    case "cmp":
      return `${formatOperand(c.left)} ${c.op} ${formatOperand(c.right)}`;
    case "and":
      return c.items
        .map((i) => (i.kind === "or" ? `(${formatCondition(i)})` : formatCondition(i)))
        .join(" and ");
    case "or":
      return c.items.map(formatCondition).join(" or ");
    case "not":
      return c.item.kind === "cmp" || c.item.kind === "not"
        ? `not ${formatCondition(c.item)}`
        : `not (${formatCondition(c.item)})`;
    default:
      return c satisfies never;
  }
}

/** The series keys and state variables a condition reads, each once, in order of appearance. */
export function conditionInputs(c: Condition): Operand[] {
  const seen = new Set<string>();
  const out: Operand[] = [];
  const visit = (n: Condition): void => {
    if (n.kind === "cmp") {
      for (const o of [n.left, n.right]) {
        if (o.kind === "number") continue;
        const k = formatOperand(o);
        if (!seen.has(k)) {
          seen.add(k);
          out.push(o);
        }
      }
    } else if (n.kind === "not") visit(n.item);
    else n.items.forEach(visit);
  };
  visit(c);
  return out;
}

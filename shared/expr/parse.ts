// The one parser of the expression language (rule conditions and stream pipelines): hand-written recursive descent, no eval.
//
//   expr   := or
//   or     := and ("or" and)*
//   and    := not ("and" not)*
//   not    := "not" not | cmp
//   cmp    := sum (("<" | "<=" | ">" | ">=" | "==" | "!=") sum)?
//   sum    := term (("+" | "-") term)*
//   term   := unary (("*" | "/" | "%") unary)*
//   unary  := "-" unary | "+" unary | atom
//   atom   := number | "true" | "false" | name | function "(" expr ("," expr)* ")" | "(" expr ")"
//
// Names are bound by the context (a `Scope`): series and `state.*` in rules, `value` and `t` in pipelines.
// Retired spellings, accepted for one release and reported so that the loader can warn: `&&`, `||`, `!`,
// keywords not in lower case, and a number where a truth value belongs (`value` for `value != 0`).
import { type Token, tokenize, ExprError } from "./_lexer.ts";
import { type Arithmetic, type Comparison, COMPARISONS, type Expr, formatExpr, isTruth } from "./ast.ts";
import { FUNCTIONS } from "./functions.ts";

export { ExprError } from "./_lexer.ts";

export const MAX_EXPR_CHARS = 1000;
const MAX_DEPTH = 64;

/** What names mean in one context. */
export interface Scope {
  /** The variable a name stands for (its canonical text); throws ExprError when the context has no such name. */
  name(key: string, col: number): string;
  /** What the context's names are, for error messages: "a series or state variable", "value or t". */
  readonly names: string;
}

/** A retired spelling found in an expression: still accepted, to be warned about with the new spelling. */
export interface Retired {
  readonly old: string;
  readonly new: string;
  readonly col: number;
}

/** A parsed expression with the retired spellings it used. */
export interface Parsed {
  readonly expr: Expr;
  readonly retired: readonly Retired[];
}

const RETIRED_OPS: Readonly<Record<string, string>> = { "&&": "and", "||": "or", "!": "not" };

class Parser {
  readonly #tokens: Token[];
  readonly #scope: Scope;
  readonly #src: string;
  readonly retired: Retired[] = [];
  #pos = 0;
  #depth = 0;

  constructor(src: string, scope: Scope) {
    this.#src = src;
    this.#tokens = tokenize(src);
    this.#scope = scope;
  }

  parse(truth: boolean): Expr {
    if (this.#peek().t === "end") throw new ExprError("empty expression");
    const start = this.#peek().col;
    const e = this.#or();
    const t = this.#peek();
    if (t.t !== "end") {
      throw new ExprError(
        t.text === ")"
          ? `unmatched ")" at column ${t.col}`
          : `expected an operator, "and", "or" or the end, got "${t.text}" at column ${t.col}`,
      );
    }
    return truth ? this.#truth(e, start, t.col) : e;
  }

  #peek(): Token {
    return this.#tokens[this.#pos]!;
  }

  #next(): Token {
    return this.#tokens[this.#pos++]!;
  }

  /** Whether the next token is logic word `word` (or its retired symbol); consumes it and notes a retired spelling. */
  #logic(word: "and" | "or" | "not"): boolean {
    const t = this.#peek();
    if (t.t === "kw" && t.word === word) {
      if (t.text !== word) this.retired.push({ old: t.text, new: word, col: t.col });
      this.#pos++;
      return true;
    }
    if (t.t === "op" && RETIRED_OPS[t.text] === word) {
      this.retired.push({ old: t.text, new: word, col: t.col });
      this.#pos++;
      return true;
    }
    return false;
  }

  #op(...ops: string[]): string | undefined {
    const t = this.#peek();
    return t.t === "op" && ops.includes(t.text) ? t.text : undefined;
  }

  /** A number where a truth value belongs: accepted as `x != 0` (NaN is false), noted as retired. */
  #truth(e: Expr, from: number, to: number): Expr {
    if (isTruth(e)) return e;
    const text = this.#src.slice(from - 1, to - 1).trim();
    this.retired.push({ old: text, new: `${formatExpr(e)} != 0`, col: from });
    return { kind: "cmp", op: "!=", left: e, right: { kind: "num", value: 0 } };
  }

  #or(): Expr {
    return this.#chain("or", () => this.#and());
  }

  #and(): Expr {
    return this.#chain("and", () => this.#not());
  }

  /** `item (word item)*`, flattened; each item of a chain must be a truth value. */
  #chain(word: "and" | "or", item: () => Expr): Expr {
    const from = [this.#peek().col];
    const items = [item()];
    const to: number[] = [];
    for (;;) {
      const at = this.#peek().col;
      if (!this.#logic(word)) break;
      to.push(at);
      from.push(this.#peek().col);
      items.push(item());
    }
    if (items.length === 1) return items[0]!;
    to.push(this.#peek().col);
    const truths = items.map((e, i) => this.#truth(e, from[i]!, to[i]!));
    return { kind: word, items: truths.flatMap((c) => (c.kind === word ? c.items : [c])) };
  }

  #not(): Expr {
    if (this.#logic("not")) {
      const from = this.#peek().col;
      const item = this.#nested(() => this.#not());
      return { kind: "not", item: this.#truth(item, from, this.#peek().col) };
    }
    return this.#cmp();
  }

  #cmp(): Expr {
    const left = this.#sum();
    const op = this.#op(...COMPARISONS);
    if (!op) return left;
    this.#pos++;
    const right = this.#sum();
    return { kind: "cmp", op: op as Comparison, left, right };
  }

  #sum(): Expr {
    let left = this.#term();
    for (let op = this.#op("+", "-"); op; op = this.#op("+", "-")) {
      this.#pos++;
      left = { kind: "arith", op: op as Arithmetic, left, right: this.#term() };
    }
    return left;
  }

  #term(): Expr {
    let left = this.#unary();
    for (let op = this.#op("*", "/", "%"); op; op = this.#op("*", "/", "%")) {
      this.#pos++;
      left = { kind: "arith", op: op as Arithmetic, left, right: this.#unary() };
    }
    return left;
  }

  #unary(): Expr {
    const op = this.#op("-", "+");
    if (!op) return this.#atom();
    this.#pos++;
    const item = this.#nested(() => this.#unary());
    if (op === "+") return item;
    // A negative literal stays a literal, so that `x > -5` keeps its fast path and its canonical text.
    return item.kind === "num" ? { kind: "num", value: -item.value } : { kind: "neg", item };
  }

  #atom(): Expr {
    const t = this.#next();
    switch (t.t) {
      case "num":
        if (!Number.isFinite(t.value))
          throw new ExprError(`number "${t.text}" is out of range at column ${t.col}`);
        return { kind: "num", value: t.value };
      case "kw":
        if (t.word === "true" || t.word === "false") {
          if (t.text !== t.word) this.retired.push({ old: t.text, new: t.word, col: t.col });
          return { kind: "bool", value: t.word === "true" };
        }
        break;
      case "ident":
        if (this.#op("(")) return this.#call(t);
        return { kind: "var", name: this.#scope.name(t.key, t.col) };
      case "op":
        if (t.text === "(") {
          const inner = this.#nested(() => this.#or());
          const close = this.#next();
          if (close.t !== "op" || close.text !== ")") {
            throw new ExprError(
              close.t === "end"
                ? `missing ")" for "(" at column ${t.col}`
                : `expected ")" but got "${close.text}" at column ${close.col}`,
            );
          }
          return inner;
        }
        break;
      case "end":
        break;
      default:
        t satisfies never;
    }
    const got = t.t === "end" ? "the end" : `"${t.text}"`;
    throw new ExprError(
      `expected a number, ${this.#scope.names}, a function or "(" but got ${got} at column ${t.col}`,
    );
  }

  #call(name: Token & { t: "ident" }): Expr {
    const f = FUNCTIONS[name.key];
    if (!f || !Object.hasOwn(FUNCTIONS, name.key)) {
      throw new ExprError(
        `unknown function "${name.text}" at column ${name.col} (known: ${Object.keys(FUNCTIONS).join(", ")})`,
      );
    }
    this.#pos++; // "("
    const args: Expr[] = [this.#nested(() => this.#or())];
    while (this.#op(",")) {
      this.#pos++;
      args.push(this.#nested(() => this.#or()));
    }
    const close = this.#next();
    if (close.t !== "op" || close.text !== ")") {
      throw new ExprError(
        close.t === "end"
          ? `missing ")" for "${name.key}(" at column ${name.col}`
          : `expected "," or ")" but got "${close.text}" at column ${close.col}`,
      );
    }
    const [lo, hi] = f.arity;
    if (args.length < lo || args.length > hi) {
      const want = lo === hi ? `${lo}` : `${lo} to ${hi}`;
      throw new ExprError(
        `${name.key}() takes ${want} argument(s), got ${args.length} at column ${name.col}`,
      );
    }
    return { kind: "call", fn: name.key, args };
  }

  #nested<T>(parse: () => T): T {
    if (++this.#depth > MAX_DEPTH) {
      throw new ExprError(`expression nested too deeply at column ${this.#peek().col}`);
    }
    try {
      return parse();
    } finally {
      this.#depth--;
    }
  }
}

function parseWith(src: string, scope: Scope, truth: boolean): Parsed {
  if (src.length > MAX_EXPR_CHARS) throw new ExprError(`longer than ${MAX_EXPR_CHARS} characters`);
  const p = new Parser(src, scope);
  const expr = p.parse(truth);
  return { expr, retired: p.retired };
}

/** Parses an expression that gives a number (a pipeline's `derive`); throws ExprError naming the column. */
export function parseExpr(src: string, scope: Scope): Parsed {
  return parseWith(src, scope, false);
}

/**
 * Parses a condition (a rule's `when`, a pipeline's `filter`): an expression that gives a truth value.
 * A bare number is still taken as `x != 0`, and reported as retired.
 */
export function parseCondition(src: string, scope: Scope): Parsed {
  return parseWith(src, scope, true);
}

/** One line for a retired spelling: `"&&" at column 15 is a retired spelling; write "and"`. */
export function describeRetired(r: Retired): string {
  return `"${r.old}" at column ${r.col} is a retired spelling; write "${r.new}"`;
}

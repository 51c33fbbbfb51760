// A tiny arithmetic and comparison language over a point's `value` and `t`, parsed by hand into closures (no eval).
//
//   expr   := or
//   or     := and (("||" | "or") and)*
//   and    := not (("&&" | "and") not)*
//   not    := ("!" | "not") not | cmp
//   cmp    := sum (("<" | "<=" | ">" | ">=" | "==" | "!=") sum)?
//   sum    := term (("+" | "-") term)*
//   term   := unary (("*" | "/" | "%") unary)*
//   unary  := "-" unary | "+" unary | atom
//   atom   := number | "value" | "t" | "true" | "false" | name "(" expr ("," expr)* ")" | "(" expr ")"
//
// Comparisons and logic give 1 or 0; a filter passes when its result is neither 0 nor NaN.

/** A compiled expression: `value` and `t` in, a number out. */
export type Expr = (value: number, t: number) => number;

/** An expression that does not parse; `column` is 1-based. */
export class ExprError extends Error {
  readonly column: number;
  constructor(message: string, column: number) {
    super(`${message} at column ${column}`);
    this.column = column;
  }
}

export const MAX_EXPR_CHARS = 500;
const MAX_DEPTH = 64;

const FUNCTIONS: Readonly<Record<string, { arity: [number, number]; fn: (...a: number[]) => number }>> = {
  abs: { arity: [1, 1], fn: Math.abs },
  sqrt: { arity: [1, 1], fn: Math.sqrt },
  log: { arity: [1, 1], fn: Math.log },
  log10: { arity: [1, 1], fn: Math.log10 },
  exp: { arity: [1, 1], fn: Math.exp },
  floor: { arity: [1, 1], fn: Math.floor },
  ceil: { arity: [1, 1], fn: Math.ceil },
  round: { arity: [1, 1], fn: Math.round },
  pow: { arity: [2, 2], fn: Math.pow },
  min: { arity: [2, 8], fn: Math.min },
  max: { arity: [2, 8], fn: Math.max },
};

type Token =
  | { kind: "num"; value: number; col: number }
  | { kind: "name"; name: string; col: number }
  | { kind: "op"; op: string; col: number }
  | { kind: "end"; col: number };

const OPS = ["<=", ">=", "==", "!=", "&&", "||", "<", ">", "+", "-", "*", "/", "%", "(", ")", ",", "!"];

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === " " || c === "\t") {
      i++;
      continue;
    }
    const col = i + 1;
    const num = /^(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/.exec(src.slice(i));
    if (num) {
      out.push({ kind: "num", value: Number(num[0]), col });
      i += num[0].length;
      continue;
    }
    const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i));
    if (name) {
      out.push({ kind: "name", name: name[0], col });
      i += name[0].length;
      continue;
    }
    const op = OPS.find((o) => src.startsWith(o, i));
    if (!op) throw new ExprError(`unexpected character '${c}'`, col);
    out.push({ kind: "op", op, col });
    i += op.length;
  }
  out.push({ kind: "end", col: src.length + 1 });
  return out;
}

const bool = (b: boolean) => (b ? 1 : 0);
const truthy = (x: number) => x !== 0 && !Number.isNaN(x);

/** Recursive-descent parser producing closures directly. */
class Parser {
  #pos = 0;
  #depth = 0;
  readonly #tokens: Token[];

  constructor(tokens: Token[]) {
    this.#tokens = tokens;
  }

  parse(): Expr {
    const e = this.#or();
    const tok = this.#peek();
    if (tok.kind !== "end") throw new ExprError(`unexpected ${describe(tok)}`, tok.col);
    return e;
  }

  #peek(): Token {
    return this.#tokens[this.#pos]!;
  }

  #isOp(...ops: string[]): string | undefined {
    const tok = this.#peek();
    if (tok.kind === "op" && ops.includes(tok.op)) return tok.op;
    if (tok.kind === "name" && ops.includes(tok.name)) return tok.name;
    return undefined;
  }

  #expect(op: string): void {
    const tok = this.#peek();
    if (tok.kind !== "op" || tok.op !== op)
      throw new ExprError(`expected '${op}', found ${describe(tok)}`, tok.col);
    this.#pos++;
  }

  #or(): Expr {
    let left = this.#and();
    while (this.#isOp("||", "or")) {
      this.#pos++;
      const a = left;
      const b = this.#and();
      left = (v, t) => bool(truthy(a(v, t)) || truthy(b(v, t)));
    }
    return left;
  }

  #and(): Expr {
    let left = this.#not();
    while (this.#isOp("&&", "and")) {
      this.#pos++;
      const a = left;
      const b = this.#not();
      left = (v, t) => bool(truthy(a(v, t)) && truthy(b(v, t)));
    }
    return left;
  }

  #not(): Expr {
    if (this.#isOp("!", "not")) {
      this.#pos++;
      const a = this.#nested(() => this.#not());
      return (v, t) => bool(!truthy(a(v, t)));
    }
    return this.#cmp();
  }

  #cmp(): Expr {
    const a = this.#sum();
    const op = this.#isOp("<", "<=", ">", ">=", "==", "!=");
    if (!op) return a;
    this.#pos++;
    const b = this.#sum();
    switch (op) {
      case "<":
        return (v, t) => bool(a(v, t) < b(v, t));
      case "<=":
        return (v, t) => bool(a(v, t) <= b(v, t));
      case ">":
        return (v, t) => bool(a(v, t) > b(v, t));
      case ">=":
        return (v, t) => bool(a(v, t) >= b(v, t));
      case "==":
        return (v, t) => bool(a(v, t) === b(v, t));
      default:
        return (v, t) => bool(a(v, t) !== b(v, t));
    }
  }

  #sum(): Expr {
    let left = this.#term();
    for (let op = this.#isOp("+", "-"); op; op = this.#isOp("+", "-")) {
      this.#pos++;
      const a = left;
      const b = this.#term();
      left = op === "+" ? (v, t) => a(v, t) + b(v, t) : (v, t) => a(v, t) - b(v, t);
    }
    return left;
  }

  #term(): Expr {
    let left = this.#unary();
    for (let op = this.#isOp("*", "/", "%"); op; op = this.#isOp("*", "/", "%")) {
      this.#pos++;
      const a = left;
      const b = this.#unary();
      left =
        op === "*"
          ? (v, t) => a(v, t) * b(v, t)
          : op === "/"
            ? (v, t) => a(v, t) / b(v, t)
            : (v, t) => a(v, t) % b(v, t);
    }
    return left;
  }

  #unary(): Expr {
    const op = this.#isOp("-", "+");
    if (op) {
      this.#pos++;
      const a = this.#nested(() => this.#unary());
      return op === "-" ? (v, t) => -a(v, t) : a;
    }
    return this.#atom();
  }

  #atom(): Expr {
    const tok = this.#peek();
    if (tok.kind === "num") {
      this.#pos++;
      const k = tok.value;
      return () => k;
    }
    if (tok.kind === "op" && tok.op === "(") {
      this.#pos++;
      const e = this.#nested(() => this.#or());
      this.#expect(")");
      return e;
    }
    if (tok.kind === "name") {
      this.#pos++;
      switch (tok.name) {
        case "value":
          return (v) => v;
        case "t":
          return (_v, t) => t;
        case "true":
          return () => 1;
        case "false":
          return () => 0;
      }
      const f = FUNCTIONS[tok.name];
      if (!f) {
        throw new ExprError(
          `unknown name '${tok.name}' (use value, t, or ${Object.keys(FUNCTIONS).join(", ")})`,
          tok.col,
        );
      }
      this.#expect("(");
      const args: Expr[] = [this.#nested(() => this.#or())];
      while (this.#isOp(",")) {
        this.#pos++;
        args.push(this.#nested(() => this.#or()));
      }
      this.#expect(")");
      const [lo, hi] = f.arity;
      if (args.length < lo || args.length > hi) {
        const want = lo === hi ? `${lo}` : `${lo} to ${hi}`;
        throw new ExprError(`${tok.name}() takes ${want} argument(s), got ${args.length}`, tok.col);
      }
      const fn = f.fn;
      if (args.length === 1) {
        const a = args[0]!;
        return (v, t) => fn(a(v, t));
      }
      if (args.length === 2) {
        const a = args[0]!;
        const b = args[1]!;
        return (v, t) => fn(a(v, t), b(v, t));
      }
      return (v, t) => fn(...args.map((a) => a(v, t)));
    }
    throw new ExprError(`expected a number, value, t, a function or '(', found ${describe(tok)}`, tok.col);
  }

  #nested(parse: () => Expr): Expr {
    if (++this.#depth > MAX_DEPTH) throw new ExprError("expression nested too deeply", this.#peek().col);
    try {
      return parse();
    } finally {
      this.#depth--;
    }
  }
}

function describe(tok: Token): string {
  switch (tok.kind) {
    case "num":
      return `number ${tok.value}`;
    case "name":
      return `'${tok.name}'`;
    case "op":
      return `'${tok.op}'`;
    case "end":
      return "end of expression";
  }
}

/** Compiles an expression over `value` and `t`; throws ExprError naming the column of the first problem. */
export function compileExpr(src: string): Expr {
  if (src.length > MAX_EXPR_CHARS) throw new ExprError(`longer than ${MAX_EXPR_CHARS} characters`, 1);
  if (src.trim() === "") throw new ExprError("empty expression", 1);
  return new Parser(tokenize(src)).parse();
}

/** Whether a filter expression's result lets the point through. */
export const passes = truthy;

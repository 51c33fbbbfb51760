// The expression tree shared by rule conditions and stream pipelines, its canonical text, and the names it reads.

export const COMPARISONS = [">", ">=", "<", "<=", "==", "!="] as const;
export type Comparison = (typeof COMPARISONS)[number];
export const ARITHMETIC = ["+", "-", "*", "/", "%"] as const;
export type Arithmetic = (typeof ARITHMETIC)[number];

/**
 * A parsed expression. `var` is a name its context binds (a series key or `state.x` in a rule, `value` or
 * `t` in a pipeline). Comparisons, `and`, `or`, `not` and the literals `true`/`false` are truth values;
 * everything else is a number. `and`/`or` are flattened (n-ary).
 */
export type Expr =
  | { readonly kind: "num"; readonly value: number }
  | { readonly kind: "bool"; readonly value: boolean }
  | { readonly kind: "var"; readonly name: string }
  | { readonly kind: "neg"; readonly item: Expr }
  | { readonly kind: "arith"; readonly op: Arithmetic; readonly left: Expr; readonly right: Expr }
  | { readonly kind: "call"; readonly fn: string; readonly args: readonly Expr[] }
  | { readonly kind: "cmp"; readonly op: Comparison; readonly left: Expr; readonly right: Expr }
  | { readonly kind: "and"; readonly items: readonly Expr[] }
  | { readonly kind: "or"; readonly items: readonly Expr[] }
  | { readonly kind: "not"; readonly item: Expr };

/** Whether an expression gives a truth value (rather than a number). */
export function isTruth(e: Expr): boolean {
  return e.kind === "cmp" || e.kind === "and" || e.kind === "or" || e.kind === "not" || e.kind === "bool";
}

/** Binding strength, loosest first: or, and, not, comparison, sum, product, unary minus, atom. */
function level(e: Expr): number {
  switch (e.kind) {
    case "or":
      return 1;
    case "and":
      return 2;
    case "not":
      return 3;
    case "cmp":
      return 4;
    case "arith":
      return e.op === "+" || e.op === "-" ? 5 : 6;
    case "neg":
      return e.item.kind === "num" ? 8 : 7;
    default:
      return 8;
  }
}

function wrap(e: Expr, min: number): string {
  const text = formatExpr(e);
  return level(e) < min ? `(${text})` : text;
}

/** The canonical text of an expression; two expressions with the same text behave the same. */
export function formatExpr(e: Expr): string {
  switch (e.kind) {
    case "num":
      return String(e.value);
    case "bool":
      return e.value ? "true" : "false";
    case "var":
      return e.name;
    case "neg":
      return `-${wrap(e.item, 7)}`;
    case "arith": {
      const l = level(e);
      // Left-associative: the right side of the same strength needs parentheses.
      return `${wrap(e.left, l)} ${e.op} ${wrap(e.right, l + 1)}`;
    }
    case "call":
      return `${e.fn}(${e.args.map(formatExpr).join(", ")})`;
    case "cmp":
      return `${wrap(e.left, 5)} ${e.op} ${wrap(e.right, 5)}`;
    case "and":
      return e.items.map((i) => wrap(i, 2)).join(" and ");
    case "or":
      return e.items.map((i) => wrap(i, 1)).join(" or ");
    case "not":
      return `not ${wrap(e.item, 3)}`;
    default:
      return e satisfies never;
  }
}

/** The names an expression reads, each once, in order of appearance. */
export function exprNames(e: Expr): string[] {
  const seen = new Set<string>();
  const visit = (n: Expr): void => {
    switch (n.kind) {
      case "var":
        seen.add(n.name);
        return;
      case "num":
      case "bool":
        return;
      case "neg":
      case "not":
        visit(n.item);
        return;
      case "arith":
      case "cmp":
        visit(n.left);
        visit(n.right);
        return;
      case "call":
        n.args.forEach(visit);
        return;
      case "and":
      case "or":
        n.items.forEach(visit);
        return;
      default:
        n satisfies never;
    }
  };
  visit(e);
  return [...seen];
}

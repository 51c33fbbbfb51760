// The one compiler of the expression language: a tree to plain closures over one environment (no code from text).
//
// A missing value is NaN. NaN makes every comparison false, `!=` included (a rule never fires and a filter
// never passes on data it does not have), and `not` of such a comparison true. Truth values read as 1 or 0
// where a number is wanted.
import type { Comparison, Expr } from "./ast.ts";
import { FUNCTIONS } from "./functions.ts";

/** A compiled numeric expression over the context's environment (a rule's snapshot; a pipeline's point). */
export type NumFn<E> = (env: E) => number;
/** A compiled condition over the context's environment. */
export type TruthFn<E> = (env: E) => boolean;
/** Gives the reader of one variable (a name the context's Scope accepted). */
export type Readers<E> = (name: string) => NumFn<E>;

function comparison<E>(op: Comparison, left: Expr, right: Expr, read: Readers<E>): TruthFn<E> {
  const a = compileNumber(left, read);
  // The common shape, `x OP number`, reads the constant once here rather than through a closure.
  if (right.kind === "num") {
    const n = right.value;
    switch (op) {
      case ">":
        return (p) => a(p) > n;
      case ">=":
        return (p) => a(p) >= n;
      case "<":
        return (p) => a(p) < n;
      case "<=":
        return (p) => a(p) <= n;
      case "==":
        return (p) => a(p) === n;
      case "!=":
        return (p) => {
          const x = a(p);
          return !Number.isNaN(x) && x !== n;
        };
      default:
        return op satisfies never;
    }
  }
  const b = compileNumber(right, read);
  switch (op) {
    case ">":
      return (p) => a(p) > b(p);
    case ">=":
      return (p) => a(p) >= b(p);
    case "<":
      return (p) => a(p) < b(p);
    case "<=":
      return (p) => a(p) <= b(p);
    case "==":
      return (p) => a(p) === b(p);
    case "!=":
      return (p) => {
        const x = a(p);
        const y = b(p);
        return !Number.isNaN(x) && !Number.isNaN(y) && x !== y;
      };
    default:
      return op satisfies never;
  }
}

/** Compiles a condition to a closure (short-circuiting `and`/`or`). */
export function compileTruth<E>(e: Expr, read: Readers<E>): TruthFn<E> {
  switch (e.kind) {
    case "cmp":
      return comparison(e.op, e.left, e.right, read);
    case "bool": {
      const v = e.value;
      return () => v;
    }
    case "not": {
      const p = compileTruth(e.item, read);
      return (a) => !p(a);
    }
    case "and": {
      const ps = e.items.map((i) => compileTruth(i, read));
      if (ps.length === 2) {
        const [p, q] = ps as [TruthFn<E>, TruthFn<E>];
        return (a) => p(a) && q(a);
      }
      return (a) => {
        for (const p of ps) if (!p(a)) return false;
        return true;
      };
    }
    case "or": {
      const ps = e.items.map((i) => compileTruth(i, read));
      if (ps.length === 2) {
        const [p, q] = ps as [TruthFn<E>, TruthFn<E>];
        return (a) => p(a) || q(a);
      }
      return (a) => {
        for (const p of ps) if (p(a)) return true;
        return false;
      };
    }
    default: {
      // A number as a condition: true when it is neither 0 nor NaN.
      const f = compileNumber(e, read);
      return (a) => {
        const x = f(a);
        return x !== 0 && !Number.isNaN(x);
      };
    }
  }
}

/** Compiles an expression to a closure that gives a number (truth values as 1 or 0). */
export function compileNumber<E>(e: Expr, read: Readers<E>): NumFn<E> {
  switch (e.kind) {
    case "num": {
      const v = e.value;
      return () => v;
    }
    case "var":
      return read(e.name);
    case "neg": {
      const f = compileNumber(e.item, read);
      return (a) => -f(a);
    }
    case "arith": {
      const l = compileNumber(e.left, read);
      const r = compileNumber(e.right, read);
      const op = e.op;
      switch (op) {
        case "+":
          return (a) => l(a) + r(a);
        case "-":
          return (a) => l(a) - r(a);
        case "*":
          return (a) => l(a) * r(a);
        case "/":
          return (a) => l(a) / r(a);
        case "%":
          return (a) => l(a) % r(a);
        default:
          return op satisfies never;
      }
    }
    case "call": {
      const fn = FUNCTIONS[e.fn]!.fn;
      const args = e.args.map((x) => compileNumber(x, read));
      if (args.length === 1) {
        const x = args[0]!;
        return (a) => fn(x(a));
      }
      if (args.length === 2) {
        const x = args[0]!;
        const y = args[1]!;
        return (a) => fn(x(a), y(a));
      }
      return (a) => fn(...args.map((x) => x(a)));
    }
    default: {
      const p = compileTruth(e, read);
      return (a) => (p(a) ? 1 : 0);
    }
  }
}

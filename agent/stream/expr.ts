// Pipeline expressions (`filter`, `derive`): the shared expression language (shared/expr) over a point's `value` and `t`.
//
// The language, its operators and their meaning are the same as in rule conditions; only the names differ:
// a pipeline reads `value` (the point's value) and `t` (its time in ms). Truth values read as 1 or 0; a
// filter passes when its result is neither 0 nor NaN.
import {
  compileNumber,
  ExprError,
  type NumFn,
  parseCondition,
  parseExpr,
  type Retired,
  type Scope,
} from "../../shared/expr/index.ts";

export { ExprError, MAX_EXPR_CHARS } from "../../shared/expr/index.ts";

/** A compiled expression: `value` and `t` in, a number out. */
export type Expr = (value: number, t: number) => number;

/** Names in a pipeline expression. */
export const STREAM_SCOPE: Scope = {
  names: "value, t",
  name(key, col) {
    if (key === "value" || key === "t") return key;
    throw new ExprError(`unknown name "${key}" at column ${col} (a pipeline expression reads value and t)`);
  },
};

/** The point an expression reads; one per compiled expression, filled in before each call (no allocation). */
interface Point {
  value: number;
  t: number;
}

const READERS = (name: string): NumFn<Point> => (name === "value" ? (p) => p.value : (p) => p.t);

/**
 * Compiles a pipeline expression; `as: "filter"` parses it as a condition (a bare number is a retired
 * spelling of `x != 0`). Throws ExprError naming the column; retired spellings go to `retired`.
 */
export function compileExpr(src: string, as: "filter" | "derive" = "derive", retired?: Retired[]): Expr {
  const parsed = as === "filter" ? parseCondition(src, STREAM_SCOPE) : parseExpr(src, STREAM_SCOPE);
  retired?.push(...parsed.retired);
  const f = compileNumber(parsed.expr, READERS);
  const point: Point = { value: 0, t: 0 };
  return (value, t) => {
    point.value = value;
    point.t = t;
    return f(point);
  };
}

/** Whether a filter expression's result lets the point through. */
export const passes = (x: number): boolean => x !== 0 && !Number.isNaN(x);

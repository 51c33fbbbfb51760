// Specification of the stream expression language: arithmetic, comparisons and logic over value and t, no eval.
import { describe, expect, test } from "bun:test";
import { compileExpr, ExprError } from "../../agent/stream/index.ts";

const run = (src: string, value = 0, t = 0) => compileExpr(src)(value, t);

describe("stream expressions", () => {
  test("arithmetic follows the usual precedence and associativity", () => {
    expect(run("value / 9.81", 19.62)).toBeCloseTo(2, 12);
    expect(run("1 + 2 * 3")).toBe(7);
    expect(run("(1 + 2) * 3")).toBe(9);
    expect(run("10 - 4 - 3")).toBe(3);
    expect(run("100 / 10 / 5")).toBe(2);
    expect(run("7 % 4")).toBe(3);
    expect(run("-value + +2", 5)).toBe(-3);
    expect(run("2 * -3")).toBe(-6);
    expect(run("1e3 + .5 + 2.5E-1")).toBe(1000.75);
  });

  test("value and t are the point's value and time", () => {
    expect(run("value * 2 + t", 4, 1000)).toBe(1008);
    expect(run("t % 60000 == 0", 0, 120_000)).toBe(1);
  });

  test("comparisons and logic give 1 or 0, with word and symbol forms", () => {
    expect(run("value > 0", 1)).toBe(1);
    expect(run("value > 0", 0)).toBe(0);
    expect(run("value >= 0 && value <= 10", 10)).toBe(1);
    expect(run("value < 0 or value > 10", 5)).toBe(0);
    expect(run("not (value == 3)", 3)).toBe(0);
    expect(run("!(value != 3)", 3)).toBe(1);
    expect(run("value > 1 and value < 3 || value == 10", 10)).toBe(1);
    expect(run("true and not false")).toBe(1);
  });

  test("functions: abs, sqrt, log, min, max, pow and friends", () => {
    expect(run("abs(value)", -4)).toBe(4);
    expect(run("sqrt(16) + pow(2, 10)")).toBe(1028);
    expect(run("min(value, 3, 9)", 5)).toBe(3);
    expect(run("max(1, value)", 5)).toBe(5);
    expect(run("round(2.5) + floor(1.9) + ceil(1.1)")).toBe(3 + 1 + 2);
    expect(run("log10(1000)")).toBeCloseTo(3, 12);
    expect(run("exp(log(5))")).toBeCloseTo(5, 12);
  });

  test("errors name the column and what was wrong", () => {
    const cases: [string, RegExp][] = [
      ["value >", /expected a number, value, t, a function or "\(" but got the end at column 8/],
      ["value > > 1", /column 9/],
      ["(value + 1", /missing "\)" for "\(" at column 1/],
      ["value + 1)", /unmatched "\)" at column 10/],
      ["foo(1)", /unknown function "foo" at column 1/],
      ["foo + 1", /unknown name "foo" at column 1 \(a pipeline expression reads value and t\)/],
      ["process.exit(1)", /unknown function "process.exit" at column 1/],
      ["eval(1)", /unknown function "eval"/],
      ["value $ 2", /unexpected character "\$" at column 7/],
      ["min(1)", /min\(\) takes 2 to 8 argument\(s\), got 1/],
      ["abs(1, 2)", /abs\(\) takes 1 argument\(s\), got 2/],
      ["", /empty expression/],
      ["value value", /got "value" at column 7/],
    ];
    for (const [src, message] of cases) {
      let err: unknown;
      try {
        compileExpr(src);
      } catch (e) {
        err = e;
      }
      expect(err, src).toBeInstanceOf(ExprError);
      expect((err as Error).message, src).toMatch(message);
    }
  });

  test("refuses deep nesting and very long sources instead of overflowing the stack", () => {
    expect(() => compileExpr(`${"(".repeat(100)}1${")".repeat(100)}`)).toThrow(/nested too deeply/);
    expect(() => compileExpr(`${"-".repeat(200)}1`)).toThrow(/nested too deeply/);
    expect(() => compileExpr(`${"1+".repeat(600)}1`)).toThrow(/longer than 1000/);
  });
});

// Property test of the one expression language: the same text means the same in a rule condition and in a pipeline filter.
import { describe, expect, test } from "bun:test";
import { compileExpr, compilePipelines, passes } from "../../agent/stream/index.ts";
import { formatExpr, parseCondition } from "../../shared/expr/index.ts";
import { type AgentState, compileRules, RULE_SCOPE } from "../../shared/rules/index.ts";
import { mulberry32 as rng } from "../support/prng.ts";

const STATE: AgentState = {
  connected: true,
  offline_s: 0,
  buffer_fill: 0,
  tasks_running: 0,
  tasks_paused: 0,
};

/** A random expression over `value` and small numbers, in every spelling the language takes (retired ones too). */
function generator(seed: number) {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const num = (): string => pick(["0", "1", "2", "3", "2.5", "10", "-1", ".5", "1e1"]);
  const numeric = (depth: number): string => {
    const k = depth <= 0 ? Math.floor(r() * 2) : Math.floor(r() * 6);
    switch (k) {
      case 0:
        return num();
      case 1:
        return "value";
      case 2:
        return `${numeric(depth - 1)} ${pick(["+", "-", "*", "/", "%"])} ${numeric(depth - 1)}`;
      case 3:
        return `(${numeric(depth - 1)})`;
      case 4:
        return `${pick(["abs", "floor", "round", "sqrt"])}(${numeric(depth - 1)})`;
      default:
        return `${pick(["min", "max", "pow"])}(${numeric(depth - 1)}, ${numeric(depth - 1)})`;
    }
  };
  const truth = (depth: number): string => {
    const k = depth <= 0 ? 0 : Math.floor(r() * 6);
    switch (k) {
      case 0:
        return `${numeric(1)} ${pick([">", ">=", "<", "<=", "==", "!="])} ${numeric(1)}`;
      case 1:
        return `${truth(depth - 1)} ${pick(["and", "or", "&&", "||", "AND"])} ${truth(depth - 1)}`;
      case 2:
        return `${pick(["not ", "!", "NOT "])}(${truth(depth - 1)})`;
      case 3:
        return `(${truth(depth - 1)})`;
      case 4:
        return pick(["true", "false"]);
      default:
        return numeric(1); // a bare number as a condition: the retired spelling of `x != 0`
    }
  };
  return () => truth(3);
}

const VALUES = [0, 1, 2, 2.5, -1, 10, 0.5, 3, 1e6, Number.NaN];

describe("one expression language", () => {
  test("the same text gives the same truth in a rule condition (series `value`) and a pipeline filter (the point's value), old spellings included", () => {
    const gen = generator(7);
    let checked = 0;
    let held = 0;
    for (let i = 0; i < 400; i++) {
      const text = gen();
      const rules = compileRules([{ name: "p", when: text, actions: [{ alert: "x" }] }]);
      const when = rules.rules[0]!.when;
      const filter = compileExpr(text, "filter");
      for (const v of VALUES) {
        // In a rule, NaN is a series with no value: it is missing from the snapshot.
        const values = new Map(Number.isNaN(v) ? [] : [["value", v]]);
        const ruleSays = when({ values, state: STATE });
        const streamSays = passes(filter(v, 0));
        expect({ text, v, says: streamSays }).toEqual({ text, v, says: ruleSays });
        checked++;
        if (ruleSays) held++;
      }
      // The canonical text means the same and uses no retired spelling.
      const parsed = parseCondition(text, RULE_SCOPE);
      const canon = formatExpr(parsed.expr);
      const again = parseCondition(canon, RULE_SCOPE);
      expect({ canon, retired: again.retired }).toEqual({ canon, retired: [] });
      expect(formatExpr(again.expr)).toBe(canon);
      // Both contexts find the same retired spellings.
      const streamRetired: unknown[] = [];
      compileExpr(text, "filter", streamRetired as never);
      expect(streamRetired).toEqual([...parsed.retired]);
      expect(rules.warnings.length).toBe(parsed.retired.length);
    }
    // The generator is not degenerate: conditions both hold and fail.
    expect(held).toBeGreaterThan(checked * 0.1);
    expect(held).toBeLessThan(checked * 0.9);
  });

  test("a missing value makes every comparison false, != included, in both contexts", () => {
    for (const op of [">", ">=", "<", "<=", "==", "!="]) {
      const text = `value ${op} 1`;
      expect(passes(compileExpr(text, "filter")(Number.NaN, 0))).toBe(false);
      const when = compileRules([{ name: "p", when: text, actions: [{ alert: "x" }] }]).rules[0]!.when;
      expect(when({ values: new Map(), state: STATE })).toBe(false);
    }
  });

  test("a pipeline with retired spellings loads, and each is listed once naming the pipeline, the field, old and new", () => {
    const p = compilePipelines({
      pipelines: [
        {
          name: "vib",
          source: "sensor.v",
          steps: [{ filter: "value > 0 && value < 100" }, { derive: { series: "x", expr: "value / 9.81" } }],
        },
        { name: "ok", source: "sensor.w", steps: [{ filter: "value > 0 and not value > 5" }] },
      ],
    });
    expect(p.warnings).toEqual([
      'pipelines.0.steps.0.filter: pipeline "vib": "&&" at column 11 is a retired spelling; write "and"',
    ]);
  });
});

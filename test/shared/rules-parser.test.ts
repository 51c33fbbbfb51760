// Specification of the rule language and the rule list: what parses, what it means, and errors that name rule, field and column.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../../shared/errors.ts";
import {
  type AgentState,
  canonicalSeriesKey,
  compileCondition,
  compileRules,
  formatCondition,
  parseCondition,
  type Snapshot,
} from "../../shared/rules/index.ts";

const IDLE_STATE: AgentState = {
  connected: true,
  offline_s: 0,
  buffer_fill: 0,
  tasks_running: 0,
  tasks_paused: 0,
};

function snap(values: Record<string, number>, state: Partial<AgentState> = {}): Snapshot {
  return { values: new Map(Object.entries(values)), state: { ...IDLE_STATE, ...state } };
}

/** Whether condition `text` holds for `values` (and agent state). */
function holds(text: string, values: Record<string, number>, state: Partial<AgentState> = {}): boolean {
  return compileCondition(parseCondition(text))(snap(values, state));
}

/** The ConfigError message compiling `rules` throws. */
function errorOf(rules: unknown): string {
  try {
    compileRules(rules);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error("expected a ConfigError");
}

const rule = (when: unknown, extra: Record<string, unknown> = {}) => ({
  name: "cpu-hot",
  when,
  actions: [{ alert: "hot" }],
  ...extra,
});

describe("rule conditions", () => {
  test("every comparison operator compares a series with a number, boundary included", () => {
    const at80 = { "cpu.util": 80 };
    expect(holds("cpu.util > 80", at80)).toBe(false);
    expect(holds("cpu.util > 79.99", at80)).toBe(true);
    expect(holds("cpu.util >= 80", at80)).toBe(true);
    expect(holds("cpu.util >= 80.01", at80)).toBe(false);
    expect(holds("cpu.util < 80", at80)).toBe(false);
    expect(holds("cpu.util < 80.01", at80)).toBe(true);
    expect(holds("cpu.util <= 80", at80)).toBe(true);
    expect(holds("cpu.util <= 79.99", at80)).toBe(false);
    expect(holds("cpu.util == 80", at80)).toBe(true);
    expect(holds("cpu.util == 81", at80)).toBe(false);
    expect(holds("cpu.util != 80", at80)).toBe(false);
    expect(holds("cpu.util != 81", at80)).toBe(true);
  });

  test("a number may stand on the left and a series on both sides", () => {
    expect(holds("80 < cpu.util", { "cpu.util": 85 })).toBe(true);
    expect(holds("80 < cpu.util", { "cpu.util": 75 })).toBe(false);
    expect(holds("net.rx_bps > net.tx_bps", { "net.rx_bps": 10, "net.tx_bps": 5 })).toBe(true);
    expect(holds("net.rx_bps != net.tx_bps", { "net.rx_bps": 5, "net.tx_bps": 5 })).toBe(false);
    expect(holds("state.tasks_paused < state.tasks_running", {}, { tasks_running: 3, tasks_paused: 1 })).toBe(
      true,
    );
  });

  test("operators need no spaces, and negative numbers follow an operator directly", () => {
    expect(holds("temp.cpu_c>-5", { "temp.cpu_c": 0 })).toBe(true);
    expect(holds("temp.cpu_c<=-5", { "temp.cpu_c": -5 })).toBe(true);
    expect(holds("(cpu.util>1)and(mem.used_pct<2)", { "cpu.util": 2, "mem.used_pct": 1 })).toBe(true);
  });

  test("numbers: integers, decimals, exponents, negatives", () => {
    expect(holds("mem.avail_bytes < 1e9", { "mem.avail_bytes": 999_999_999 })).toBe(true);
    expect(holds("mem.avail_bytes < 1e9", { "mem.avail_bytes": 1_000_000_000 })).toBe(false);
    expect(holds("mem.avail_bytes < 1073741824", { "mem.avail_bytes": 1073741823 })).toBe(true);
    expect(holds("x == 1.5e-3", { x: 0.0015 })).toBe(true);
    expect(holds("x == 2E+3", { x: 2000 })).toBe(true);
    expect(holds("x > .5", { x: 0.6 })).toBe(true);
    expect(holds("x == -0.25", { x: -0.25 })).toBe(true);
    expect(holds("x > -1e3", { x: -999 })).toBe(true);
    expect(formatCondition(parseCondition("x < 1e9"))).toBe("x < 1000000000");
  });

  test("not binds tighter than and, and tighter than or", () => {
    // a or (b and c)
    expect(holds("a > 0 or b > 0 and c > 0", { a: 1, b: 0, c: 0 })).toBe(true);
    expect(holds("a > 0 or b > 0 and c > 0", { a: 0, b: 1, c: 0 })).toBe(false);
    expect(holds("a > 0 or b > 0 and c > 0", { a: 0, b: 1, c: 1 })).toBe(true);
    // (not a) and b
    expect(holds("not a > 0 and b > 0", { a: 0, b: 1 })).toBe(true);
    expect(holds("not a > 0 and b > 0", { a: 0, b: 0 })).toBe(false);
    // (not a) or b
    expect(holds("not a > 0 or b > 0", { a: 1, b: 0 })).toBe(false);
    expect(holds("not not a > 0", { a: 1 })).toBe(true);
    expect(formatCondition(parseCondition("a > 0 or b > 0 and c > 0"))).toBe("a > 0 or b > 0 and c > 0");
    expect(formatCondition(parseCondition("not a > 0 and b > 0"))).toBe("not a > 0 and b > 0");
  });

  test("parentheses group, nest, and their canonical form keeps the meaning", () => {
    expect(holds("(a > 0 or b > 0) and c > 0", { a: 1, b: 0, c: 0 })).toBe(false);
    expect(holds("(a > 0 or b > 0) and c > 0", { a: 1, b: 0, c: 1 })).toBe(true);
    expect(holds("not (a > 0 and b > 0)", { a: 1, b: 0 })).toBe(true);
    expect(holds("((a > 0))", { a: 1 })).toBe(true);
    expect(holds("(a > 0 and (b > 0 or (c > 0 and not d > 0)))", { a: 1, b: 0, c: 1, d: 0 })).toBe(true);
    expect(holds("(a > 0 and (b > 0 or (c > 0 and not d > 0)))", { a: 1, b: 0, c: 1, d: 1 })).toBe(false);
    const canon = formatCondition(parseCondition("(a > 0 or b > 0) and not (c > 0 or d > 0)"));
    expect(canon).toBe("(a > 0 or b > 0) and not (c > 0 or d > 0)");
    expect(formatCondition(parseCondition(canon))).toBe(canon);
    // Nested and/or of the same kind flatten: the same condition, the same identity.
    expect(formatCondition(parseCondition("a > 0 and (b > 0 and c > 0)"))).toBe("a > 0 and b > 0 and c > 0");
  });

  test("keywords are case-insensitive (a retired spelling: see the warnings below)", () => {
    expect(holds("a > 0 AND NOT b > 0 Or c > 0", { a: 1, b: 0, c: 0 })).toBe(true);
  });

  test("arithmetic and functions of the shared language work in conditions", () => {
    expect(holds("net.rx_bps + net.tx_bps > 100", { "net.rx_bps": 60, "net.tx_bps": 50 })).toBe(true);
    expect(holds("abs(temp.cpu_c - 40) > 10", { "temp.cpu_c": 25 })).toBe(true);
    expect(holds("max(a, b) / 2 == 3", { a: 6, b: 1 })).toBe(true);
    expect(holds("a * 2 > 10", {})).toBe(false);
    expect(formatCondition(parseCondition("(a + b) * 2 > -(c - 1) and true"))).toBe(
      "(a + b) * 2 > -(c - 1) and true",
    );
  });

  test("label sets select the labelled series, as the collector writes its key", () => {
    const values = { 'disk.used_pct{mount="/"}': 95, 'disk.used_pct{mount="/data"}': 10 };
    expect(holds('disk.used_pct{mount="/"} > 90', values)).toBe(true);
    expect(holds('disk.used_pct{mount="/data"} > 90', values)).toBe(false);
    expect(holds('disk.used_pct{ mount = "/" } > 90', values)).toBe(true);
    expect(holds("disk.used_pct > 90", values)).toBe(false);
    // Several labels match in label-name order; escapes as in the Prometheus text format.
    expect(holds('x{zone="b", dev="sda"} == 1', { 'x{dev="sda",zone="b"}': 1 })).toBe(true);
    expect(holds('x{path="a\\"b\\\\c"} == 1', { 'x{path="a\\"b\\\\c"}': 1 })).toBe(true);
    expect(formatCondition(parseCondition('x{zone="b",dev="sda"} == 1'))).toBe('x{dev="sda",zone="b"} == 1');
    // Pushed series with their labels in another order are matched through their canonical key.
    expect(canonicalSeriesKey('app.temp{zone="b", dev="sda"}')).toBe('app.temp{dev="sda",zone="b"}');
    expect(canonicalSeriesKey('disk.used_pct{mount="/"}')).toBe('disk.used_pct{mount="/"}');
    expect(canonicalSeriesKey("cpu.util")).toBe("cpu.util");
    expect(canonicalSeriesKey("not a key")).toBeUndefined();
    expect(canonicalSeriesKey("state.connected")).toBe("state.connected");
  });

  test("state variables read the agent state; connected is 1 or 0", () => {
    expect(holds("state.connected == 1", {}, { connected: true })).toBe(true);
    expect(holds("state.connected == 0", {}, { connected: false })).toBe(true);
    expect(holds("state.offline_s > 600", {}, { offline_s: 601 })).toBe(true);
    expect(holds("state.buffer_fill >= 0.8", {}, { buffer_fill: 0.8 })).toBe(true);
    expect(holds("state.tasks_running > 2", {}, { tasks_running: 3 })).toBe(true);
    expect(holds("state.tasks_paused == 0", {}, { tasks_paused: 1 })).toBe(false);
  });

  test("a missing series makes every comparison on it false, so not(...) of it is true", () => {
    for (const op of [">", ">=", "<", "<=", "==", "!="]) {
      expect(holds(`gone.series ${op} 1`, { other: 1 })).toBe(false);
      expect(holds(`1 ${op} gone.series`, {})).toBe(false);
      expect(holds(`not gone.series ${op} 1`, {})).toBe(true);
    }
    expect(holds("gone.series != other", { other: 1 })).toBe(false);
    expect(holds("x != 1", { x: Number.NaN })).toBe(false);
  });

  test("the structured form means the same as the text form, and may mix text in", () => {
    const structured = {
      all: [
        { series: "cpu.util", op: ">", value: 80 },
        { any: ["mem.used_pct > 85", { not: { state: "connected", op: "==", value: 1 } }] },
        { series: 'disk.used_pct{mount="/"}', op: "<", value: 99 },
      ],
    };
    const text =
      'cpu.util > 80 and (mem.used_pct > 85 or not state.connected == 1) and disk.used_pct{mount="/"} < 99';
    expect(formatCondition(parseCondition(structured))).toBe(formatCondition(parseCondition(text)));
    const values = { "cpu.util": 85, "mem.used_pct": 10, 'disk.used_pct{mount="/"}': 50 };
    const p = compileCondition(parseCondition(structured));
    expect(p(snap(values, { connected: false }))).toBe(true);
    expect(p(snap(values, { connected: true }))).toBe(false);
    expect(formatCondition(parseCondition({ state: "state.offline_s", op: ">=", value: 60 }))).toBe(
      "state.offline_s >= 60",
    );
  });
});

describe("rule list validation", () => {
  test("text conditions: errors name the rule, the field and the column", () => {
    const cases: [string, string][] = [
      ["cpu.util => 80", 'unknown operator "=>" at column 10'],
      ["cpu.util = 80", 'unknown operator "=" at column 10'],
      ["cpu.util <> 80", 'unknown operator "<>" at column 10'],
      ["cpu.util 80", 'expected an operator, "and", "or" or the end, got "80" at column 10'],
      [
        "cpu.util >",
        'expected a number, a series, a state variable, a function or "(" but got the end at column 11',
      ],
      ["> 80", 'expected a number, a series, a state variable, a function or "(" but got ">" at column 1'],
      ["(cpu.util > 80", 'missing ")" for "(" at column 1'],
      ["cpu.util > 80)", 'unmatched ")" at column 14'],
      ["(cpu.util > 80 mem.x > 1)", 'expected ")" but got "mem.x" at column 16'],
      ["cpu.util > 80abc", 'bad number "80a" at column 12'],
      ["cpu.util > 1.2.3", 'bad number "1.2." at column 12'],
      [
        "cpu.util > 80 and",
        'expected a number, a series, a state variable, a function or "(" but got the end at column 18',
      ],
      [
        "cpu.util > nope(1)",
        'unknown function "nope" at column 12 (known: abs, sqrt, log, log10, exp, floor, ceil, round, pow, min, max)',
      ],
      ["cpu.util > $x", 'unexpected character "$" at column 12'],
      ["", "empty expression"],
      ["   ", "empty expression"],
      [
        "state.uptime > 1",
        'unknown state variable "state.uptime" at column 1 (known: state.connected, state.offline_s, state.buffer_fill, state.tasks_running, state.tasks_paused)',
      ],
      ['disk.used_pct{mount="/} > 90', "unterminated value of label mount at column 29"],
      ["disk.used_pct{mount} > 90", 'expected "=" after label mount at column 20'],
      ["disk.used_pct{} > 90", "empty label set at column 15"],
      ['x{a="1",a="2"} > 1', "label a given twice at column 14"],
    ];
    for (const [when, message] of cases) {
      expect(errorOf([rule("x > 1", { name: "ok" }), rule("y > 1", { name: "fine" }), rule(when)])).toBe(
        `rules[2] (cpu-hot).when: ${message}`,
      );
    }
    expect(errorOf([rule("cpu.util > 80", { clear_when: "cpu.util =< 70" })])).toBe(
      'rules[0] (cpu-hot).clear_when: unknown operator "=<" at column 10',
    );
  });

  test("structured conditions: errors name the path inside the field", () => {
    expect(errorOf([rule({ all: ["a > 1", { series: "b", op: "=>", value: 1 }] })])).toBe(
      'rules[0] (cpu-hot).when.all[1].op: unknown operator "=>"; use one of > >= < <= == !=',
    );
    expect(errorOf([rule({ any: ["a > 1", { not: "b >" }] })])).toBe(
      'rules[0] (cpu-hot).when.any[1].not: expected a number, a series, a state variable, a function or "(" but got the end at column 4',
    );
    expect(errorOf([rule({ all: [] })])).toBe(
      "rules[0] (cpu-hot).when.all: must be a non-empty list of conditions",
    );
    expect(errorOf([rule({ series: "a", op: ">", value: "80" })])).toBe(
      "rules[0] (cpu-hot).when.value: must be a number",
    );
    expect(errorOf([rule({ state: "uptime", op: ">", value: 1 })])).toMatch(
      /^rules\[0\] \(cpu-hot\)\.when\.state: must be one of connected, offline_s/,
    );
    expect(errorOf([rule({ series: "a > 1", op: ">", value: 1 })])).toBe(
      'rules[0] (cpu-hot).when.series: "a > 1" is not a series name',
    );
    expect(errorOf([rule({ some: [] })])).toMatch(/^rules\[0\] \(cpu-hot\)\.when: unknown condition form/);
    expect(errorOf([rule(42)])).toMatch(/^rules\[0\] \(cpu-hot\)\.when: must be an expression/);
  });

  test("rule fields: errors name the rule and the field", () => {
    expect(errorOf("cpu.util > 80")).toBe("rules: must be a list of rules");
    expect(errorOf([7])).toBe("rules[0]: must be a map with name, when and actions");
    expect(errorOf([{ when: "a > 1", actions: [{ alert: "x" }] }])).toBe("rules[0].name: is required");
    expect(errorOf([rule("a > 1", { name: "bad name" })])).toMatch(
      /^rules\[0\] \(bad name\)\.name: must be 1-64/,
    );
    expect(errorOf([{ name: "r", actions: [{ alert: "x" }] }])).toBe("rules[0] (r).when: is required");
    expect(errorOf([rule("a > 1", { fro: "30s" })])).toMatch(
      /^rules\[0\] \(cpu-hot\)\.fro: unknown field "fro" \(known: name, when, for,/,
    );
    expect(errorOf([rule("a > 1", { for: 30 })])).toBe(
      "rules[0] (cpu-hot).for: must be a duration with a unit such as 30s, 5m or 1h (got 30)",
    );
    expect(errorOf([rule("a > 1", { cooldown: "soon" })])).toMatch(
      /^rules\[0\] \(cpu-hot\)\.cooldown: must be a duration/,
    );
    expect(errorOf([rule("a > 1", { clear_for: "200h" })])).toBe(
      'rules[0] (cpu-hot).clear_for: must be at most 168h (got "200h")',
    );
    expect(errorOf([rule("a > 1", { severity: "fatal" })])).toBe(
      'rules[0] (cpu-hot).severity: must be "info", "warning" or "critical"',
    );
    expect(errorOf([rule("a > 1", { actions: [] })])).toBe(
      "rules[0] (cpu-hot).actions: must list at least one action",
    );
    expect(errorOf([rule("a > 1", { actions: "alert" })])).toBe(
      "rules[0] (cpu-hot).actions: must be a list of actions",
    );
    expect(errorOf([rule("a > 1"), rule("b > 1", { name: "other" }), rule("c > 1")])).toBe(
      "rules[2] (cpu-hot).name: duplicate: rules[0] has the same name",
    );
  });

  test("actions: errors name the action's index and the bad part", () => {
    const bad = (action: unknown, field = "actions") =>
      errorOf([rule("a > 1", { [field]: [{ alert: "ok" }, action] })]);
    expect(bad({ explode: true })).toMatch(
      /^rules\[0\] \(cpu-hot\)\.actions\[1\]: unknown action "explode" \(known: alert,/,
    );
    expect(bad({ alert: "x", resume_tasks: true })).toBe(
      "rules[0] (cpu-hot).actions[1]: must have exactly one key, the action's name",
    );
    expect(bad("alert")).toBe('rules[0] (cpu-hot).actions[1]: must be a map such as {alert: "text"}');
    expect(bad({ alert: "" })).toBe("rules[0] (cpu-hot).actions[1].alert: must be the alert's text");
    expect(bad({ pause_tasks_below: 12 })).toBe(
      "rules[0] (cpu-hot).actions[1].pause_tasks_below: must be a priority from 1 to 11 (tasks below it are affected)",
    );
    expect(bad({ stop_tasks_below: 2.5 })).toMatch(
      /^rules\[0\] \(cpu-hot\)\.actions\[1\]\.stop_tasks_below: must be a priority/,
    );
    expect(bad({ resume_tasks: false })).toBe("rules[0] (cpu-hot).actions[1].resume_tasks: must be true");
    expect(bad({ evict_cache: { fraction: 2 } })).toBe(
      "rules[0] (cpu-hot).actions[1].evict_cache.fraction: must be a number above 0 and at most 1",
    );
    expect(bad({ evict_cache: "all" })).toBe(
      'rules[0] (cpu-hot).actions[1].evict_cache: must be {fraction: 0..1} or {prefix: "key prefix"}',
    );
    expect(bad({ prune_buffer: { older: "1h" } })).toBe(
      "rules[0] (cpu-hot).actions[1].prune_buffer.older_than: is required",
    );
    expect(bad({ prune_buffer: { older_than: "10s" } })).toBe(
      'rules[0] (cpu-hot).actions[1].prune_buffer.older_than: must be from 1m to 8760h (got "10s")',
    );
    expect(bad({ set_sample_interval: "10ms" })).toBe(
      'rules[0] (cpu-hot).actions[1].set_sample_interval: must be from 100ms to 1h (got "10ms")',
    );
    expect(bad({ request_migration: {} })).toBe(
      "rules[0] (cpu-hot).actions[1].request_migration.reason: is required",
    );
    expect(bad({ clear_alert: "nobody" }, "clear_actions")).toBe(
      'rules[0] (cpu-hot).clear_actions[1].clear_alert: no rule named "nobody"',
    );
  });

  test("a YAML rule file compiles: defaults fill in, alerts clear themselves, disabled rules are left out", () => {
    const doc = Bun.YAML.parse(`
rules:
  - name: cpu-hot
    when: "cpu.util > 80"
    for: 30s
    clear_when: "cpu.util < 70"
    clear_for: 1m
    cooldown: 5m
    severity: critical
    actions: [{alert: "CPU above 80% for 30 s"}, {pause_tasks_below: 5}]
    clear_actions: [{resume_tasks: true}]
  - name: offline-long
    when: {all: ["state.connected == 0", {state: offline_s, op: ">", value: 3600}]}
    actions:
      - request_migration: {reason: "offline for an hour"}
      - clear_alert: cpu-hot
  - name: parked
    enabled: false
    when: "x > 1"
    actions: [{downsample_buffer: true}]
`) as { rules: unknown };
    const set = compileRules(doc.rules);
    expect(set.rules.map((r) => r.name)).toEqual(["cpu-hot", "offline-long"]);
    const [cpu, offline] = set.rules;
    expect(cpu).toMatchObject({
      forMs: 30_000,
      clearForMs: 60_000,
      cooldownMs: 300_000,
      severity: "critical",
    });
    expect(cpu!.actions).toEqual([
      { type: "alert", message: "CPU above 80% for 30 s", severity: "critical" },
      { type: "pause_tasks", below: 5 },
    ]);
    expect(cpu!.clearActions).toEqual([{ type: "clear_alert", rule: "cpu-hot" }, { type: "resume_tasks" }]);
    expect(cpu!.clearText).toBe("cpu.util < 70");
    expect(offline).toMatchObject({ forMs: 0, clearForMs: 0, cooldownMs: 0, severity: "warning" });
    expect(offline!.clearText).toBe("not (state.connected == 0 and state.offline_s > 3600)");
    expect(offline!.clearActions).toEqual([]);
    expect(compileRules([]).rules).toEqual([]);
  });

  test("a YAML rule file with a mistake is refused, naming the rule and the field", () => {
    const doc = Bun.YAML.parse(`
rules:
  - name: cpu-hot
    when: "cpu.util > 80"
    actions: [{alert: "hot"}]
  - name: disk-full
    when: 'disk.used_pct{mount="/"} > 90'
    for: 1m
    actions: [{alert: "full"}, {prune_buffer: {older_than: "12 hours"}}]
`) as { rules: unknown };
    expect(errorOf(doc.rules)).toMatch(
      /^rules\[1\] \(disk-full\)\.actions\[1\]\.prune_buffer\.older_than: must be a duration with a unit/,
    );
    try {
      compileRules(doc.rules);
    } catch (err) {
      expect((err as ConfigError).field).toBe("rules[1] (disk-full).actions[1].prune_buffer.older_than");
      expect((err as ConfigError).code).toBe("bad_config");
    }
  });
});

describe("rule engine source", () => {
  test("shared/rules and shared/expr never generate code from text: no eval and no Function constructor", () => {
    const files = ["rules", "expr"].flatMap((sub) => {
      const dir = join(import.meta.dir, "../../shared", sub);
      return readdirSync(dir, { recursive: true, encoding: "utf8" })
        .filter((f) => f.endsWith(".ts"))
        .map((f) => join(dir, f));
    });
    expect(files.length).toBeGreaterThanOrEqual(13);
    for (const f of files) {
      const text = readFileSync(f, "utf8");
      expect({
        file: f,
        eval: /\beval\s*\(|\bFunction\s*\(|new\s+Function\b|\bimport\s*\(/.test(text),
      }).toEqual({
        file: f,
        eval: false,
      });
    }
  });
});

describe("retired spellings", () => {
  const warningsOf = (when: string, clear_when?: string) =>
    compileRules([rule(when, clear_when === undefined ? {} : { clear_when })]).warnings;

  test("&&, ||, !, upper-case keywords and a bare number as a condition are accepted, each warned about once naming rule, field, old and new", () => {
    expect(warningsOf("cpu.util > 80 && mem.used_pct > 1")).toEqual([
      'rules[0] (cpu-hot).when: "&&" at column 15 is a retired spelling; write "and"',
    ]);
    expect(warningsOf("a > 1", "!(a > 1) || b > 2")).toEqual([
      'rules[0] (cpu-hot).clear_when: "!" at column 1 is a retired spelling; write "not"',
      'rules[0] (cpu-hot).clear_when: "||" at column 10 is a retired spelling; write "or"',
    ]);
    expect(warningsOf("a > 1 AND b > 1")).toEqual([
      'rules[0] (cpu-hot).when: "AND" at column 7 is a retired spelling; write "and"',
    ]);
    expect(warningsOf("state.connected")).toEqual([
      'rules[0] (cpu-hot).when: "state.connected" at column 1 is a retired spelling; write "state.connected != 0"',
    ]);
    expect(warningsOf("a > 1 and not b > 1 or c == 2")).toEqual([]);
    // The old spelling means what the new one means.
    expect(holds("a > 1 && b > 1", { a: 2, b: 2 })).toBe(true);
    expect(holds("a > 1 && b > 1", { a: 2, b: 0 })).toBe(false);
    expect(holds("!(a > 1) || b > 1", { a: 2, b: 0 })).toBe(false);
    expect(holds("x", { x: 3 })).toBe(true);
    expect(holds("x", { x: 0 })).toBe(false);
    expect(holds("x", {})).toBe(false);
  });
});

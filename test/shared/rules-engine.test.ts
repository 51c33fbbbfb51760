// Specification of the rule engine: durations, hysteresis, cooldowns, actions, the default rules, hot reload and restarts.
import { describe, expect, test } from "bun:test";
import { AgentStore } from "../../agent/store/index.ts";
import {
  type AgentState,
  compileRules,
  type Decision,
  DecisionLog,
  defaultRuleSet,
  RuleEngine,
  type Snapshot,
} from "../../shared/rules/index.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { tempDir } from "../support/processes.ts";

const SEC = 1000;
const T0 = 1_718_000_000_000;

const CONNECTED: AgentState = {
  connected: true,
  offline_s: 0,
  buffer_fill: 0,
  tasks_running: 4,
  tasks_paused: 0,
};

function snap(values: Record<string, number>, state: Partial<AgentState> = {}): Snapshot {
  return { values: new Map(Object.entries(values)), state: { ...CONNECTED, ...state } };
}

/** An engine on a fake clock that takes one snapshot a second. */
class Harness {
  readonly clock = new FakeClock(T0);
  readonly engine: RuleEngine;
  readonly decisions: Decision[] = [];

  constructor(rules: unknown) {
    this.engine = new RuleEngine(compileRules(rules), this.clock);
  }

  /** Evaluates `values` once a second for `seconds` evaluations (the first one now); returns their decisions. */
  async feed(
    seconds: number,
    values: Record<string, number>,
    state: Partial<AgentState> = {},
  ): Promise<Decision[]> {
    const out: Decision[] = [];
    for (let i = 0; i < seconds; i++) {
      out.push(...this.engine.evaluate(snap(values, state)));
      await this.clock.advance(SEC);
    }
    this.decisions.push(...out);
    return out;
  }

  /** Seconds since T0 at which the decisions were taken. */
  times(ds: readonly Decision[]): [string, number][] {
    return ds.map((d) => [d.kind, (d.at - T0) / SEC]);
  }
}

const CPU_RULE = {
  name: "cpu-hot",
  when: "cpu.util > 80",
  for: "30s",
  clear_when: "cpu.util < 70",
  clear_for: "60s",
  actions: [{ alert: "CPU above 80% for 30 s" }, { pause_tasks_below: 5 }],
  clear_actions: [{ resume_tasks: true }],
};

describe("rule engine: durations", () => {
  test("fires exactly when the condition has held for `for`, not a second before", async () => {
    const h = new Harness([CPU_RULE]);
    expect(await h.feed(30, { "cpu.util": 90 })).toEqual([]); // t = 0..29
    const [fire] = await h.feed(1, { "cpu.util": 90 }); // t = 30
    expect(fire).toEqual({
      rule: "cpu-hot",
      at: T0 + 30 * SEC,
      kind: "fire",
      cause: "condition",
      actions: [
        { type: "alert", message: "CPU above 80% for 30 s", severity: "warning" },
        { type: "pause_tasks", below: 5 },
      ],
      inputs: { "cpu.util": 90 },
    });
    expect(await h.feed(120, { "cpu.util": 90 })).toEqual([]); // fires once, not on every sample
  });

  test("one sample below the threshold resets the pending time", async () => {
    const h = new Harness([CPU_RULE]);
    await h.feed(29, { "cpu.util": 90 }); // t = 0..28
    await h.feed(1, { "cpu.util": 75 }); // t = 29: a dip
    expect(await h.feed(30, { "cpu.util": 90 })).toEqual([]); // t = 30..59: pending since 30
    expect(h.times(await h.feed(1, { "cpu.util": 90 }))).toEqual([["fire", 60]]);
  });

  test("a missing series is a dip: the rule never fires on data it does not have", async () => {
    const h = new Harness([CPU_RULE]);
    await h.feed(20, { "cpu.util": 90 });
    await h.feed(1, {}); // t = 20
    expect(await h.feed(30, { "cpu.util": 90 })).toEqual([]); // t = 21..50: pending since 21
    expect(h.times(await h.feed(1, { "cpu.util": 90 }))).toEqual([["fire", 51]]);
  });

  test("without `for`, a rule fires on the first evaluation its condition holds", async () => {
    const h = new Harness([{ name: "now", when: "x > 1", actions: [{ downsample_buffer: true }] }]);
    expect(h.times(await h.feed(1, { x: 2 }))).toEqual([["fire", 0]]);
  });
});

describe("rule engine: hysteresis", () => {
  test("stays firing between the thresholds, and clears only after the clear condition held for clear_for", async () => {
    const h = new Harness([CPU_RULE]);
    await h.feed(31, { "cpu.util": 90 }); // fires at 30
    expect(await h.feed(120, { "cpu.util": 75 })).toEqual([]); // below 80 but not below 70: still firing
    expect(await h.feed(60, { "cpu.util": 65 })).toEqual([]); // t = 151..210: clear pending since 151
    const [clear] = await h.feed(1, { "cpu.util": 65 }); // t = 211
    expect(clear).toEqual({
      rule: "cpu-hot",
      at: T0 + 211 * SEC,
      kind: "clear",
      cause: "condition",
      actions: [{ type: "clear_alert", rule: "cpu-hot" }, { type: "resume_tasks" }],
      inputs: { "cpu.util": 65 },
    });
  });

  test("a rise during clearing restarts the clear time", async () => {
    const h = new Harness([CPU_RULE]);
    await h.feed(31, { "cpu.util": 90 });
    await h.feed(50, { "cpu.util": 60 });
    await h.feed(1, { "cpu.util": 72 }); // not below 70: clearing starts over
    expect(await h.feed(60, { "cpu.util": 60 })).toEqual([]);
    expect(h.times(await h.feed(1, { "cpu.util": 60 }))).toEqual([["clear", 142]]);
  });

  test("without clear_when, a rule clears when its condition stops holding", async () => {
    const h = new Harness([{ name: "x", when: "x > 10", clear_for: "5s", actions: [{ alert: "x" }] }]);
    expect(h.times(await h.feed(1, { x: 11 }))).toEqual([["fire", 0]]);
    await h.feed(5, { x: 10 });
    expect(h.times(h.decisions)).toEqual([["fire", 0]]);
    expect(h.times(await h.feed(1, { x: 10 }))).toEqual([["clear", 6]]);
  });
});

describe("rule engine: cooldown", () => {
  const rule = { name: "flappy", when: "x > 10", for: "2s", cooldown: "1m", actions: [{ alert: "x" }] };

  test("never fires again within the cooldown, and fires when it ends if the condition still holds", async () => {
    const h = new Harness([rule]);
    expect(h.times(await h.feed(3, { x: 11 }))).toEqual([["fire", 2]]);
    // Flap: clear, then hold again well within the minute.
    expect(h.times(await h.feed(1, { x: 0 }))).toEqual([["clear", 3]]);
    expect(await h.feed(58, { x: 11 })).toEqual([]); // t = 4..61: pending long enough, but cooling down
    expect(h.times(await h.feed(1, { x: 11 }))).toEqual([["fire", 62]]); // 60 s after the last firing
  });

  test("a condition that stops holding while cooling down does not fire", async () => {
    const h = new Harness([rule]);
    await h.feed(3, { x: 11 });
    await h.feed(1, { x: 0 });
    await h.feed(30, { x: 11 });
    await h.feed(60, { x: 0 });
    expect(h.times(h.decisions)).toEqual([
      ["fire", 2],
      ["clear", 3],
    ]);
  });
});

describe("rule engine: conditions and actions", () => {
  test("and, or and not over series and agent state", async () => {
    const h = new Harness([
      {
        name: "offline-and-full",
        when: "not state.connected == 1 and (state.buffer_fill > 0.8 or state.offline_s > 3600)",
        actions: [{ downsample_buffer: true }],
      },
    ]);
    expect(await h.feed(1, {}, { connected: true, buffer_fill: 0.9 })).toEqual([]);
    expect(await h.feed(1, {}, { connected: false, offline_s: 10, buffer_fill: 0.5 })).toEqual([]);
    const [d] = await h.feed(1, {}, { connected: false, offline_s: 20, buffer_fill: 0.85 });
    expect(d?.kind).toBe("fire");
    expect(d?.inputs).toEqual({ "state.connected": 0, "state.buffer_fill": 0.85, "state.offline_s": 20 });
    expect(h.times(await h.feed(1, {}, { connected: false, offline_s: 4000, buffer_fill: 0.1 }))).toEqual([]);
    expect(h.times(await h.feed(1, {}, { connected: true }))).toEqual([["clear", 4]]);
  });

  test("every action kind reaches the decisions, normalised", async () => {
    const h = new Harness([
      {
        name: "everything",
        when: "x > 0",
        severity: "critical",
        actions: [
          { alert: "all hands" },
          { pause_tasks_below: 5 },
          { stop_tasks_below: 3 },
          { evict_cache: { fraction: 0.5 } },
          { evict_cache: { prefix: "tiles/" } },
          { downsample_buffer: true },
          { prune_buffer: { older_than: "12h" } },
          { set_sample_interval: "5s" },
          { request_migration: { reason: "overloaded" } },
        ],
        clear_actions: [{ resume_tasks: true }, { set_sample_interval: "1s" }, { clear_alert: true }],
      },
    ]);
    const [fire] = await h.feed(1, { x: 1 });
    const [clear] = await h.feed(1, { x: 0 });
    expect(fire?.actions).toEqual([
      { type: "alert", message: "all hands", severity: "critical" },
      { type: "pause_tasks", below: 5 },
      { type: "stop_tasks", below: 3 },
      { type: "evict_cache", fraction: 0.5 },
      { type: "evict_cache", prefix: "tiles/" },
      { type: "downsample_buffer" },
      { type: "prune_buffer", older_than_ms: 12 * 3_600_000 },
      { type: "set_sample_interval", interval_ms: 5000 },
      { type: "request_migration", reason: "overloaded" },
    ]);
    expect(clear?.actions).toEqual([
      { type: "resume_tasks" },
      { type: "set_sample_interval", interval_ms: 1000 },
      { type: "clear_alert", rule: "everything" },
    ]);
    const types = new Set([...fire!.actions, ...clear!.actions].map((a) => a.type));
    expect([...types].sort()).toEqual([
      "alert",
      "clear_alert",
      "downsample_buffer",
      "evict_cache",
      "pause_tasks",
      "prune_buffer",
      "request_migration",
      "resume_tasks",
      "set_sample_interval",
      "stop_tasks",
    ]);
  });

  test("decisions carry every value the deciding condition read, null for a missing series", async () => {
    const h = new Harness([
      {
        name: "r",
        when: "a > 1 or b > 1 or state.tasks_running > 100",
        clear_when: "c < 1",
        actions: [{ alert: "r" }],
      },
    ]);
    const [fire] = await h.feed(1, { a: 2 });
    expect(fire?.inputs).toEqual({ a: 2, b: null, "state.tasks_running": 4 });
    const [clear] = await h.feed(1, { c: 0, a: 5 });
    expect(clear?.inputs).toEqual({ c: 0 });
  });

  test("rules are independent and decide in file order", async () => {
    const h = new Harness([
      { name: "b-rule", when: "x > 1", actions: [{ alert: "b" }] },
      { name: "a-rule", when: "x > 1", actions: [{ alert: "a" }] },
    ]);
    expect((await h.feed(1, { x: 2 })).map((d) => d.rule)).toEqual(["b-rule", "a-rule"]);
  });
});

describe("rule engine: the default rule set", () => {
  test("CPU 85% for 31 s fires; 75% for 60 s does not clear; 65% for 61 s clears", async () => {
    const clock = new FakeClock(T0);
    const engine = new RuleEngine(defaultRuleSet(), clock);
    const healthy = { "mem.used_pct": 40, "mem.avail_bytes": 8 * 1024 ** 3, 'disk.used_pct{mount="/"}': 50 };
    const run = async (seconds: number, cpu: number) => {
      const out: Decision[] = [];
      for (let i = 0; i < seconds; i++) {
        out.push(...engine.evaluate(snap({ ...healthy, "cpu.util": cpu })));
        await clock.advance(SEC);
      }
      return out;
    };
    const fired = await run(31, 85);
    expect(fired.map((d) => [d.rule, d.kind, d.at - T0])).toEqual([["cpu-high", "fire", 30 * SEC]]);
    expect(fired[0]?.actions).toEqual([
      { type: "alert", message: "CPU above 80% for 30 s", severity: "warning" },
      { type: "pause_tasks", below: 5 },
    ]);
    expect(await run(60, 75)).toEqual([]);
    const cleared = await run(61, 65);
    expect(cleared.map((d) => [d.rule, d.kind])).toEqual([["cpu-high", "clear"]]);
    expect(cleared[0]?.actions).toEqual([
      { type: "clear_alert", rule: "cpu-high" },
      { type: "resume_tasks" },
    ]);
  });

  test("memory above 85%, disk / above 90% and less than 1 GiB free each fire their rule", async () => {
    const clock = new FakeClock(T0);
    const engine = new RuleEngine(defaultRuleSet(), clock);
    const out: Decision[] = [];
    for (let i = 0; i < 61; i++) {
      out.push(
        ...engine.evaluate(
          snap({
            "cpu.util": 10,
            "mem.used_pct": 86,
            "mem.avail_bytes": 1024 ** 3 - 1,
            'disk.used_pct{mount="/"}': 91,
            'disk.used_pct{mount="/data"}': 10,
          }),
        ),
      );
      await clock.advance(SEC);
    }
    expect(out.map((d) => [d.rule, d.kind, (d.at - T0) / SEC])).toEqual([
      ["memory-high", "fire", 30],
      ["memory-low", "fire", 30],
      ["disk-full", "fire", 60],
    ]);
    const disk = out.find((d) => d.rule === "disk-full")!;
    expect(disk.actions).toEqual([
      { type: "alert", message: "disk / above 90%", severity: "critical" },
      { type: "prune_buffer", older_than_ms: 12 * 3_600_000 },
    ]);
    expect(disk.inputs).toEqual({ 'disk.used_pct{mount="/"}': 91 });
    expect(out.find((d) => d.rule === "memory-low")!.inputs).toEqual({ "mem.avail_bytes": 1024 ** 3 - 1 });
  });
});

describe("rule engine: hot reload", () => {
  const rules = (cpuWhen: string, extra: object[] = []) => [
    { ...CPU_RULE, when: cpuWhen },
    {
      name: "mem",
      when: "mem.used_pct > 85",
      for: "10s",
      actions: [{ alert: "mem" }, { pause_tasks_below: 3 }],
    },
    { name: "slow", when: "x > 1", for: "20s", actions: [{ downsample_buffer: true }] },
    ...extra,
  ];

  test("keeps the state of rules whose name and conditions are unchanged, and resets the others", async () => {
    const h = new Harness(rules("cpu.util > 80"));
    await h.feed(31, { "cpu.util": 90, "mem.used_pct": 90, x: 2 });
    expect(h.engine.status().map((s) => [s.rule, s.phase])).toEqual([
      ["cpu-hot", "firing"],
      ["mem", "firing"],
      ["slow", "firing"],
    ]);
    // New revision: cpu-hot's condition changes; mem changes only its actions and `for`; slow is untouched.
    const next = rules("cpu.util > 85");
    next[1] = { ...next[1]!, for: "1m", actions: [{ alert: "memory!" }] };
    const reload = h.engine.replace(compileRules(next));
    // The changed rule was firing: it is cleared with its old clear actions, so its pause does not linger.
    expect(reload.map((d) => [d.rule, d.kind, d.cause, d.actions])).toEqual([
      ["cpu-hot", "clear", "reload", [{ type: "clear_alert", rule: "cpu-hot" }, { type: "resume_tasks" }]],
    ]);
    expect(h.engine.status().map((s) => [s.rule, s.phase])).toEqual([
      ["cpu-hot", "idle"],
      ["mem", "firing"],
      ["slow", "firing"],
    ]);
    // Unchanged rules do not fire again; the changed one starts over under its new condition.
    const after = await h.feed(31, { "cpu.util": 90, "mem.used_pct": 90, x: 2 });
    expect(after.map((d) => [d.rule, d.kind, (d.at - T0) / SEC])).toEqual([["cpu-hot", "fire", 61]]);
    // The new actions of an unchanged rule apply from now on.
    const cleared = await h.feed(1, { "cpu.util": 90, "mem.used_pct": 10, x: 2 });
    expect(cleared.map((d) => [d.rule, d.actions])).toEqual([
      ["mem", [{ type: "clear_alert", rule: "mem" }]],
    ]);
  });

  test("a pending rule that is unchanged keeps its pending time across a reload", async () => {
    const h = new Harness(rules("cpu.util > 80"));
    await h.feed(15, { x: 2 });
    h.engine.replace(compileRules(rules("cpu.util > 81")));
    expect(h.times(await h.feed(6, { x: 2 }))).toEqual([["fire", 20]]);
  });

  test("a removed firing rule is cleared; a new rule starts idle", async () => {
    const h = new Harness(rules("cpu.util > 80"));
    await h.feed(11, { "mem.used_pct": 90 });
    const reload = h.engine.replace(
      compileRules([rules("cpu.util > 80")[0], { name: "new", when: "y > 1", actions: [{ alert: "y" }] }]),
    );
    expect(reload.map((d) => [d.rule, d.kind, d.cause, d.inputs])).toEqual([["mem", "clear", "reload", {}]]);
    expect(h.engine.status().map((s) => [s.rule, s.phase])).toEqual([
      ["cpu-hot", "idle"],
      ["new", "idle"],
    ]);
  });
});

describe("rule engine: restarts", () => {
  test("state survives snapshotState/restoreState through JSON: a firing rule stays firing and keeps its cooldown", async () => {
    const rules = [{ ...CPU_RULE, cooldown: "10m" }];
    const h = new Harness(rules);
    await h.feed(31, { "cpu.util": 90 });
    const stored = JSON.parse(JSON.stringify(h.engine.snapshotState()));

    const clock = new FakeClock(h.clock.now());
    const restarted = new RuleEngine(compileRules(rules), clock);
    expect(restarted.restoreState(stored)).toBe(1);
    expect(restarted.status()[0]).toMatchObject({ phase: "firing", fired_at: T0 + 30 * SEC });
    // It does not fire again (it is already firing); it clears as the old one would have.
    const out: Decision[] = [];
    const step = async (n: number, cpu: number) => {
      for (let i = 0; i < n; i++) {
        out.push(...restarted.evaluate(snap({ "cpu.util": cpu })));
        await clock.advance(SEC);
      }
    };
    await step(10, 90);
    await step(61, 60);
    await step(31, 90); // within the cooldown of the firing before the restart
    expect(out.map((d) => [d.kind, (d.at - T0) / SEC])).toEqual([["clear", 101]]);
    await step(500, 90);
    expect(out.map((d) => [d.kind, (d.at - T0) / SEC])).toEqual([
      ["clear", 101],
      ["fire", 630],
    ]);
  });

  test("a pending rule starts its `for` again after a restart, since nobody watched meanwhile", async () => {
    const h = new Harness([CPU_RULE]);
    await h.feed(20, { "cpu.util": 90 });
    const restarted = new Harness([CPU_RULE]);
    await restarted.clock.advance(20 * SEC);
    expect(restarted.engine.restoreState(h.engine.snapshotState())).toBe(1);
    expect(await restarted.feed(30, { "cpu.util": 90 })).toEqual([]);
    expect(restarted.times(await restarted.feed(1, { "cpu.util": 90 }))).toEqual([["fire", 50]]);
  });

  test("a stored state is ignored for rules whose conditions changed, and when it is not a state at all", async () => {
    const h = new Harness([CPU_RULE]);
    await h.feed(31, { "cpu.util": 90 });
    const changed = new RuleEngine(compileRules([{ ...CPU_RULE, when: "cpu.util > 95" }]), h.clock);
    expect(changed.restoreState(h.engine.snapshotState())).toBe(0);
    expect(changed.status()[0]?.phase).toBe("idle");
    for (const junk of [
      undefined,
      null,
      42,
      "x",
      { v: 2, rules: {} },
      { v: 1, rules: { "cpu-hot": { phase: "on" } } },
    ]) {
      expect(changed.restoreState(junk)).toBe(0);
    }
  });

  test("an agent restart resumes rules from the decision log's stored state in SQLite", async () => {
    using dir = tempDir();
    const h = new Harness([CPU_RULE]);
    {
      const store = new AgentStore(dir.path, { bufferBytes: 8 << 20 });
      const log = new DecisionLog(store.db);
      for (let i = 0; i < 31; i++) {
        const ds = h.engine.evaluate(snap({ "cpu.util": 90 }));
        log.record(ds, h.engine.snapshotState());
        await h.clock.advance(SEC);
      }
      expect(log.list().map((d) => d.kind)).toEqual(["fire"]);
      store.close();
    }
    const store = new AgentStore(dir.path, { bufferBytes: 8 << 20 });
    try {
      const log = new DecisionLog(store.db);
      const clock = new FakeClock(h.clock.now() + 5 * SEC);
      const engine = new RuleEngine(compileRules([CPU_RULE]), clock);
      expect(engine.restoreState(log.loadState())).toBe(1);
      expect(engine.status()[0]?.phase).toBe("firing");
      const out: Decision[] = [];
      for (let i = 0; i < 61; i++) {
        out.push(...engine.evaluate(snap({ "cpu.util": 50 })));
        await clock.advance(SEC);
      }
      expect(out.map((d) => d.kind)).toEqual(["clear"]);
    } finally {
      store.close();
    }
  });

  test("the revision rises on every state change and stays put otherwise", async () => {
    const h = new Harness([CPU_RULE]);
    const r0 = h.engine.revision;
    await h.feed(5, { "cpu.util": 10 });
    expect(h.engine.revision).toBe(r0);
    await h.feed(1, { "cpu.util": 90 });
    const r1 = h.engine.revision;
    expect(r1).toBeGreaterThan(r0);
    await h.feed(5, { "cpu.util": 90 });
    expect(h.engine.revision).toBe(r1);
  });
});

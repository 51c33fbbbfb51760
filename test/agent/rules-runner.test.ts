// Specification of the agent's rule runner: decisions become effects on the real store, and stale values lapse.
import { describe, expect, test } from "bun:test";
import { handleHubMessage } from "../../agent/link/hub-messages.ts";
import { RulesRunner } from "../../agent/rules/index.ts";
import { RequestError } from "../../shared/errors.ts";
import { AgentStore, MetricBuffer } from "../../agent/store/index.ts";
import { decodeCbor, encodeCbor, type MetricsBatchBody } from "../../shared/protocol/index.ts";
import { createLogger } from "../../shared/log.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { tempDir } from "../support/processes.ts";

const T0 = 1_718_000_000_000;
const SEC = 1000;
const OFFLINE = { connected: false, offline_s: 0, buffer_fill: 0, tasks_running: 0, tasks_paused: 0 };

function setup(dir: string, rules: unknown) {
  const store = new AgentStore(dir, { bufferBytes: 1 << 30 });
  const buffer = new MetricBuffer(store, SEC);
  const reports: { type: string; body: object }[] = [];
  const runner = new RulesRunner(rules, {
    db: store.db,
    log: createLogger("test", { write: () => {} }),
    clock: new FakeClock(T0),
    tasks: () => undefined,
    cache: () => undefined,
    buffer: {
      downsample: () => store.downsampler.run(store.outbox, 0),
      prune: (before) => store.outbox.dropBulkBefore(before),
    },
    report: (type, body) => reports.push({ type, body }),
    setSampleInterval: () => {},
  });
  return { store, buffer, runner, reports, [Symbol.dispose]: () => store.close() };
}

/** Two hours of 1 s ticks of two series, packed every 20 s, created at their own time. */
function fillTwoHours(buffer: MetricBuffer): void {
  for (let i = 0; i < 7200; i++) {
    buffer.add(T0 + i * SEC, { "cpu.util": i % 100, "mem.used_pct": 50 + (i % 7) });
    if (i % 20 === 19) buffer.flush(T0 + i * SEC);
  }
}

const rollups = (store: AgentStore) =>
  store.outbox
    .readFrom(0, 100_000)
    .filter((e) => e.type === "metrics_batch" && (decodeCbor(e.body) as MetricsBatchBody).rollup === 1);

describe("rule actions on the buffer", () => {
  test("downsample_buffer folds every unsent fine batch into rollups when the rule fires, and nothing is lost", () => {
    using dir = tempDir();
    using r = setup(dir.path, [
      { name: "squeeze", when: "state.buffer_fill > 0.5", actions: [{ downsample_buffer: true }] },
    ]);
    fillTwoHours(r.buffer);
    const before = r.store.outbox.stats();
    r.runner.evaluate({}, { ...OFFLINE, buffer_fill: 0.4 }, T0 + 7200 * SEC);
    expect(rollups(r.store)).toHaveLength(0);
    r.runner.evaluate({}, { ...OFFLINE, buffer_fill: 0.6 }, T0 + 7201 * SEC);
    const after = r.store.outbox.stats();
    // Two hours in one-hour folds.
    expect(rollups(r.store).length).toBe(2);
    expect(after.downsampledSamples).toBe(2 * 7200);
    expect(after.bytes).toBeLessThan(before.bytes / 5);
    expect(after.droppedSamples).toBe(0);
    expect(r.reports.filter((x) => x.type === "decision_validation")).toHaveLength(1);
  });

  test("prune_buffer drops bulk data older than its cut-off, counted as dropped; alerts stay", () => {
    using dir = tempDir();
    using r = setup(dir.path, [
      {
        name: "trim",
        when: "state.offline_s > 3600",
        severity: "warning",
        actions: [{ alert: "trimming" }, { prune_buffer: { older_than: "30m" } }],
      },
    ]);
    r.store.outbox.append("event", encodeCbor({ kind: "alert", at: T0, message: "old alert" }), 0, T0);
    fillTwoHours(r.buffer);
    const produced = r.buffer.produced();
    r.runner.evaluate({}, { ...OFFLINE, offline_s: 7200 }, T0 + 7200 * SEC);
    expect(r.store.outbox.readFrom(0, 1)[0]!.type).toBe("event");
    const s = r.store.outbox.stats();
    // Batches packed before T0 + 90 min are gone; the 30 minutes after remain.
    expect(s.droppedSamples).toBe(2 * 90 * 60);
    const held = r.store.outbox.readFrom(0, 100_000);
    expect(held.reduce((a, e) => a + e.samples, 0) + s.droppedSamples).toBe(produced);
    expect(r.reports.some((x) => x.type === "event")).toBe(true);
  });
});

describe("series values seen by rules", () => {
  test("a series missing from a tick keeps its last value for 5 minutes, then counts as absent", () => {
    using dir = tempDir();
    using r = setup(dir.path, [
      { name: "warm", when: "sensor.t > 30", for: "1m", actions: [{ alert: "warm" }] },
    ]);
    // One point a minute, as a slow sensor pushes them; ticks in between do not carry it.
    r.runner.evaluate({ "sensor.t": 35 }, OFFLINE, T0);
    for (let s = 1; s <= 61; s++) r.runner.evaluate({}, OFFLINE, T0 + s * SEC);
    const fired = r.runner.list(10);
    expect(fired.map((d) => [d.rule, d.kind])).toEqual([["warm", "fire"]]);
    expect(fired[0]!.inputs).toEqual({ "sensor.t": 35 });
  });

  test("after 5 minutes without a point the value lapses and a `for` condition stops holding", () => {
    using dir = tempDir();
    using r = setup(dir.path, [
      { name: "warm", when: "sensor.t > 30", for: "6m", actions: [{ alert: "warm" }] },
    ]);
    r.runner.evaluate({ "sensor.t": 35 }, OFFLINE, T0);
    for (let s = 1; s <= 400; s++) r.runner.evaluate({}, OFFLINE, T0 + s * SEC);
    // 6 minutes never passed with a value in view.
    expect(r.runner.list(10)).toHaveLength(0);
  });
});

describe("rule sets from the hub", () => {
  const LOCAL = [
    { name: "hot", when: "x < 0", actions: [{ alert: "local hot" }] },
    { name: "mine", when: "y > 1", actions: [{ alert: "local mine" }] },
  ];
  const HUB = [{ name: "hot", when: "x > 5", actions: [{ alert: "hub hot" }] }];
  const fires = (r: { reports: { type: string; body: object }[] }) =>
    r.reports
      .filter((x) => x.type === "decision_validation")
      .map(
        (x) =>
          x.body as {
            rule: string;
            id: number;
            rule_set?: string;
            rule_set_rev?: number;
            condition?: string;
          },
      );

  test("by rule name the hub's rule replaces the local one, other local rules stay; decisions name the set, revision and condition", () => {
    using dir = tempDir();
    using r = setup(dir.path, LOCAL);
    expect(r.runner.applyHub(3, { rule_sets: [{ name: "plant", rev: 2, rules: HUB }] })).toBe(true);
    expect(r.runner.status()).toEqual({
      running: 2,
      from_hub: 1,
      rule_sets: [{ name: "plant", rev: 2 }],
      config_rev: 3,
    });
    r.runner.evaluate({ x: 9, y: 2 }, OFFLINE, T0);
    expect(fires(r).map((d) => [d.rule, d.rule_set, d.rule_set_rev, d.condition])).toEqual([
      ["hot", "plant", 2, "x > 5"],
      ["mine", undefined, undefined, "y > 1"],
    ]);
    // What the node runs reaches the hub through the outbox.
    expect(r.reports.find((x) => x.type === "event")?.body).toMatchObject({
      kind: "rules_applied",
      fields: { config_rev: 3, rule_sets: [{ name: "plant", rev: 2 }] },
    });
    // A hub rule with enabled: false switches the local one off.
    r.runner.applyHub(4, { rule_sets: [{ name: "off", rev: 1, rules: [{ ...LOCAL[1], enabled: false }] }] });
    expect(r.runner.status().running).toBe(1);
  });

  test("the sets survive a restart with no hub; a bad set is refused and the running rules stay", () => {
    using dir = tempDir();
    {
      using r = setup(dir.path, LOCAL);
      r.runner.applyHub(3, { rule_sets: [{ name: "plant", rev: 2, rules: HUB }] });
      expect(r.runner.applyHub(4, { rule_sets: [{ name: "plant", rev: 3, rules: [{ name: "hot" }] }] })).toBe(
        false,
      );
      expect(r.runner.applyHub(5, { rule_sets: "nope" })).toBe(false);
      expect(r.runner.status().rule_sets).toEqual([{ name: "plant", rev: 2 }]);
    }
    using again = setup(dir.path, LOCAL);
    expect(again.runner.status()).toMatchObject({ rule_sets: [{ name: "plant", rev: 2 }], config_rev: 3 });
    again.runner.evaluate({ x: 9 }, OFFLINE, T0);
    expect(fires(again).map((d) => [d.rule, d.rule_set])).toEqual([["hot", "plant"]]);
  });

  test("a decision is validated only when the hub's verdict for it arrives", () => {
    using dir = tempDir();
    using r = setup(dir.path, LOCAL);
    r.runner.evaluate({ y: 2 }, OFFLINE, T0);
    const [d] = r.runner.list(10);
    expect(d).toMatchObject({ rule: "mine", validated: false, verdict: null });
    // A verdict for another decision (wrong time) changes nothing.
    r.runner.onVerdicts([{ id: d!.id, rule: "mine", at: T0 + 1, verdict: "agree", reason: "x" }]);
    expect(r.runner.list(10)[0]!.validated).toBe(false);
    r.runner.onVerdicts([
      { id: d!.id, rule: "mine", at: T0, verdict: "unknown", reason: "the hub holds no rule named mine" },
    ]);
    expect(r.runner.list(10)[0]).toMatchObject({ validated: true, verdict: "unknown" });
  });
});

test("hub messages: a malformed verdict list is refused naming the field, and nothing is marked", () => {
  using dir = tempDir();
  using r = setup(dir.path, [{ name: "mine", when: "y > 1", actions: [{ alert: "a" }] }]);
  r.runner.evaluate({ y: 2 }, OFFLINE, T0);
  const deps = {
    tasks: undefined,
    cache: undefined,
    log: createLogger("test", { write: () => {} }),
    reply: () => {},
    rules: r.runner,
  };
  const verdicts = (v: unknown) =>
    handleHubMessage(
      {
        v: 2,
        t: "command",
        s: "hub",
        ts: T0,
        b: { id: "v", kind: "decision_verdicts", args: { verdicts: v } },
      } as never,
      deps,
    );
  expect(() => verdicts("all good")).toThrow(/must be a list of verdicts/);
  expect(() => verdicts([{ id: 1, rule: "mine" }])).toThrow(RequestError);
  try {
    verdicts([{ id: 1, rule: "mine" }]);
  } catch (err) {
    expect((err as RequestError).field).toBe("verdicts[0]");
  }
  expect(r.runner.list(10)[0]!.validated).toBe(false);
});

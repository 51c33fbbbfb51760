// Specification of the pure alert evaluation: fleet facts and live alerts in, alerts to open, update and resolve out.
import { describe, expect, test } from "bun:test";
import {
  type AlertFacts,
  type AlertRule,
  BUILTIN_RULES,
  emptyMemory,
  evaluateAlerts,
  type LiveAlert,
  type NodeFacts,
  parseRule,
} from "../../hub/events/index.ts";
import { RequestError } from "../../shared/errors.ts";

const T0 = 1_718_000_000_000;

const node = (id: string, x: Partial<NodeFacts> = {}): NodeFacts => ({
  id,
  health: "ready",
  reason: "connected and heard from",
  lastSeen: T0,
  dropped: undefined,
  series: new Map(),
  ...x,
});

const facts = (x: Partial<AlertFacts> = {}): AlertFacts => ({
  now: T0,
  nodes: [],
  workloads: [],
  failover: [],
  ...x,
});

const only = (name: string): AlertRule[] => BUILTIN_RULES.filter((r) => r.name === name);

/** Turns the openings of one evaluation into live alerts, as the applier would store them. */
const live = (opened: { key: string; rule: string; node: string | null; message: string }[], at = T0) =>
  opened.map((o, i): LiveAlert => ({ id: i + 1, ...o, started_at: at, updated_at: at }));

describe("alert evaluation", () => {
  test("node-down: a disconnected node opens one alert; evaluated again, nothing new opens", () => {
    const m = emptyMemory();
    const down = facts({ nodes: [node("n1", { health: "disconnected", reason: "connection closed" })] });
    const first = evaluateAlerts(only("node-down"), down, [], m);
    expect(first.open).toEqual([
      {
        key: "node-down:n1",
        rule: "node-down",
        node: "n1",
        severity: "critical",
        message: "node n1 is down (disconnected): connection closed",
      },
    ]);
    const again = evaluateAlerts(only("node-down"), down, live(first.open), m);
    expect(again).toEqual({ open: [], update: [], resolve: [] });
  });

  test("node-down: a suspect node (a hub that just restarted) keeps its alert; only a ready node resolves it", () => {
    const m = emptyMemory();
    const alerts = live([{ key: "node-down:n1", rule: "node-down", node: "n1", message: "down" }]);
    const suspect = facts({ nodes: [node("n1", { health: "suspect" })] });
    expect(evaluateAlerts(only("node-down"), suspect, alerts, m).resolve).toEqual([]);
    const ready = facts({ nodes: [node("n1")] });
    expect(evaluateAlerts(only("node-down"), ready, alerts, m).resolve).toEqual([
      { id: 1, reason: "node n1 is ready again" },
    ]);
  });

  test("node-offline-1h: opens once a down node was last heard more than an hour ago, counted from its last-seen time", () => {
    const m = emptyMemory();
    const at = (ms: number, health: NodeFacts["health"] = "lost") =>
      facts({ now: T0 + ms, nodes: [node("n1", { health, lastSeen: T0 })] });
    expect(evaluateAlerts(only("node-offline-1h"), at(3_599_000), [], m).open).toEqual([]);
    const late = evaluateAlerts(only("node-offline-1h"), at(3_600_000), [], m);
    expect(late.open.map((o) => o.message)).toEqual(["node n1 has been offline for 1 h (lost)"]);
    // A hub back after a long outage sees every node suspect until it reconnects: no storm of alerts.
    expect(evaluateAlerts(only("node-offline-1h"), at(7_200_000, "suspect"), [], m).open).toEqual([]);
  });

  test("disk-full: any mount of disk.used_pct over 90 opens an alert per mount; back under 90 resolves it", () => {
    const m = emptyMemory();
    const series = (v: number) =>
      new Map([
        ['disk.used_pct{mount="/"}', v],
        ['disk.used_pct{mount="/data"}', 40],
        ["cpu.util", 99],
      ]);
    const full = evaluateAlerts(
      only("disk-full"),
      facts({ nodes: [node("n1", { series: series(93.5) })] }),
      [],
      m,
    );
    expect(full.open.map((o) => [o.key, o.message])).toEqual([
      ['disk-full:n1:disk.used_pct{mount="/"}', 'disk.used_pct{mount="/"} on n1 is 93.5 (> 90)'],
    ]);
    const back = evaluateAlerts(
      only("disk-full"),
      facts({ nodes: [node("n1", { series: series(70) })] }),
      live(full.open),
      m,
    );
    expect(back.resolve).toEqual([{ id: 1, reason: 'disk.used_pct{mount="/"} on n1 is 70 again' }]);
  });

  test("a series rule with `for` opens only after its condition held that long, and forgets a condition that stopped", () => {
    const m = emptyMemory();
    const rule = parseRule({
      name: "hot",
      kind: "series",
      series: "temp.cpu_c",
      op: ">=",
      threshold: 85,
      for: "2m",
    });
    const at = (ms: number, v: number) =>
      facts({ now: T0 + ms, nodes: [node("n1", { series: new Map([["temp.cpu_c", v]]) })] });
    expect(evaluateAlerts([rule], at(0, 90), [], m).open).toEqual([]);
    expect(evaluateAlerts([rule], at(60_000, 90), [], m).open).toEqual([]);
    expect(evaluateAlerts([rule], at(90_000, 70), [], m).open).toEqual([]);
    // Hot again: the two minutes start over.
    expect(evaluateAlerts([rule], at(100_000, 91), [], m).open).toEqual([]);
    expect(evaluateAlerts([rule], at(200_000, 91), [], m).open).toEqual([]);
    expect(evaluateAlerts([rule], at(220_000, 91), [], m).open.map((o) => o.rule)).toEqual(["hot"]);
  });

  test("rollout-failed: a failed or rolled-back rollout opens an alert on the workload; a new rollout resolves it", () => {
    const m = emptyMemory();
    const failed = evaluateAlerts(
      only("rollout-failed"),
      facts({
        workloads: [
          { name: "web", rollout: { state: "rolled-back", message: "allocation a1 on n1 failed" } },
          { name: "db", rollout: { state: "idle" } },
        ],
      }),
      [],
      m,
    );
    expect(failed.open.map((o) => [o.key, o.node, o.message])).toEqual([
      ["rollout-failed:web", null, "rollout of web rolled-back: allocation a1 on n1 failed"],
    ]);
    const rolling = evaluateAlerts(
      only("rollout-failed"),
      facts({ workloads: [{ name: "web", rollout: { state: "rolling" } }] }),
      live(failed.open),
      m,
    );
    expect(rolling.resolve).toEqual([{ id: 1, reason: "workload web is rolling" }]);
  });

  test("failover: a replacement placed opens failover-done; nothing fitting opens failover-failed, resolved once one is placed", () => {
    const m = emptyMemory();
    const rules = [...only("failover-done"), ...only("failover-failed")];
    const entry = (id: number, reason: string) => ({
      id,
      at: T0,
      kind: "place",
      node: null,
      workload: "cam",
      reason,
    });
    const none = evaluateAlerts(
      rules,
      facts({ failover: [entry(1, "n1 is lost: no node fits (see the workload's placement)")] }),
      [],
      m,
    );
    expect(none.open.map((o) => [o.rule, o.severity])).toEqual([["failover-failed", "critical"]]);
    const placed = evaluateAlerts(
      rules,
      facts({ now: T0 + 1000, failover: [entry(2, "n1 is lost: placed on n2")] }),
      live(none.open),
      m,
    );
    expect(placed.open.map((o) => [o.rule, o.message])).toEqual([
      ["failover-done", "failover of cam: n1 is lost: placed on n2"],
    ]);
    expect(placed.resolve).toEqual([{ id: 1, reason: "failover of cam: n1 is lost: placed on n2" }]);
    // The information alert resolves on its own an hour later.
    const later = evaluateAlerts(rules, facts({ now: T0 + 3_601_000 }), live(placed.open, T0 + 1000), m);
    expect(later.resolve.map((r) => r.id)).toEqual([1]);
  });

  test("buffer-dropping: the first counter is a baseline; growth opens an alert; ten quiet minutes resolve it", () => {
    const m = emptyMemory();
    const at = (ms: number, dropped: number) => facts({ now: T0 + ms, nodes: [node("n1", { dropped })] });
    expect(evaluateAlerts(only("buffer-dropping"), at(0, 500), [], m).open).toEqual([]);
    const grew = evaluateAlerts(only("buffer-dropping"), at(5000, 620), [], m);
    expect(grew.open.map((o) => o.message)).toEqual(["node n1 is dropping samples (120 more, 620 in all)"]);
    const alerts = live(grew.open);
    expect(evaluateAlerts(only("buffer-dropping"), at(300_000, 620), alerts, m).resolve).toEqual([]);
    expect(evaluateAlerts(only("buffer-dropping"), at(605_000, 620), alerts, m).resolve).toEqual([
      { id: 1, reason: "node n1 dropped nothing for 10 min" },
    ]);
  });

  test("buffer-dropping after a hub restart (memory empty): the open alert stays until ten quiet minutes from the first reading", () => {
    const m = emptyMemory();
    const at = (ms: number) => facts({ now: T0 + ms, nodes: [node("n1", { dropped: 620 })] });
    const alerts = live([
      { key: "buffer-dropping:n1", rule: "buffer-dropping", node: "n1", message: "dropping" },
    ]);
    expect(evaluateAlerts(only("buffer-dropping"), at(0), alerts, m).resolve).toEqual([]);
    expect(evaluateAlerts(only("buffer-dropping"), at(599_000), alerts, m).resolve).toEqual([]);
    expect(evaluateAlerts(only("buffer-dropping"), at(600_000), alerts, m).resolve.map((r) => r.id)).toEqual([
      1,
    ]);
  });

  test("a disabled rule opens nothing and resolves what it had open; agent alerts are left to their nodes", () => {
    const m = emptyMemory();
    const off = { ...BUILTIN_RULES.find((r) => r.name === "node-down")!, enabled: false };
    const alerts = live([
      { key: "node-down:n1", rule: "node-down", node: "n1", message: "down" },
      { key: "agent:n1:rule:cpu-hot", rule: "rule:cpu-hot", node: "n1", message: "hot" },
    ]);
    const d = evaluateAlerts([off], facts({ nodes: [node("n1", { health: "lost" })] }), alerts, m);
    expect(d.open).toEqual([]);
    expect(d.resolve).toEqual([{ id: 1, reason: "rule node-down is no longer in force" }]);
  });
});

describe("alert rule parsing", () => {
  const bad = (body: unknown): string | undefined => {
    try {
      parseRule(body);
    } catch (err) {
      if (err instanceof RequestError) return err.field;
      throw err;
    }
    return undefined;
  };

  test("each bad field is refused by name", () => {
    expect(bad([])).toBe("body");
    expect(bad({ name: "Bad Name", kind: "node_down" })).toBe("name");
    expect(bad({ name: "x", kind: "explode" })).toBe("kind");
    expect(bad({ name: "x", kind: "node_down", severity: "panic" })).toBe("severity");
    expect(bad({ name: "x", kind: "node_offline", for: "soon" })).toBe("for");
    expect(bad({ name: "x", kind: "node_offline", for: -1 })).toBe("for");
    expect(bad({ name: "x", kind: "series", threshold: 1 })).toBe("series");
    expect(bad({ name: "x", kind: "series", series: "cpu.util", op: "=", threshold: 1 })).toBe("op");
    expect(bad({ name: "x", kind: "series", series: "cpu.util" })).toBe("threshold");
    expect(bad({ name: "x", kind: "node_down", threshold: 3 })).toBe("threshold");
    expect(bad({ name: "x", kind: "node_down", colour: "red" })).toBe("colour");
    expect(bad({ name: "x", kind: "node_down", enabled: "no" })).toBe("enabled");
  });

  test("a good rule gets its kind's default `for` and is enabled", () => {
    expect(parseRule({ name: "offline-15m", kind: "node_offline", for: "15m", severity: "info" })).toEqual({
      name: "offline-15m",
      kind: "node_offline",
      severity: "info",
      for_ms: 900_000,
      enabled: true,
      builtin: false,
    });
    expect(parseRule({ name: "drops", kind: "buffer_dropping" }).for_ms).toBe(600_000);
  });
});

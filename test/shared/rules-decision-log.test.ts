// Specification of the decision log: decisions round-trip through SQLite, wait for the hub, and stay bounded.
import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import * as v from "valibot";
import { AgentStore } from "../../agent/store/index.ts";
import { DecisionValidation } from "../../shared/protocol/index.ts";
import { type Decision, DecisionLog, validationBody } from "../../shared/rules/index.ts";
import { tempDir } from "../support/processes.ts";

const T0 = 1_718_000_000_000;

function decision(i: number, kind: "fire" | "clear" = "fire"): Decision {
  return {
    rule: `rule-${i % 3}`,
    at: T0 + i * 1000,
    kind,
    cause: "condition",
    actions:
      kind === "fire"
        ? [
            { type: "alert", message: `hot ${i}`, severity: "warning" },
            { type: "pause_tasks", below: 5 },
          ]
        : [{ type: "clear_alert", rule: `rule-${i % 3}` }, { type: "resume_tasks" }],
    inputs: { "cpu.util": 80 + i, 'disk.used_pct{mount="/"}': null, "state.connected": 0 },
  };
}

function openLog(path: string, maxDecisions?: number): { log: DecisionLog } & Disposable {
  const store = new AgentStore(path, { bufferBytes: 8 << 20 });
  const log = new DecisionLog(store.db, maxDecisions === undefined ? {} : { maxDecisions });
  return { log, [Symbol.dispose]: () => store.close() };
}

describe("decision log", () => {
  test("a decision round-trips with its rule, time, kind, actions and inputs", () => {
    using dir = tempDir();
    using h = openLog(dir.path);
    const d = decision(7);
    const id = h.log.append(d);
    expect(h.log.list()).toEqual([
      { ...d, id, validated: false, rule_set: null, rule_set_rev: null, verdict: null, verdict_reason: null },
    ]);
  });

  test("list is newest first, honours limit and since, and survives reopening the file", () => {
    using dir = tempDir();
    {
      using h = openLog(dir.path);
      h.log.record(Array.from({ length: 10 }, (_, i) => decision(i, i % 2 === 0 ? "fire" : "clear")));
    }
    using h = openLog(dir.path);
    expect(h.log.list().map((d) => d.at - T0)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0].map((s) => s * 1000));
    expect(h.log.list({ limit: 3 }).map((d) => d.at - T0)).toEqual([9000, 8000, 7000]);
    expect(h.log.list({ since: T0 + 7000 }).map((d) => d.at - T0)).toEqual([9000, 8000, 7000]);
    expect(h.log.list({ since: T0 + 2000, limit: 2 }).map((d) => d.kind)).toEqual(["clear", "fire"]);
    expect(h.log.stats()).toEqual({ stored: 10, pending: 10, dropped: 0 });
  });

  test("decisions wait for the hub oldest first until marked validated, as valid decision_validation bodies", () => {
    using dir = tempDir();
    using h = openLog(dir.path);
    const ids = h.log.record([decision(1), decision(2, "clear"), decision(3)]);
    const pending = h.log.pendingValidation(2);
    expect(pending.map((d) => d.id)).toEqual(ids.slice(0, 2));
    const body = validationBody(pending[0]!);
    expect(body).toEqual({
      rule: "rule-1",
      at: T0 + 1000,
      action: 'fire: alert message="hot 1" severity="warning"; pause_tasks below=5',
      inputs: { "cpu.util": 81, 'disk.used_pct{mount="/"}': null, "state.connected": 0 },
    });
    expect(v.safeParse(DecisionValidation, body).success).toBe(true);
    expect(validationBody(pending[1]!).action).toBe('clear: clear_alert rule="rule-2"; resume_tasks');
    expect(validationBody({ ...decision(4, "clear"), cause: "reload", inputs: {} }).action).toMatch(
      /^clear \(reload\): clear_alert/,
    );
    h.log.markValidated(pending.map((d) => d.id));
    expect(h.log.pendingValidation().map((d) => d.id)).toEqual(ids.slice(2));
    expect(h.log.list().map((d) => d.validated)).toEqual([false, true, true]);
    expect(h.log.stats()).toEqual({ stored: 3, pending: 1, dropped: 0 });
  });

  test("bounded: past the limit the oldest validated decisions go first, then the oldest unvalidated, counted", () => {
    using dir = tempDir();
    {
      using h = openLog(dir.path, 10);
      const ids = h.log.record(Array.from({ length: 10 }, (_, i) => decision(i)));
      h.log.markValidated(ids.slice(4, 7)); // 4, 5, 6 reached the hub
      h.log.record([decision(10), decision(11)]);
      // Two over: validated 4 and 5 go, although 0-3 are older.
      expect(
        h.log
          .list({ limit: 100 })
          .map((d) => d.at - T0)
          .reverse(),
      ).toEqual([0, 1, 2, 3, 6, 7, 8, 9, 10, 11].map((s) => s * 1000));
      expect(h.log.stats()).toEqual({ stored: 10, pending: 9, dropped: 0 });
      h.log.record([decision(12), decision(13)]);
      // One validated left (6), then the oldest unvalidated (0), which the hub never saw: counted.
      expect(
        h.log
          .list({ limit: 100 })
          .map((d) => d.at - T0)
          .reverse(),
      ).toEqual([1, 2, 3, 7, 8, 9, 10, 11, 12, 13].map((s) => s * 1000));
      expect(h.log.stats()).toEqual({ stored: 10, pending: 10, dropped: 1 });
    }
    using h = openLog(dir.path, 10);
    expect(h.log.stats()).toEqual({ stored: 10, pending: 10, dropped: 1 });
    h.log.append(decision(14));
    expect(h.log.stats()).toEqual({ stored: 10, pending: 10, dropped: 2 });
  });

  test("holds at most 10,000 decisions by default", () => {
    using dir = tempDir();
    using h = openLog(dir.path);
    const batch = Array.from({ length: 1000 }, (_, i) => decision(i));
    for (let k = 0; k < 11; k++) h.log.record(batch);
    expect(h.log.stats()).toEqual({ stored: 10_000, pending: 10_000, dropped: 1000 });
  });

  test("engine state is saved and loaded, in the same transaction as the decisions it follows", () => {
    using dir = tempDir();
    using h = openLog(dir.path);
    expect(h.log.loadState()).toBeUndefined();
    const state = {
      v: 1 as const,
      rules: { "cpu-high": { id: "x", phase: "firing" as const, since: T0, fired_at: T0 } },
    };
    h.log.saveState(state);
    expect(h.log.loadState()).toEqual(state);
    const next = { v: 1 as const, rules: {} };
    h.log.record([decision(1)], next);
    expect(h.log.loadState()).toEqual(next);
  });

  test("works on any bun:sqlite database, not only the agent store's", () => {
    using dir = tempDir();
    const db = new Database(join(dir.path, "plain.db"), { create: true });
    try {
      const log = new DecisionLog(db, { maxDecisions: 2 });
      log.record([decision(1), decision(2), decision(3)]);
      expect(log.list().map((d) => d.at - T0)).toEqual([3000, 2000]);
      expect(log.stats().dropped).toBe(1);
    } finally {
      db.close();
    }
  });
});

// Alerts rolled up the tree of hubs, as pure code: what a summary carries, what a parent refuses.
import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { Children, summarize } from "../../hub/federation/index.ts";
import type { SummaryAlert } from "../../hub/federation/summarize.ts";
import { SUMMARY_LIMITS, Summary, type SummaryBody } from "../../shared/protocol/index.ts";

const alert = (hub: string, id: number, severity = "warning", open_ms = 1000): SummaryAlert => ({
  hub,
  id,
  rule: "rollout-failed",
  node: null,
  severity,
  state: "open",
  message: `alert ${id}`,
  open_ms,
});

const childSummary = (child: string, alerts: SummaryAlert[]): SummaryBody => ({
  rev: 1,
  hubs: [{ id: child, level: 3, connected: true, age_ms: 0 }],
  groups: [],
  workloads: [],
  nodes: 0,
  alerts,
});

describe("alerts rolled up", () => {
  test("a summary carries its own alerts and its children's, a silent child's aged by its silence", () => {
    const s = summarize({
      hubId: "regional",
      level: 2,
      nodes: [],
      workloads: [],
      alerts: [alert("regional", 1)],
      children: [
        {
          id: "metro-a",
          level: 3,
          connected: false,
          ageMs: 60_000,
          summary: childSummary("metro-a", [alert("metro-a", 7)]),
        },
      ],
    });
    expect(s.alerts?.map((a) => `${a.hub}:${a.id}:${a.open_ms}`)).toEqual([
      "regional:1:1000",
      "metro-a:7:61000",
    ]);
  });

  test("at most SUMMARY_LIMITS.alerts go up: the most severe first, then the newest", () => {
    const many = Array.from({ length: 500 }, (_, i) => alert("metro-a", i + 1, "warning", i));
    const s = summarize({
      hubId: "regional",
      level: 2,
      nodes: [],
      workloads: [],
      alerts: [alert("regional", 1, "critical", 999_999)],
      children: [
        { id: "metro-a", level: 3, connected: true, ageMs: 0, summary: childSummary("metro-a", many) },
      ],
    });
    expect(s.alerts?.length).toBe(SUMMARY_LIMITS.alerts);
    expect(s.alerts?.[0]).toMatchObject({ hub: "regional", severity: "critical" });
    expect(s.alerts?.[1]).toMatchObject({ hub: "metro-a", id: 1 });
    // A hub that gives no alerts list (an earlier version) sends none.
    expect(
      summarize({ hubId: "x", level: 2, nodes: [], workloads: [], children: [] }).alerts,
    ).toBeUndefined();
  });

  test("a hostile child's summary with too many alerts, or too long a message, fails the schema", () => {
    const flood = childSummary(
      "metro-a",
      Array.from({ length: SUMMARY_LIMITS.alerts + 1 }, (_, i) => alert("metro-a", i)),
    );
    expect(v.safeParse(Summary, flood).success).toBe(false);
    const long = childSummary("metro-a", [{ ...alert("metro-a", 1), message: "x".repeat(257) }]);
    expect(v.safeParse(Summary, long).success).toBe(false);
    expect(v.safeParse(Summary, childSummary("metro-a", [alert("metro-a", 1)])).success).toBe(true);
  });

  test("a child's alert said to come from a hub outside its subtree refuses the summary (unknown_hub)", () => {
    const refused: string[] = [];
    const children = new Children({
      hubId: "top",
      now: () => 1000,
      isLocal: () => false,
      isConnected: () => true,
      onRefused: (child, reason) => refused.push(`${child}:${reason}`),
    });
    const taken = children.takeSummary("metro-a", childSummary("metro-a", [alert("metro-b", 1)]));
    expect(taken.accepted).toBe(0);
    expect(refused).toEqual(["metro-a:unknown_hub"]);
    expect(children.get("metro-a")?.summary).toBeUndefined();
  });
});

// A child hub back after a cut or a loss: which copies must stop there, and what drifted (pure).
import { describe, expect, test } from "bun:test";
import type { Intent } from "../../hub/federation/intents.ts";
import { driftOf, staleCopies } from "../../hub/federation/reconnect.ts";
import { parseWorkloadSpec } from "../../shared/workload/index.ts";

const parsed = parseWorkloadSpec({
  name: "mover",
  driver: "exec",
  command: "/bin/sh",
  args: ["-c", "x"],
  replicas: 2,
});
if (!parsed.ok) throw new Error("spec");
const intent = (hub: string, moves: Intent["moves"] = []): Intent => ({
  name: "mover",
  hub,
  route: [hub],
  replicas: 2,
  explanation: { chosen: undefined, candidates: [], filtered: [] },
  created: 1,
  spec: parsed.spec,
  moves,
});

describe("a child hub back", () => {
  test("a workload moved away from a lost hub has its old copy stopped there once, when that hub is back", () => {
    const moved = intent("metro-b", [
      { from: "metro-a", to: "metro-b", at: 5, evidence: "f1 joined metro-b" },
    ]);
    expect(staleCopies([moved], new Set(["metro-a"])).map((s) => s.hub)).toEqual(["metro-a"]);
    // Another subtree coming back has nothing to stop.
    expect(staleCopies([moved], new Set(["metro-c"]))).toEqual([]);
    // Stopped already: not again.
    moved.moves![0]!.stopped = 9;
    expect(staleCopies([moved], new Set(["metro-a"]))).toEqual([]);
    // Placed back into the hub it left: its copy there is the live one.
    const back = intent("metro-a", [{ from: "metro-a", to: "metro-b", at: 5, evidence: "e" }]);
    expect(staleCopies([back], new Set(["metro-a"]))).toEqual([]);
  });

  test("what the holding hub changed while cut off is named; the same spec is no drift", () => {
    const i = intent("metro-a");
    expect(driftOf(i, 200, { ...parsed.spec, version: 1 })).toBeUndefined();
    expect(driftOf(i, 404, null)).toBe("removed at the holding hub");
    expect(driftOf(i, 200, { ...parsed.spec, replicas: 1, env: { A: "1" }, version: 3 })).toBe(
      "changed at the holding hub (version 3): replicas 1 (intent 2), env",
    );
    // An answer that is no workload says nothing either way.
    expect(driftOf(i, 503, { error: {} })).toBeUndefined();
  });
});

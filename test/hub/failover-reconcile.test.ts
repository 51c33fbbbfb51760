// The failover reconciler as a specification: decisions over an in-memory state, nothing applied.
import { describe, expect, test } from "bun:test";
import {
  chooseWitnesses,
  type DrainAlloc,
  type DrainMove,
  decideDrain,
  maintenanceWindow,
  type ReconcileAlloc,
  type ReconcileNode,
  type ReconcileState,
  type ReconcileWorkload,
  reconcile,
  TriggerWatch,
} from "../../hub/failover/index.ts";
import { type AllocRecord, nextStep } from "../../hub/workloads/index.ts";
import { parseWorkloadSpec, resolveDisconnect, type WorkloadSpec } from "../../shared/workload/index.ts";

const T0 = 1_000_000;

function spec(input: Record<string, unknown>): WorkloadSpec {
  const r = parseWorkloadSpec({ name: "svc", driver: "exec", command: "/bin/true", ...input });
  if (!r.ok) throw new Error(`${r.field}: ${r.message}`);
  return r.spec;
}

const node = (state: ReconcileNode["state"], o: Partial<ReconcileNode> = {}): ReconcileNode => ({
  state,
  level: 2,
  troubleSince: T0,
  since: T0,
  evidence: [],
  ...o,
});

const alloc = (id: string, nodeId: string, o: Partial<ReconcileAlloc> = {}): ReconcileAlloc => ({
  id,
  workload: "svc",
  node: nodeId,
  status: "running",
  healthy: null,
  running_since: T0 - 60_000,
  created: T0 - 60_000,
  ...o,
});

function state(
  w: Partial<ReconcileWorkload> & { spec: WorkloadSpec },
  nodes: Record<string, ReconcileNode>,
  now: number,
  scores: Record<string, number> = {},
): ReconcileState {
  return {
    now,
    nodes: new Map(Object.entries(nodes)),
    workloads: [{ name: "svc", rolling: false, allocs: [], ...w }],
    score: (_w, n) => scores[n],
    settleMs: 2000,
  };
}

describe("failover reconciler", () => {
  test("a copy on a disconnected node is trusted until lost_after, then marked lost and replaced", () => {
    const s = spec({ disconnect: { lost_after: "5s" } });
    const nodes = { a: node("disconnected"), b: node("ready") };
    const early = reconcile(state({ spec: s, allocs: [alloc("x", "a")] }, nodes, T0 + 4_999));
    expect(early.mark_lost).toEqual([]);
    expect(early.place).toEqual([]);
    const late = reconcile(state({ spec: s, allocs: [alloc("x", "a")] }, nodes, T0 + 5_000));
    expect(late.mark_lost.map((m) => m.alloc)).toEqual(["x"]);
    expect(late.mark_lost[0]!.reason).toContain("node a disconnected for 5 s (lost_after 5 s");
    expect(late.place).toEqual([expect.objectContaining({ workload: "svc", count: 1 })]);
  });

  test("a suspect node (a blip, or a hub inside its restart grace) moves nothing however long it lasts", () => {
    const d = reconcile(
      state({ spec: spec({}), allocs: [alloc("x", "a")] }, { a: node("suspect") }, T0 + 3_600_000),
    );
    expect(d).toEqual({ mark_lost: [], place: [], stop: [], keep: [], restart: [] });
  });

  test("replace: false, pinned nodes and level-5 defaults mark the copy lost but start nothing elsewhere", () => {
    const cases = [
      spec({ disconnect: { lost_after: 1000, replace: false } }),
      spec({ nodes: ["a"], disconnect: { lost_after: 1000, replace: true } }),
    ];
    for (const s of cases) {
      const d = reconcile(state({ spec: s, allocs: [alloc("x", "a")] }, { a: node("lost") }, T0 + 10_000));
      expect(d.mark_lost).toHaveLength(1);
      expect(d.place).toEqual([]);
    }
    const l5 = reconcile(
      state({ spec: spec({}), allocs: [alloc("x", "a")] }, { a: node("lost", { level: 5 }) }, T0 + 400_000),
    );
    expect(l5.mark_lost).toHaveLength(1);
    expect(l5.place).toEqual([]);
  });

  test("a partitioned node (its site out at once, or witnesses reach it) keeps its copies unless the workload says replace: true", () => {
    const nodes = { a: node("disconnected", { partitioned: true }), b: node("ready") };
    const frozen = reconcile(state({ spec: spec({}), allocs: [alloc("x", "a")] }, nodes, T0 + 600_000));
    expect(frozen).toEqual({ mark_lost: [], place: [], stop: [], keep: [], restart: [] });
    const moves = reconcile(
      state(
        { spec: spec({ disconnect: { replace: true } }), allocs: [alloc("x", "a")] },
        nodes,
        T0 + 600_000,
      ),
    );
    expect(moves.mark_lost.map((m) => m.alloc)).toEqual(["x"]);
    expect(moves.place).toHaveLength(1);
  });

  test("a lost copy that already has its replacement asks for nothing more", () => {
    const lost = alloc("x", "a", {
      status: "lost",
      lost: { at: T0 + 5000, prev_status: "running", reported_since: false },
    });
    const repl = alloc("y", "b", { created: T0 + 5000, running_since: T0 + 5500 });
    const d = reconcile(
      state({ spec: spec({}), allocs: [lost, repl] }, { a: node("lost"), b: node("ready") }, T0 + 60_000),
    );
    expect(d).toEqual({ mark_lost: [], place: [], stop: [], keep: [], restart: [] });
  });

  describe("the node returns while both copies run", () => {
    const lostAt = T0 + 5000;
    const original = () =>
      alloc("orig", "a", {
        status: "lost",
        lost: { at: lostAt, prev_status: "running", reported_since: false },
      });
    const replacement = (o: Partial<ReconcileAlloc> = {}) =>
      alloc("repl", "b", { created: lostAt, running_since: lostAt + 500, ...o });
    const back = (now: number) => ({ a: node("ready", { since: now - 2000 }), b: node("ready") });
    const decide = (
      reconcileChoice: string,
      o: { scores?: Record<string, number>; repl?: Partial<ReconcileAlloc>; health?: boolean } = {},
    ) => {
      const now = T0 + 60_000;
      const s = spec({
        disconnect: { reconcile: reconcileChoice },
        ...(o.health ? { health: { type: "tcp", port: 80 } } : {}),
      });
      return reconcile(
        state({ spec: s, allocs: [original(), replacement(o.repl)] }, back(now), now, o.scores ?? {}),
      );
    };

    test("keep_original: the replacement stops, the original stays (its lost mark cleared)", () => {
      const d = decide("keep_original");
      expect(d.keep.map((k) => k.alloc)).toEqual(["orig"]);
      expect(d.stop.map((k) => k.alloc)).toEqual(["repl"]);
      expect(d.place).toEqual([]);
    });

    test("keep_replacement: the original stops, but never before the replacement is healthy", () => {
      expect(decide("keep_replacement").stop.map((k) => k.alloc)).toEqual(["orig"]);
      const waiting = decide("keep_replacement", { health: true, repl: { healthy: null } });
      expect(waiting.stop).toEqual([]);
      expect(waiting.keep).toEqual([]);
      expect(
        decide("keep_replacement", { health: true, repl: { healthy: true } }).stop.map((k) => k.alloc),
      ).toEqual(["orig"]);
      expect(decide("keep_replacement", { repl: { status: "pending" } }).stop).toEqual([]);
    });

    test("best_score: the better placement score wins, a tie keeps the original", () => {
      expect(decide("best_score", { scores: { a: 80, b: 60 } }).stop.map((k) => k.alloc)).toEqual(["repl"]);
      expect(decide("best_score", { scores: { a: 60, b: 80 } }).stop.map((k) => k.alloc)).toEqual(["orig"]);
      expect(decide("best_score", { scores: { a: 70, b: 70 } }).stop.map((k) => k.alloc)).toEqual(["repl"]);
    });

    test("a kept original that fails its health check gives way to a healthy replacement", () => {
      const now = T0 + 60_000;
      const s = spec({ disconnect: { reconcile: "keep_original" }, health: { type: "tcp", port: 80 } });
      const sick = {
        ...original(),
        status: "running" as const,
        healthy: false,
        lost: { at: lostAt, prev_status: "running" as const, reported_since: true },
      };
      const d = reconcile(state({ spec: s, allocs: [sick, replacement({ healthy: true })] }, back(now), now));
      expect(d.stop.map((k) => k.alloc)).toEqual(["orig"]);
      expect(d.stop[0]!.reason).toContain("the original is unhealthy");
    });

    test("longest_running: the copy running longer wins", () => {
      expect(decide("longest_running").stop.map((k) => k.alloc)).toEqual(["repl"]);
      const younger = decide("longest_running", { repl: { running_since: T0 - 120_000 } });
      expect(younger.stop.map((k) => k.alloc)).toEqual(["orig"]);
    });

    test("nothing is decided until the node has been back for the settle time (its reports arrive first)", () => {
      const now = T0 + 60_000;
      const nodes = { a: node("ready", { since: now - 500 }), b: node("ready") };
      const d = reconcile(state({ spec: spec({}), allocs: [original(), replacement()] }, nodes, now));
      expect(d).toEqual({ mark_lost: [], place: [], stop: [], keep: [], restart: [] });
    });

    test("an original that stopped while away (fenced) gives way to the replacement, or starts afresh when none exists", () => {
      const now = T0 + 60_000;
      const fenced = alloc("orig", "a", {
        status: "complete",
        lost: { at: lostAt, prev_status: "running", reported_since: true },
      });
      const withRepl = reconcile(state({ spec: spec({}), allocs: [fenced, replacement()] }, back(now), now));
      expect(withRepl.stop.map((k) => k.alloc)).toEqual(["orig"]);
      const alone = reconcile(
        state({ spec: spec({ disconnect: { replace: false } }), allocs: [fenced] }, back(now), now),
      );
      expect(alone.restart.map((k) => k.alloc)).toEqual(["orig"]);
    });
  });
});

describe("disconnect policy defaults", () => {
  test("by level and kind: a stateless level 1-3 service is replaced quickly; level 5 or a site-pinned one does not move", () => {
    expect(resolveDisconnect(spec({}), 2)).toMatchObject({
      lost_after_ms: 5000,
      replace: true,
      reconcile: "best_score",
    });
    expect(resolveDisconnect(spec({}), 4)).toMatchObject({ lost_after_ms: 30_000, replace: true });
    expect(resolveDisconnect(spec({}), 5)).toMatchObject({ replace: false });
    expect(resolveDisconnect(spec({ placement: { labels: { site: "plant-7" } } }), 2)).toMatchObject({
      replace: false,
    });
    expect(resolveDisconnect(spec({ placement: { labels: "site=plant-7" } }), 2)).toMatchObject({
      replace: false,
    });
    expect(resolveDisconnect(spec({ driver: "job" }), 2)).toMatchObject({
      lost_after_ms: 30_000,
      replace: true,
    });
    expect(resolveDisconnect(spec({}), 2).stop_on_agent_after_ms).toBeUndefined();
    expect(
      resolveDisconnect(
        spec({ disconnect: { lost_after: "1m", stop_on_agent_after: "45s", reconcile: "keep_replacement" } }),
        2,
      ),
    ).toMatchObject({ lost_after_ms: 60_000, stop_on_agent_after_ms: 45_000, reconcile: "keep_replacement" });
  });

  test("a bad disconnect block is refused naming the field", () => {
    const bad = [
      [{ lost_after: "soon" }, "disconnect.lost_after"],
      [{ reconcile: "newest" }, "disconnect.reconcile"],
      [{ stop_on_agent_after: 10 }, "disconnect.stop_on_agent_after"],
      [{ replace: "yes" }, "disconnect.replace"],
    ] as const;
    for (const [disconnect, field] of bad) {
      const r = parseWorkloadSpec({ name: "x", driver: "exec", command: "/bin/true", disconnect });
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.field).toBe(field);
    }
  });
});

describe("witnesses", () => {
  const n = (id: string, labels: Record<string, string>, ready = true) => ({ id, labels, ready });
  test("a silent node's ready site peers are asked first, then its region's, at most three; none without a witness address", () => {
    const fleet = [
      n("x", { site: "s1", region: "r", witness: "10.0.0.5:8080" }, false),
      n("p1", { site: "s1", region: "r" }),
      n("p2", { site: "s1", region: "r" }, false),
      n("q1", { site: "s2", region: "r" }),
      n("q2", { site: "s2", region: "r" }),
    ];
    expect(chooseWitnesses(fleet[0]!, fleet)).toEqual({
      target: "10.0.0.5:8080",
      peers: ["p1"],
      scope: "site",
    });
    const alone = [fleet[0]!, fleet[3]!, fleet[4]!];
    expect(chooseWitnesses(fleet[0]!, alone)).toEqual({
      target: "10.0.0.5:8080",
      peers: ["q1", "q2"],
      scope: "region",
    });
    expect(chooseWitnesses(n("y", { site: "s1" }, false), fleet)).toBeUndefined();
  });
});

describe("drain decisions", () => {
  const base = parseWorkloadSpec({ name: "svc", driver: "exec", command: "/bin/true" });
  const s = base.ok ? base.spec : (undefined as never);
  const a = (id: string, node: string, o: Partial<DrainAlloc> = {}): DrainAlloc => ({
    id,
    workload: `w-${id}`,
    node,
    active: true,
    status: "running",
    healthy: null,
    spec: s,
    ...o,
  });
  const drain = { node: "d", started: 0, deadline: 100_000, max_parallel: 2, done: null };
  const decide = (allocs: DrainAlloc[], moves: DrainMove[] = [], now = 1000) =>
    decideDrain({
      now,
      drains: [drain],
      moves,
      allocs: new Map(allocs.map((x) => [x.id, x])),
      onNode: (node) => allocs.filter((x) => x.node === node),
    });

  test("starts at most max_parallel moves, and skips pinned copies and jobs", () => {
    const pinned = parseWorkloadSpec({ name: "p", driver: "exec", command: "/bin/true", nodes: ["d"] });
    const job = parseWorkloadSpec({ name: "j", driver: "job", command: "/bin/true" });
    const d = decide([
      a("p", "d", { spec: pinned.ok ? pinned.spec : s }),
      a("j", "d", { spec: job.ok ? job.spec : s }),
      a("x", "d"),
      a("y", "d"),
      a("z", "d"),
    ]);
    expect(d.start.map((m) => m.old)).toEqual(["x", "y"]);
  });

  test("the old copy stops only once its twin is healthy; a vanished twin is tried again; the deadline stops the rest", () => {
    const move = { old: "x", new: "t", node: "d", workload: "w-x", started: 0 };
    expect(decide([a("x", "d"), a("t", "e", { status: "pending" })], [move]).finish).toEqual([]);
    expect(decide([a("x", "d"), a("t", "e")], [move]).finish.map((f) => f.old)).toEqual(["x"]);
    expect(decide([a("x", "d")], [move]).retry).toEqual([{ old: "x" }]);
    expect(decide([a("x", "d"), a("t", "e")], [move], 100_000).force.map((f) => f.old)).toEqual(["x"]);
    expect(decide([a("t", "e")], []).done).toEqual(["d"]);
  });
});

describe("migration triggers", () => {
  test("utilisation, heat and a slow link trigger once each after holding for their time; a maintenance window ahead of its lead", () => {
    const watch = new TriggerWatch();
    const t = 1_000_000_000;
    const hot = { id: "n", cpuUtil: 95 };
    expect(watch.check(t, [hot])).toEqual([]);
    expect(watch.check(t + 119_000, [hot])).toEqual([]);
    expect(watch.check(t + 120_000, [hot])).toEqual([{ node: "n", reason: "cpu.util above 90% for 120 s" }]);
    expect(watch.check(t + 200_000, [hot])).toEqual([]);
    // Cleared, then again: a new episode.
    watch.check(t + 201_000, [{ id: "n", cpuUtil: 50 }]);
    watch.check(t + 202_000, [hot]);
    expect(watch.check(t + 322_000, [hot]).map((x) => x.node)).toEqual(["n"]);
    // A dip resets the count.
    const w2 = new TriggerWatch();
    w2.check(t, [{ id: "m", tempC: 90 }]);
    w2.check(t + 30_000, [{ id: "m", tempC: 60 }]);
    expect(w2.check(t + 60_000, [{ id: "m", tempC: 90 }])).toEqual([]);
    expect(w2.check(t + 120_000, [{ id: "m", tempC: 90 }])[0]?.reason).toContain("temp.cpu_c");
    const start = new Date(t + 900_000).toISOString();
    const end = new Date(t + 4_000_000).toISOString();
    const w3 = new TriggerWatch();
    expect(w3.check(t, [{ id: "k", maintenance: `${start}/${end}` }])).toEqual([]);
    expect(w3.check(t + 300_000, [{ id: "k", maintenance: `${start}/${end}` }])[0]?.reason).toContain(
      "maintenance window",
    );
    expect(maintenanceWindow("soon")).toBeUndefined();
  });
});

describe("same-node rolling update on a fixed port", () => {
  const withPort = spec({ nodes: ["a"], health: { type: "tcp", port: 8443 } });
  const rec = (
    id: string,
    version: number,
    status: AllocRecord["status"],
    desired: "run" | "stop" = "run",
  ): AllocRecord =>
    ({
      id,
      workload: "svc",
      node: "a",
      version,
      spec: withPort,
      desired,
      status,
      message: null,
      generation: 1,
      pid: null,
      restarts: 0,
      healthy: null,
      running_since: T0,
      exit_code: null,
      signal: null,
      duration_ms: null,
      output_tail: null,
      created: T0,
      updated: T0,
    }) as AllocRecord;
  const rolling = { state: "rolling" as const, from: 1, to: 2, step_started: T0 };

  test("the old copy is stopped first, and the new one starts on its node only once it has stopped", () => {
    const step = nextStep(rolling, withPort, [rec("old", 1, "running")], T0 + 1000);
    expect(step).toEqual({ kind: "stop-first", stop: ["old"], startOn: ["a"] });
    const handoff = { ...rolling, handoff: [{ node: "a", stopped: "old" }] };
    const stopping = [rec("old", 1, "running", "stop")];
    expect(nextStep(handoff, withPort, [], T0 + 1500, stopping)).toEqual({ kind: "wait" });
    const stopped = [rec("old", 1, "complete", "stop")];
    expect(nextStep(handoff, withPort, [], T0 + 2000, stopped)).toEqual({
      kind: "handoff-start",
      startOn: ["a"],
    });
    // Without a fixed port, the usual replace (both at once).
    const free = spec({ nodes: ["a"] });
    expect(nextStep(rolling, free, [{ ...rec("old", 1, "running"), spec: free }], T0 + 1000).kind).toBe(
      "replace",
    );
  });
});

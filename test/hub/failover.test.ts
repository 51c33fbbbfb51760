// Failover inside one hub (the server's wiring, sessions at the transport boundary) on a fake clock: hours in seconds.
import { describe, expect, test } from "bun:test";
import { envelope } from "../../shared/protocol/index.ts";
import { generateKeyPair, type KeyPair } from "../../shared/secure/index.ts";
import { parseWorkloadSpec, type WorkloadSpec } from "../../shared/workload/index.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { ADMIN, type JoinedNode, joinNode, openHubCore } from "../support/hub-core.ts";
import { tempDir } from "../support/processes.ts";

const GIB = 1024 ** 3;
const RESOURCES = { cpu_cores: 4, mem_bytes: 8 * GIB, disk_bytes: 100 * GIB, arch: "x64" };

function spec(input: Record<string, unknown>): WorkloadSpec {
  const r = parseWorkloadSpec({ driver: "exec", command: "/bin/true", ...input });
  if (!r.ok) throw new Error(`${r.field}: ${r.message}`);
  return r.spec;
}

async function hub(dir: string, clock: FakeClock, grace = 30_000) {
  return await openHubCore(dir, {
    clock,
    statusPolicy: {
      suspectAfterMs: 10_000,
      downAfterMs: 60_000,
      restartGraceMs: grace,
      keyLifetimeMs: 30 * 86_400_000,
    },
  });
}
type Hub = Awaited<ReturnType<typeof hub>>;

// One key per node id for the whole test file, so a node can join a restarted hub as itself.
const keys = new Map<string, KeyPair>();
const join = (core: Hub, id: string, labels: Record<string, string> = {}, level = 2) => {
  if (!keys.has(id)) keys.set(id, generateKeyPair());
  return joinNode(core, id, { level, labels, resources: RESOURCES }, { key: keys.get(id)! });
};

async function events(core: Hub, q = "") {
  const res = await core.app.request(`/api/v1/failover/events${q}`, {
    headers: { authorization: `Bearer ${ADMIN}` },
  });
  return (
    (await res.json()) as {
      events: { kind: string; node: string; change: string; reason: string; evidence: string[] }[];
    }
  ).events;
}

/** Runs the clock forward in small steps, sending each live node's heartbeat every second. */
async function run(clock: FakeClock, ms: number, beating: Record<string, JoinedNode> = {}) {
  for (let t = 0; t < ms; t += 250) {
    await clock.advance(250);
    if (t % 1000 === 0)
      for (const [id, n] of Object.entries(beating)) n.send(envelope("heartbeat", id, { pending: 0 }));
  }
}

describe("failover in one hub", () => {
  test("a closed session: suspect at once, disconnected after 2 s, the copy lost after lost_after and replaced; then an hour passes and nothing else moves", async () => {
    using dir = tempDir();
    const clock = new FakeClock();
    using core = await hub(dir.path, clock);
    const a = await join(core, "a");
    const b = await join(core, "b");
    const w = await core.controller.create(spec({ name: "svc", nodes: undefined }));
    const first = (await core.workloads.allocsOf(w.name))[0]!;
    const [gone, other] = first.node === "a" ? [a, b] : [b, a];
    const goneId = first.node;
    const otherId = goneId === "a" ? "b" : "a";
    core.gateway.onClosed(gone.peer);
    expect(core.failover.monitor.get(goneId)?.health).toBe("suspect");
    expect(core.registry.status(core.registry.get(goneId)!)).toBe("suspect");
    await clock.advance(1_900);
    expect(core.failover.monitor.get(goneId)?.health).toBe("suspect");
    // 2 s, stretched by up to 20% jitter.
    await clock.advance(600);
    expect(core.failover.monitor.get(goneId)?.health).toBe("disconnected");
    expect(core.registry.status(core.registry.get(goneId)!)).toBe("down");
    await clock.advance(2_400);
    expect((await core.workloads.alloc(first.id))?.status).not.toBe("lost");
    await clock.advance(700);
    expect((await core.workloads.alloc(first.id))?.status).toBe("lost");
    const active = (await core.workloads.allocsOf("svc")).filter((x) => x.desired === "run");
    expect(active.map((x) => x.node).sort()).toEqual([goneId, otherId].sort());
    const replacement = active.find((x) => x.node === otherId)!;
    // The other node was sent its new desired set with the replacement in it.
    const sets = other.received.filter((m) => m.t === "allocs");
    expect(JSON.stringify(sets.at(-1))).toContain(replacement.id);
    await run(clock, 3_600_000, { [otherId]: other });
    expect((await core.workloads.allocsOf("svc")).filter((x) => x.desired === "run")).toHaveLength(2);
    const log = await events(core, `?node=${goneId}`);
    expect(
      log
        .filter((e) => e.kind === "node")
        .map((e) => e.change)
        .reverse(),
    ).toEqual(["ready -> suspect", "suspect -> disconnected", "disconnected -> lost"]);
    expect(core.failover.monitor.get(otherId)?.health).toBe("ready");
    expect(core.metrics.value("novacron_hub_node_transitions_total", { to: "lost" })).toBe(1);
  });

  test("the failover routes need the admin token and list liveness with its reason", async () => {
    using dir = tempDir();
    const clock = new FakeClock();
    using core = await hub(dir.path, clock);
    const a = await join(core, "a");
    core.gateway.onClosed(a.peer);
    expect((await core.app.request("/api/v1/failover/nodes")).status).toBe(401);
    expect((await core.app.request("/api/v1/failover/events")).status).toBe(401);
    const res = await core.app.request("/api/v1/failover/nodes", {
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { nodes: { id: string; health: string; reason: string }[] };
    expect(body.nodes).toEqual([
      expect.objectContaining({ id: "a", health: "suspect", reason: "connection closed" }),
    ]);
  });

  test("silent nodes are suspect after a few missed heartbeats, each at its own jittered time (a fleet never expires together)", async () => {
    using dir = tempDir();
    const clock = new FakeClock();
    using core = await hub(dir.path, clock);
    const ids = Array.from({ length: 40 }, (_, i) => `s${i}`);
    for (const id of ids) await join(core, id);
    const suspectAt = new Map<string, number>();
    const start = clock.now();
    for (let t = 0; t < 15_000; t += 100) {
      await clock.advance(100);
      for (const id of ids)
        if (!suspectAt.has(id) && core.failover.monitor.get(id)?.health === "suspect")
          suspectAt.set(id, clock.now() - start);
    }
    const times = [...suspectAt.values()];
    expect(times).toHaveLength(40);
    expect(Math.min(...times)).toBeGreaterThanOrEqual(10_000);
    expect(Math.max(...times)).toBeLessThanOrEqual(12_000 + 250);
    expect(new Set(times).size).toBeGreaterThan(4);
    const reason = (await events(core, "?node=s0")).find((e) => e.change === "ready -> suspect")?.reason;
    expect(reason).toMatch(/^no heartbeat for 1\d(\.\d)? s \(suspect_after 1\d(\.\d)? s\)$/);
  });

  test("after a hub restart nobody is worse than suspect during the grace, and nothing moves; a node not back by then is failed over", async () => {
    using dir = tempDir();
    const clock = new FakeClock();
    {
      using before = await hub(dir.path, clock);
      await join(before, "a");
      await join(before, "b");
      await before.controller.create(spec({ name: "svc", replicas: 2 }));
      expect(await before.workloads.activeAllocs()).toHaveLength(2);
    }
    using after = await hub(dir.path, clock, 30_000);
    expect(after.failover.monitor.get("a")?.health).toBe("suspect");
    const b = await join(after, "b");
    const c = await join(after, "c");
    await run(clock, 29_000, { b, c });
    expect(after.failover.monitor.get("a")?.health).toBe("suspect");
    expect((await after.workloads.activeAllocs()).map((x) => x.status)).not.toContain("lost");
    expect((await events(after)).filter((e) => e.kind !== "node")).toEqual([]);
    await run(clock, 2_000, { b, c });
    expect(after.failover.monitor.get("a")?.health).toBe("disconnected");
    await run(clock, 5_000, { b, c });
    const onA = (await after.workloads.allocsOf("svc")).find((x) => x.node === "a")!;
    expect(onA.status).toBe("lost");
    expect((await after.workloads.activeAllocs()).map((x) => x.node).sort()).toEqual(["a", "b", "c"]);
  });

  test("a whole site out at once is a partition of that subtree: its copies are frozen in place unless the workload asks to move", async () => {
    using dir = tempDir();
    const clock = new FakeClock();
    using core = await hub(dir.path, clock);
    const s1 = await join(core, "s1", { site: "plant-7" });
    const s2 = await join(core, "s2", { site: "plant-7" });
    await core.controller.create(spec({ name: "frozen" }));
    await core.controller.create(spec({ name: "mover", disconnect: { replace: true } }));
    const parent = await join(core, "m1", { site: "metro" });
    const placed = (await core.workloads.activeAllocs()).map((x) => x.node);
    expect(placed.every((n) => n === "s1" || n === "s2")).toBe(true);
    core.gateway.onClosed(s1.peer);
    core.gateway.onClosed(s2.peer);
    await run(clock, 20_000, { m1: parent });
    const log = await events(core, "?node=s2");
    expect(log.find((e) => e.change === "ready -> suspect")?.evidence).toEqual([
      "site plant-7: all 2 nodes out of contact (partition)",
    ]);
    const frozen = (await core.workloads.allocsOf("frozen")).filter((x) => x.desired === "run");
    expect(frozen).toHaveLength(1);
    expect(frozen[0]!.status).not.toBe("lost");
    expect(frozen.map((x) => x.node)).not.toContain("m1");
    const mover = (await core.workloads.allocsOf("mover")).filter((x) => x.desired === "run");
    expect(mover.map((x) => x.node)).toContain("m1");
  });

  test("witnesses slower than lost_after: the copy waits for their answer, and a later round in which no peer answers does not undo it", async () => {
    using dir = tempDir();
    const clock = new FakeClock();
    using core = await hub(dir.path, clock);
    const x = await join(core, "x", { site: "s1", witness: "10.0.0.5:9100" });
    const p = await join(core, "p", { site: "s1" });
    await core.controller.create(
      spec({ name: "cam", nodes: ["x"], disconnect: { lost_after: "1s", replace: false } }),
    );
    const asked = () =>
      p.received.filter(
        (m): m is Extract<typeof m, { t: "command" }> =>
          m.t === "command" && (m.b as { kind: string }).kind === "witness",
      );
    core.gateway.onClosed(x.peer);
    await run(clock, 4_000, { p });
    // Disconnected and well past lost_after, but the witnesses have not answered: nothing is lost.
    expect(core.failover.monitor.get("x")?.health).toBe("disconnected");
    expect(asked()).toHaveLength(1);
    expect((await core.workloads.activeAllocs())[0]!.status).not.toBe("lost");
    expect(core.failover.monitor.get("x")?.evidence).toContain("witnesses asked, no answer yet");
    p.send(
      envelope("reply", "p", { id: (asked()[0]!.b as { id: string }).id, ok: true, body: { reached: true } }),
    );
    await run(clock, 1_000, { p });
    expect(core.failover.monitor.get("x")?.evidence).toContain("1 of 1 site peers reach it");
    // The next round (10 s later) gets no answer at all: what the peer said before still stands.
    await run(clock, 10_000, { p });
    expect(asked()).toHaveLength(2);
    p.send(envelope("reply", "p", { id: (asked()[1]!.b as { id: string }).id, ok: false, body: null }));
    await run(clock, 60_000, { p });
    expect(core.failover.monitor.get("x")?.health).toBe("disconnected");
    expect((await core.workloads.activeAllocs())[0]!.status).not.toBe("lost");
    expect((await events(core)).filter((e) => e.kind === "mark_lost")).toEqual([]);
  });

  test("witnesses who answer that they cannot reach it end the wait: the copy is lost by its policy", async () => {
    using dir = tempDir();
    const clock = new FakeClock();
    using core = await hub(dir.path, clock);
    const x = await join(core, "x", { site: "s1", witness: "10.0.0.5:9100" });
    const p = await join(core, "p", { site: "s1" });
    await core.controller.create(
      spec({ name: "cam", nodes: ["x"], disconnect: { lost_after: "1s", replace: false } }),
    );
    core.gateway.onClosed(x.peer);
    await run(clock, 4_000, { p });
    expect((await core.workloads.activeAllocs())[0]!.status).not.toBe("lost");
    const q = p.received.find((m) => m.t === "command" && (m.b as { kind: string }).kind === "witness")!;
    p.send(envelope("reply", "p", { id: (q.b as { id: string }).id, ok: true, body: { reached: false } }));
    await run(clock, 1_000, { p });
    const lost = await events(core, "?workload=cam");
    expect(lost.find((e) => e.kind === "mark_lost")?.reason).toContain("no witness reached it (0 of 1)");
  });

  test("a replaced lost copy on a node that stays out past lost_gc_after is collected, and the node stops it when it returns", async () => {
    using dir = tempDir();
    const clock = new FakeClock();
    using core = await openHubCore(dir.path, {
      clock,
      statusPolicy: {
        suspectAfterMs: 10_000,
        downAfterMs: 60_000,
        restartGraceMs: 30_000,
        keyLifetimeMs: 30 * 86_400_000,
      },
      failover: { lostGcAfterMs: 3_600_000 },
    });
    const a = await join(core, "a");
    await core.controller.create(spec({ name: "svc", nodes: undefined }));
    const b = await join(core, "b");
    const original = (await core.workloads.allocsOf("svc"))[0]!;
    expect(original.node).toBe("a");
    core.gateway.onClosed(a.peer);
    await run(clock, 10_000, { b });
    expect((await core.workloads.alloc(original.id))?.status).toBe("lost");
    expect((await core.workloads.alloc(original.id))?.desired).toBe("run");
    await run(clock, 3_540_000, { b });
    // Not yet an hour since it was lost.
    expect((await core.workloads.alloc(original.id))?.desired).toBe("run");
    await run(clock, 60_000, { b });
    expect((await core.workloads.alloc(original.id))?.desired).toBe("stop");
    const stop = (await events(core, "?workload=svc")).find((e) => e.kind === "stop");
    expect(stop?.reason).toContain("collected");
    expect(
      (await core.workloads.allocsOf("svc")).filter((x) => x.desired === "run").map((x) => x.node),
    ).toEqual(["b"]);
    // The node returns: the desired set it is sent no longer holds the old copy.
    const back = await join(core, "a");
    await run(clock, 5_000, { a: back, b });
    const sets = back.received.filter((m) => m.t === "allocs");
    expect(sets.length).toBeGreaterThan(0);
    expect(JSON.stringify(sets.at(-1))).not.toContain(original.id);
    expect(
      (await core.workloads.allocsOf("svc")).filter((x) => x.desired === "run").map((x) => x.node),
    ).toEqual(["b"]);
  });
});

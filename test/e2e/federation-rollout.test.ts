// Staged rollout across child hubs, end to end: a top hub, two metro hubs below it, a real agent under each.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { loop, pids } from "../support/marked-procs.ts";
import { type AgentHandle, type HubHandle, startAgent, startHub, tempDir } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";

const HUB_ARGS = ["--heartbeat-interval", "1s", "--suspect-after", "3s", "--down-after", "8s"];

interface Rollout {
  name: string;
  state: string;
  reason?: string;
  domains: { hub: string; phase: string; version?: number; created?: boolean }[];
  history: { at: number; hub: string; event: string }[];
}
interface Workload {
  version: number;
  env: Record<string, string>;
  rollout_status: { state: string };
  allocs: { version: number; status: string; healthy: boolean | null }[];
}

describe("federation: staged rollout across child hubs", () => {
  const dir = tempDir("novacron-fedroll-");
  const mark = `novacron-fedroll-${process.pid}-${Math.floor(Math.random() * 1e9)}`;
  const hubs: HubHandle[] = [];
  const agents: AgentHandle[] = [];
  let top: HubHandle;
  let metroA: HubHandle;
  let metroB: HubHandle;
  let metroC: HubHandle;

  const metro = async (id: string) => {
    const h = await startHub({
      data: join(dir.path, id),
      args: [
        ...HUB_ARGS,
        "--hub-id",
        id,
        "--level",
        "3",
        "--parent",
        top.wsUrl,
        "--parent-join-token",
        top.joinToken,
      ],
    });
    hubs.push(h);
    const a = await startAgent({
      data: join(dir.path, `${id}-agent`),
      nodeId: `${id}-n1`,
      hub: h.wsUrl,
      joinToken: h.joinToken,
      args: ["--heartbeat-interval", "1s", "--level", "4", "--label", "region=eu"],
    });
    agents.push(a);
    return h;
  };

  const spec = (version: string, healthExit: number) => ({
    name: "svc",
    driver: "exec",
    command: "/bin/sh",
    args: loop(mark),
    env: { VERSION: version },
    replicas: 1,
    placement: { levels: [4, 4] },
    health: {
      type: "command",
      command: "/bin/sh",
      args: ["-c", `exit ${healthExit}`],
      interval_ms: 200,
      threshold: 2,
    },
    rollout: { strategy: "rolling", min_healthy_ms: 300, deadline_ms: 20_000 },
  });

  const roll = (body: unknown) =>
    top.api<Rollout>("/api/v1/topology/rollouts", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  const rollout = async () => (await top.api<Rollout>("/api/v1/topology/rollouts/svc")).body;
  const settled = (what: string) =>
    waitFor(
      async () => {
        const r = await rollout();
        return r.state === "done" || r.state === "reverted" ? r : undefined;
      },
      { what, timeoutMs: 60_000 },
    );
  const workload = async (h: HubHandle) => (await h.api<Workload>("/api/v1/workloads/svc")).body;

  beforeAll(async () => {
    top = await startHub({ data: join(dir.path, "top"), args: [...HUB_ARGS, "--hub-id", "top"] });
    hubs.push(top);
    metroA = await metro("metro-a");
    metroB = await metro("metro-b");
    metroC = await metro("metro-c");
    await waitFor(
      async () => {
        const t = (await top.api<{ tree: { subtree: { ready: number } } }>("/api/v1/topology")).body;
        return t.tree.subtree.ready === 3;
      },
      { what: "the top hub to see the metro hubs' agents", timeoutMs: 30_000 },
    );
  }, 120_000);

  afterAll(async () => {
    for (const a of agents.reverse()) await a[Symbol.asyncDispose]();
    for (const h of hubs.reverse()) await h[Symbol.asyncDispose]();
    for (const p of await pids(mark)) process.kill(-p, "SIGKILL");
    dir[Symbol.dispose]();
  });

  test("a staged rollout's body is checked, naming the field", async () => {
    const bad = await roll({ spec: spec("1", 0), hubs: ["metro-a", "nowhere"] });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain("hubs[1]");
    const par = await roll({ spec: spec("1", 0), hubs: ["metro-a"], max_parallel: 0 });
    expect(par.status).toBe(400);
    expect(JSON.stringify(par.body)).toContain("max_parallel");
    const sp = await roll({ spec: { ...spec("1", 0), replicas: -1 }, hubs: ["metro-a"] });
    expect(sp.status).toBe(400);
    expect(JSON.stringify(sp.body)).toContain("spec.replicas");
  }, 30_000);

  test("a workload created across three metro hubs: the canary hub first, then the other two together (max_parallel 2)", async () => {
    const created = await roll({
      spec: spec("1", 0),
      hubs: ["metro-a", "metro-b", "metro-c"],
      max_parallel: 2,
    });
    expect(created.status).toBe(202);
    const r = await settled("the create to roll out");
    expect(r.state).toBe("done");
    const at = (hub: string, event: string) =>
      r.history.find((h) => h.hub === hub && h.event.startsWith(event))!.at;
    const canaryHealthy = at("metro-a", "version 1 healthy");
    expect(at("metro-a", "created")).toBeLessThanOrEqual(canaryHealthy);
    // Both others sent in one step, after the canary proved healthy.
    expect(at("metro-b", "created")).toBeGreaterThanOrEqual(canaryHealthy);
    expect(at("metro-c", "created")).toBe(at("metro-b", "created"));
    expect(r.domains.map((d) => [d.hub, d.phase, d.created])).toEqual([
      ["metro-a", "healthy", true],
      ["metro-b", "healthy", true],
      ["metro-c", "healthy", true],
    ]);
    for (const h of [metroA, metroB, metroC]) expect((await workload(h)).version).toBe(1);
  }, 150_000);

  test("a good update across two of them: the canary hub first, the other once the canary runs it healthy", async () => {
    const again = await roll({ spec: spec("2", 0), hubs: ["metro-a", "metro-b"], max_parallel: 1 });
    expect(again.status).toBe(202);
    // A second rollout of the same workload while one is in progress is refused.
    const busy = await roll({ spec: spec("3", 0), hubs: ["metro-a", "metro-b"] });
    expect(busy.status).toBe(409);
    const r = await settled("the update to roll out");
    expect(r.state).toBe("done");
    const from = r.history.findLastIndex((h) => h.event.startsWith("rollout started"));
    const events = r.history.slice(from).map((h) => `${h.hub} ${h.event.split(":")[0]}`);
    // The canary is changed and healthy before the second hub is touched.
    expect(events.indexOf("metro-a version 2 healthy")).toBeGreaterThan(events.indexOf("metro-a changed"));
    expect(events.indexOf("metro-b changed")).toBeGreaterThan(events.indexOf("metro-a version 2 healthy"));
    for (const h of [metroA, metroB]) {
      const w = await workload(h);
      expect(w.version).toBe(2);
      expect(w.env.VERSION).toBe("2");
      expect(w.allocs.every((a) => a.version === 2 && a.status === "running" && a.healthy === true)).toBe(
        true,
      );
    }
  }, 150_000);

  test("a bad update (its health check fails) is reverted at the canary hub and never reaches the second", async () => {
    const beforeB = await metroB.api<{ updated: number; version: number }>("/api/v1/workloads/svc");
    const started = await roll({ spec: spec("3", 1), hubs: ["metro-a", "metro-b"] });
    expect(started.status).toBe(202);
    const r = await settled("the bad update to be reverted");
    expect(r.state).toBe("reverted");
    expect(r.reason).toContain("metro-a");
    expect(r.reason).toContain("health check");
    expect(r.domains.find((d) => d.hub === "metro-a")!.phase).toBe("reverted");
    expect(r.domains.find((d) => d.hub === "metro-b")!.phase).toBe("pending");
    // The canary runs version 2's spec again, healthy.
    await waitFor(
      async () => {
        const w = await workload(metroA);
        return (
          w.env.VERSION === "2" &&
          w.rollout_status.state !== "rolling" &&
          w.allocs.length === 1 &&
          w.allocs.every((a) => a.status === "running" && a.healthy === true)
        );
      },
      { what: "metro-a back on version 2's spec, healthy", timeoutMs: 30_000 },
    );
    // metro-b was never sent the bad version.
    const b = await metroB.api<{ updated: number; version: number; env: Record<string, string> }>(
      "/api/v1/workloads/svc",
    );
    expect(b.body.version).toBe(beforeB.body.version);
    expect(b.body.updated).toBe(beforeB.body.updated);
    expect(b.body.env.VERSION).toBe("2");
  }, 150_000);

  test("an alert opened at a metro hub shows at the top hub's GET /api/v1/alerts?state=open, saying which hub and how old", async () => {
    const a = await startAgent({
      data: join(dir.path, "metro-b-n2"),
      nodeId: "metro-b-n2",
      hub: metroB.wsUrl,
      joinToken: metroB.joinToken,
      args: ["--heartbeat-interval", "1s", "--level", "4", "--label", "region=eu"],
    });
    agents.push(a);
    await waitFor(async () => (await a.status()).connected, { what: "metro-b-n2 to connect" });
    await a.proc.kill("SIGKILL");
    interface Below {
      hub: string;
      via: string;
      rule: string;
      node: string | null;
      severity: string;
      state: string;
      open_ms: number;
      age_ms: number;
      connected: boolean;
    }
    const found = await waitFor(
      async () => {
        const r = await top.api<{ alerts: unknown[]; subtree_alerts: Below[] }>(
          "/api/v1/alerts?state=open&node=metro-b-n2",
        );
        return r.body.subtree_alerts?.find((x) => x.rule === "node-down") ? r.body : undefined;
      },
      { what: "metro-b's node-down alert at the top hub", timeoutMs: 60_000 },
    );
    // The top hub raised nothing itself about a node it does not own.
    expect(found.alerts).toEqual([]);
    const below = found.subtree_alerts.find((x) => x.rule === "node-down")!;
    expect(below).toMatchObject({
      hub: "metro-b",
      via: "metro-b",
      node: "metro-b-n2",
      state: "open",
      connected: true,
    });
    expect(below.severity).toBe("critical");
    expect(below.open_ms).toBeGreaterThanOrEqual(below.age_ms);
    expect(below.age_ms).toBeGreaterThanOrEqual(0);
    // Acknowledged alerts only: none of the subtree's is.
    const ack = await top.api<{ subtree_alerts: Below[] }>("/api/v1/alerts?state=acknowledged");
    expect(ack.body.subtree_alerts.filter((x) => x.node === "metro-b-n2")).toEqual([]);
  }, 120_000);
});

// Hubs in a tree, end to end: cloud → regional → two metro hubs, real agents at levels 4 and 5, a link cut by a TCP proxy.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { envelope, PROTOCOL_VERSION } from "../../shared/protocol/index.ts";
import { reconcileEntry } from "../support/federation.ts";
import { loop, pids } from "../support/marked-procs.ts";
import { type AgentHandle, type HubHandle, startAgent, startHub, tempDir } from "../support/processes.ts";
import { connectSecure } from "../support/secure-client.ts";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.ts";
import { waitFor } from "../support/wait.ts";

interface Counts {
  total: number;
  ready: number;
  suspect: number;
  down: number;
  draining: number;
}
interface TreeJson {
  id: string;
  level: number;
  status: string;
  source: string;
  last_heard: number;
  age_ms: number;
  nodes: Counts;
  subtree: Counts;
  refused?: Record<string, number>;
  children: TreeJson[];
}
interface TopologyJson {
  hub: string;
  at: number;
  age_ms: number;
  tree: TreeJson;
  changes: { node: string; hub: string; from: string | null; to: string | null; via: string }[];
}

const HUB_ARGS = [
  "--heartbeat-interval",
  "1s",
  "--suspect-after",
  "3s",
  "--disconnect-after",
  "1s",
  "--down-after",
  "8s",
  "--restart-grace",
  "1s",
];
const AGENT_ARGS = ["--heartbeat-interval", "1s", "--batch-interval", "1s"];

/** The hub with this id anywhere in a tree. */
function find(t: TreeJson, id: string): TreeJson | undefined {
  if (t.id === id) return t;
  for (const c of t.children) {
    const f = find(c, id);
    if (f) return f;
  }
  return undefined;
}

async function topology(hub: HubHandle): Promise<TopologyJson> {
  const r = await hub.api<TopologyJson>("/api/v1/topology");
  expect(r.status).toBe(200);
  return r.body;
}

describe("federation: hubs in a tree", () => {
  const dir = tempDir("novacron-fed-");
  let cloud: HubHandle;
  let regional: HubHandle;
  let metroA: HubHandle;
  let metroB: HubHandle;
  let proxy: TcpProxy;
  const agents: AgentHandle[] = [];
  const hubs: HubHandle[] = [];

  const agent = async (hub: HubHandle, id: string, level: number, site: string, region = "eu") => {
    const a = await startAgent({
      data: join(dir.path, id),
      nodeId: id,
      hub: hub.wsUrl,
      joinToken: hub.joinToken,
      args: [
        ...AGENT_ARGS,
        "--level",
        String(level),
        "--label",
        `region=${region}`,
        "--label",
        `site=${site}`,
      ],
    });
    agents.push(a);
    await waitFor(async () => (await a.status()).connected, { what: `${id} to connect` });
    return a;
  };

  beforeAll(async () => {
    cloud = await startHub({ data: join(dir.path, "cloud"), args: [...HUB_ARGS, "--hub-id", "cloud"] });
    hubs.push(cloud);
    regional = await startHub({
      data: join(dir.path, "regional"),
      args: [
        ...HUB_ARGS,
        "--hub-id",
        "regional",
        "--level",
        "2",
        "--parent",
        cloud.wsUrl,
        "--parent-join-token",
        cloud.joinToken,
      ],
    });
    hubs.push(regional);
    proxy = startTcpProxy(regional.port);
    metroA = await startHub({
      data: join(dir.path, "metro-a"),
      args: [
        ...HUB_ARGS,
        "--hub-id",
        "metro-a",
        "--level",
        "3",
        "--parent",
        `ws://127.0.0.1:${proxy.port}`,
        "--parent-join-token",
        regional.joinToken,
      ],
    });
    hubs.push(metroA);
    metroB = await startHub({
      data: join(dir.path, "metro-b"),
      args: [
        ...HUB_ARGS,
        "--hub-id",
        "metro-b",
        "--level",
        "3",
        "--parent",
        regional.wsUrl,
        "--parent-join-token",
        regional.joinToken,
      ],
    });
    hubs.push(metroB);
    await agent(metroA, "a4", 4, "s1");
    await agent(metroA, "a4b", 4, "s1");
    await agent(metroA, "a5", 5, "s1");
    await agent(metroB, "b4", 4, "s2", "us");
    await waitFor(
      async () => {
        const t = (await topology(cloud)).tree;
        return find(t, "metro-a")?.subtree.ready === 3 && find(t, "metro-b")?.subtree.ready === 1;
      },
      { what: "the cloud hub to see both metro hubs' agents", timeoutMs: 30_000 },
    );
  }, 120_000);

  afterAll(async () => {
    for (const a of agents.reverse()) await a[Symbol.asyncDispose]();
    for (const h of hubs.reverse()) await h[Symbol.asyncDispose]();
    proxy?.[Symbol.dispose]();
    dir[Symbol.dispose]();
  });

  test("the regional hub links to the cloud hub as a node of kind hub, admitted by the cloud's join token", async () => {
    const nodes = (await cloud.api<{ nodes: { id: string; level: number }[] }>("/api/v1/nodes")).body.nodes;
    expect(nodes.map((n) => n.id)).toEqual(["regional"]);
    const node = await cloud.api<{ id: string; kind: string; level: number }>("/api/v1/nodes/regional");
    expect(node.body).toMatchObject({ id: "regional", kind: "hub", level: 2 });
    const t = await topology(cloud);
    expect(t.hub).toBe("cloud");
    expect(t.tree.status).toBe("self");
    const reg = find(t.tree, "regional")!;
    expect(reg.status).toBe("connected");
    expect(reg.source).toBe("regional");
    expect(find(t.tree, "metro-a")!.source).toBe("regional");
    expect(find(reg, "metro-a")!.level).toBe(3);
    expect(t.tree.subtree.total).toBe(4);
  }, 60_000);

  test("an agent joining and an agent killed at the bottom show in the cloud hub's topology", async () => {
    const a = await agent(metroB, "b5", 5, "s2");
    await waitFor(
      async () => {
        const t = await topology(cloud);
        return (
          find(t.tree, "metro-b")?.subtree.ready === 2 &&
          t.changes.some((c) => c.node === "b5" && c.from === null && c.to === "ready" && c.hub === "metro-b")
        );
      },
      { what: "b5's join at the cloud hub" },
    );
    await a.proc.kill("SIGKILL");
    await waitFor(
      async () => {
        const t = await topology(cloud);
        const b = find(t.tree, "metro-b")!;
        return (
          b.subtree.ready === 1 &&
          t.changes.some(
            (c) => c.node === "b5" && c.from === "ready" && c.to !== "ready" && c.via === "regional",
          )
        );
      },
      { what: "b5's loss at the cloud hub" },
    );
  }, 60_000);

  test("a query at the cloud hub for a node two levels down returns the same series as asking the node's own hub", async () => {
    await waitFor(
      async () => {
        const s = await metroA.api<{ series: string[] }>("/api/v1/nodes/a4/series");
        return s.body.series?.includes("cpu.util");
      },
      { what: "a4's series at metro-a" },
    );
    const shown = await cloud.api<{ id: string; hub: string; via: string[]; age_ms: number }>(
      "/api/v1/nodes/a4",
    );
    expect(shown.status).toBe(200);
    expect(shown.body).toMatchObject({ id: "a4", hub: "metro-a", via: ["regional", "metro-a"] });
    expect(typeof shown.body.age_ms).toBe("number");
    const names = await cloud.api<{ series: string[] }>("/api/v1/nodes/a4/series");
    expect(names.body.series).toContain("cpu.util");
    // A window that has closed at the node's own hub: both answers read the same stored points.
    const q = await waitFor(
      async () => {
        const to = Date.now();
        const path = `/api/v1/nodes/a4/metrics?series=cpu.util&from=${to - 60_000}&to=${to}`;
        return (await metroA.api<{ points: unknown[] }>(path)).body.points.length >= 2 ? path : undefined;
      },
      { what: "a4's points at metro-a" },
    );
    const own = await metroA.api<{ series: string; points: [number, number][] }>(q);
    const top = await cloud.api<{ series: string; points: [number, number][]; hub: string }>(q);
    expect(top.status).toBe(200);
    expect(own.body.points.length).toBeGreaterThanOrEqual(2);
    expect(top.body.points).toEqual(own.body.points);
    expect(top.body.hub).toBe("metro-a");
    // A node nobody holds is still a 404, not a forwarded guess.
    expect((await cloud.api("/api/v1/nodes/nowhere/series")).status).toBe(404);
  }, 60_000);

  test("a hostile child hub's summaries are refused and counted, and the rest of the tree is unaffected", async () => {
    await using evil = await connectSecure(`${regional.wsUrl}/v1/agent`, {
      nodeId: "evil",
      joinToken: regional.joinToken,
    });
    const hello = {
      node_id: "evil",
      level: 3,
      labels: {},
      capabilities: [],
      resources: {},
      version: "0",
      boot_id: "x",
      last_acked: 0,
      kind: "hub" as const,
    };
    evil.send(envelope("hello", "evil", hello, { ts: Date.now() }));
    await waitFor(() => evil.received.some((m) => m.t === "welcome"), { what: "the evil hub's welcome" });
    const head = { id: "evil", level: 3, connected: true, age_ms: 0 };
    // Claims a node of its sibling metro-a, and metro-b as a hub of its own.
    evil.send(
      envelope(
        "summary",
        "evil",
        { rev: 1, hubs: [head], groups: [], workloads: [], nodes: 2, roster: ["a4", "e1"] },
        { ts: Date.now() },
      ),
    );
    evil.send(
      envelope(
        "summary",
        "evil",
        {
          rev: 2,
          hubs: [head, { id: "metro-b", parent: "evil", level: 3, connected: true, age_ms: 0 }],
          groups: [],
          workloads: [],
          nodes: 0,
        },
        { ts: Date.now() },
      ),
    );
    // A roster that is not zstd at all, and one that inflates far past any real roster (a bomb).
    const bomb = new Uint8Array(Bun.zstdCompressSync(new Uint8Array(64 << 20).fill(97)));
    for (const [rev, roster_z] of [
      [3, new Uint8Array([1, 2, 3, 4, 5, 6])],
      [4, bomb],
    ] as const)
      evil.send(
        envelope(
          "summary",
          "evil",
          { rev, hubs: [head], groups: [], workloads: [], nodes: 0, roster_z },
          { ts: Date.now() },
        ),
      );
    // A flood of changes: 20 batches of 1,000 at once.
    const change = (i: number) => ({
      node: `e${i}`,
      hub: "evil",
      level: 4,
      region: "eu",
      site: "x",
      from: null,
      to: "ready" as const,
      at: Date.now(),
    });
    for (let b = 0; b < 20; b++) {
      const changes = Array.from({ length: 1000 }, (_, i) => change(b * 1000 + i));
      evil.send(envelope("topology", "evil", { rev: 5 + b, changes }, { ts: Date.now() }));
    }
    // Malformed: a summary that breaks the schema (a count that is negative, a hub list that is not one).
    evil.send({
      v: PROTOCOL_VERSION,
      t: "summary",
      s: "evil",
      ts: Date.now(),
      b: { rev: -1, hubs: "all" },
    } as never);
    // Alerts: one said to be a sibling's refuses the summary; as many as a summary may carry, its own, are
    // taken (bounded); one more than that breaks the schema.
    const alert = (hub: string, id: number) => ({
      hub,
      id,
      rule: "node-down",
      node: null,
      severity: "critical",
      state: "open" as const,
      message: "m".repeat(256),
      open_ms: 5,
    });
    const withAlerts = (rev: number, alerts: ReturnType<typeof alert>[]) =>
      envelope(
        "summary",
        "evil",
        { rev, hubs: [head], groups: [], workloads: [], nodes: 0, alerts },
        { ts: Date.now() },
      );
    evil.send(withAlerts(100, [alert("metro-a", 1)]));
    evil.send(
      withAlerts(
        101,
        Array.from({ length: 200 }, (_, i) => alert("evil", i + 1)),
      ),
    );
    evil.send(
      withAlerts(
        102,
        Array.from({ length: 201 }, (_, i) => alert("evil", i + 1)),
      ),
    );
    const evilAlerts = await waitFor(
      async () => {
        const r = await regional.api<{ subtree_alerts: { hub: string; via: string }[] }>(
          "/api/v1/alerts?state=open",
        );
        const mine = r.body.subtree_alerts.filter((a) => a.via === "evil");
        return mine.length > 0 ? mine : undefined;
      },
      { what: "the evil hub's own alerts at the regional hub" },
    );
    expect(evilAlerts.length).toBe(200);
    expect(evilAlerts.every((a) => a.hub === "evil")).toBe(true);
    const refused = await waitFor(
      async () => {
        const evilTree = find((await topology(regional)).tree, "evil");
        const r = evilTree?.refused ?? {};
        return r.claim_conflict && r.rate_limited && r.bad_summary && r.unknown_hub ? r : undefined;
      },
      { what: "the evil hub's refusals counted at the regional hub" },
    );
    expect(refused.claim_conflict).toBeGreaterThanOrEqual(2);
    expect(refused.rate_limited).toBeGreaterThan(0);
    expect(refused.bad_summary).toBe(2);
    await waitFor(() => evil.received.some((m) => m.t === "error" && m.b.code === "bad_body"), {
      what: "the malformed summary answered with an error",
    });
    const metrics = await (await fetch(`${regional.url}/metrics`)).text();
    expect(metrics).toMatch(/novacron_hub_federation_refused_total\{reason="claim_conflict"\} [1-9]/);
    expect(metrics).toMatch(/novacron_hub_federation_refused_total\{reason="rate_limited"\} [1-9]/);
    expect(metrics).toMatch(/novacron_hub_frames_rejected_total\{reason="bad_body"\} [1-9]/);
    // The siblings keep what is theirs: a4 is still answered by metro-a, metro-b still hangs below regional.
    const a4 = await regional.api<{ hub: string }>("/api/v1/nodes/a4");
    expect(a4.body.hub).toBe("metro-a");
    const t = (await topology(regional)).tree;
    expect(find(t, "metro-b")!.source).toBe("metro-b");
    expect(find(t, "metro-a")!.subtree.total).toBeGreaterThanOrEqual(2);
    expect(find(t, "evil")!.children).toEqual([]);
    // An agent may not speak for a subtree at all.
    const agentSession = agents.find((a) => a.nodeId === "a4")!;
    expect((await agentSession.status()).connected).toBe(true);
  }, 60_000);

  test("a workload submitted at the cloud hub lands on level-4 nodes of the right metro hub, placed by that hub, both explanations read from the top", async () => {
    const mark = `novacron-fed-two-level-${process.pid}-${Math.floor(Math.random() * 1e9)}`;
    const body = {
      name: "two-level",
      driver: "exec",
      command: "/bin/sh",
      args: loop(mark),
      replicas: 3,
      placement: { levels: [4, 4], regions: ["eu"] },
    };
    type Plan = { chosen?: { hub: string; route: string[] }; filtered: { hub: string; filter: string }[] };
    const plan = await waitFor(
      async () => {
        const p = await cloud.api<Plan>("/api/v1/topology/plan", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
        });
        return p.body.chosen ? p : undefined;
      },
      { what: "the cloud hub to find a subtree for the workload" },
    );
    expect(plan.body.chosen).toMatchObject({ hub: "metro-a", route: ["regional", "metro-a"] });
    expect(plan.body.filtered).toContainEqual(expect.objectContaining({ hub: "metro-b", filter: "region" }));
    const r = await cloud.api<{ hub: string; placed: { name: string } }>("/api/v1/topology/workloads", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ hub: "metro-a", placed: { name: "two-level", hub: "metro-a" } });
    type Placed = {
      hub: string;
      explanation: { chosen: { hub: string; score: number; parts: Record<string, number> } };
      placed: { allocs: { node: string; status: string }[]; placement_explanation: unknown };
    };
    const seen = await waitFor(
      async () => {
        const w = await cloud.api<Placed>("/api/v1/topology/workloads/two-level");
        return w.body.placed?.allocs.filter((a) => a.status === "running").length === 3 ? w.body : undefined;
      },
      { what: "three copies running below metro-a, seen from the cloud", timeoutMs: 45_000 },
    );
    // The parent chose the subtree; metro-a's own engine chose the nodes: level 4, region eu.
    for (const a of seen.placed.allocs) expect(["a4", "a4b"]).toContain(a.node);
    expect(seen.explanation.chosen.hub).toBe("metro-a");
    expect(seen.explanation.chosen.score).toBeGreaterThan(0);
    expect(seen.placed.placement_explanation).toBeTruthy();
    expect((await metroA.api<{ allocs: unknown[] }>("/api/v1/workloads/two-level")).body.allocs.length).toBe(
      3,
    );
    // The cloud and regional hubs hold the intent, not copies: nothing of it runs or is stored as theirs.
    expect((await cloud.api<{ workloads: unknown[] }>("/api/v1/workloads")).body.workloads).toEqual([]);
    expect((await regional.api<{ workloads: unknown[] }>("/api/v1/workloads")).body.workloads).toEqual([]);
    // A second submission of the same name is refused.
    const again = await cloud.api("/api/v1/topology/workloads", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    expect(again.status).toBe(409);
    // Local operations at the holding hub stand; the top shows the drift from its intent.
    expect((await metroA.api("/api/v1/workloads/two-level", { method: "DELETE" })).status).toBeLessThan(300);
    const drifted = await cloud.api<{ drift?: string; hub: string }>("/api/v1/topology/workloads/two-level");
    expect(drifted.body).toMatchObject({ hub: "metro-a", drift: "removed at the holding hub" });
    await waitFor(async () => (await pids(mark)).length === 0, {
      what: "the copies to stop",
      timeoutMs: 30_000,
    });
  }, 90_000);

  test("the regional-metro link cut: metro-a fails over on its own and takes a local drain, the top shows it disconnected, then converges and reports what won", async () => {
    const mark = `novacron-fed-${process.pid}-${Math.floor(Math.random() * 1e9)}`;
    const post = await metroA.api("/api/v1/workloads", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        name: "local-svc",
        driver: "exec",
        command: "/bin/sh",
        args: loop(mark),
        disconnect: { lost_after: "2s", replace: true },
      }),
    });
    expect(post.status).toBe(201);
    type W = { allocs: { node: string; status: string; desired?: string }[] };
    const first = await waitFor(
      async () =>
        (await metroA.api<W>("/api/v1/workloads/local-svc")).body.allocs.find((a) => a.status === "running"),
      { what: "local-svc to run at metro-a", timeoutMs: 30_000 },
    );
    proxy.refuse();
    const cutAt = Date.now();
    const seen = await waitFor(
      async () => {
        const m = find((await topology(cloud)).tree, "metro-a");
        return m?.status === "disconnected" ? m : undefined;
      },
      { what: "the cloud hub to show metro-a disconnected", timeoutMs: 30_000 },
    );
    expect(seen.last_heard).toBeLessThanOrEqual(cutAt + 1000);
    expect(seen.age_ms).toBeGreaterThan(0);
    // Cut off, metro-a runs its own domain: the node running the workload is killed, metro-a moves it.
    const victim = agents.find((a) => a.nodeId === first.node)!;
    for (const p of await pids(mark)) process.kill(p, "SIGKILL");
    await victim.proc.kill("SIGKILL");
    const moved = await waitFor(
      async () =>
        (await metroA.api<W>("/api/v1/workloads/local-svc")).body.allocs.find(
          (a) => a.status === "running" && a.node !== first.node,
        ),
      { what: "metro-a to fail local-svc over on its own", timeoutMs: 45_000 },
    );
    expect(moved.node).not.toBe(first.node);
    // The parent does not re-place anything below a cut link: it holds no copy of it, and says so.
    const regionalWorkloads = await regional.api<{ workloads: unknown[] }>("/api/v1/workloads");
    expect(regionalWorkloads.body.workloads).toEqual([]);
    expect(find((await topology(cloud)).tree, "metro-a")!.status).toBe("disconnected");
    // An operator on site drains the third node through metro-a's own API while it is cut off.
    const third = ["a4", "a4b", "a5"].find((n) => n !== first.node && n !== moved.node)!;
    const drained = await metroA.api(`/api/v1/nodes/${third}/drain`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ max_parallel: 1 }),
    });
    expect(drained.status).toBeLessThan(300);
    // The operation taken while cut off is in metro-a's own audit log, with its actor.
    type AuditEntry = { actor: string; action: string; object: string; status: number | null };
    const audit = (await metroA.api<{ entries: AuditEntry[] }>(`/api/v1/audit?object=nodes/${third}`)).body
      .entries;
    expect(audit.find((e) => e.action.includes("/drain"))).toMatchObject({
      actor: expect.any(String),
      object: `nodes/${third}/drain`,
    });
    proxy.heal();
    await waitFor(
      async () => {
        const m = find((await topology(cloud)).tree, "metro-a");
        const own = (await topology(metroA)).tree;
        return (
          m?.status === "connected" &&
          m.nodes.ready === 1 &&
          m.nodes.draining === 1 &&
          m.nodes.total === 3 &&
          JSON.stringify(m.nodes) === JSON.stringify(own.nodes)
        );
      },
      { what: "the cloud hub's view of metro-a to converge after the heal", timeoutMs: 45_000 },
    );
    // The cloud compared its intents with metro-a once metro-a's link came back: two-level, removed there
    // by a local operation, stays removed (the holding hub's change wins) and the report says so.
    const entry = await reconcileEntry(cloud, "two-level", "metro-a");
    expect(entry).toMatchObject({
      child: "regional",
      winner: "holding hub",
      changed_there: "removed at the holding hub",
    });
    expect((await metroA.api("/api/v1/workloads/two-level")).status).toBe(404);
    // Nothing doubled: one running copy, on the node metro-a chose.
    const after = (await metroA.api<W>("/api/v1/workloads/local-svc")).body.allocs;
    expect(after.filter((x) => x.status === "running").map((x) => x.node)).toEqual([moved.node]);
    for (const p of await pids(mark)) process.kill(p, "SIGKILL");
  }, 150_000);
});

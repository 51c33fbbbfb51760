// Failover end to end: real hub and agents; nodes killed, frozen, partitioned through a TCP proxy, and the hub restarted.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { tcpConnectMs } from "../../agent/collect/probes.ts";
import { loop, pids } from "../support/marked-procs.ts";
import { freePort } from "../support/ports.ts";
import { type AgentHandle, type HubHandle, startAgent, startHub, tempDir } from "../support/processes.ts";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.ts";
import { waitFor } from "../support/wait.ts";

interface AllocJson {
  id: string;
  node: string;
  status: string;
  desired?: string;
  pid: number | null;
  restarts: number;
  message: string | null;
}
interface WorkloadJson {
  allocs: AllocJson[];
}
interface FailoverEventJson {
  kind: string;
  node: string | null;
  workload: string | null;
  change: string | null;
  reason: string;
}
interface TaskJson {
  alloc: string;
  workload: string;
  status: string;
  pid: number | null;
  restarts: number;
}

const marker = (tag: string) => `novacron-failover-${tag}-${process.pid}-${Math.floor(Math.random() * 1e9)}`;

async function post(hub: HubHandle, body: unknown) {
  return hub.api<Record<string, unknown>>("/api/v1/workloads", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

async function running(hub: HubHandle, name: string): Promise<AllocJson[]> {
  const w = (await hub.api<WorkloadJson>(`/api/v1/workloads/${name}`)).body;
  return w.allocs.filter((a) => a.status === "running");
}

async function tasksOf(agent: AgentHandle): Promise<TaskJson[]> {
  return ((await (await fetch(`${agent.apiUrl}/v1/tasks`)).json()) as { tasks: TaskJson[] }).tasks;
}

async function events(hub: HubHandle, q = ""): Promise<FailoverEventJson[]> {
  return (await hub.api<{ events: FailoverEventJson[] }>(`/api/v1/failover/events${q}`)).body.events;
}

const AGENT_ARGS = ["--heartbeat-interval", "1s", "--batch-interval", "1s", "--level", "2"];

async function agent(
  hub: HubHandle,
  dir: string,
  id: string,
  url = hub.wsUrl,
  extra: string[] = [],
): Promise<AgentHandle> {
  const a = await startAgent({
    data: join(dir, id),
    nodeId: id,
    hub: url,
    joinToken: hub.joinToken,
    args: [...AGENT_ARGS, ...extra],
  });
  await waitFor(async () => (await a.status()).connected, { what: `${id} to connect` });
  return a;
}

/** The node's agent URL through `proxy`. */
const via = (proxy: TcpProxy) => `ws://127.0.0.1:${proxy.port}`;

/** Stops a process group: the agent and every workload process carrying `mark`. */
async function killAll(a: AgentHandle, mark: string, signal: NodeJS.Signals): Promise<void> {
  for (const pid of await pids(mark)) process.kill(pid, signal);
  if (a.proc.pid) process.kill(a.proc.pid, signal);
}

describe("failover end to end", () => {
  test("an agent and its workload SIGKILLed: the workload runs on another node within the policy's times, and the hub's events say why", async () => {
    using dir = tempDir();
    await using hub = await startHub({ data: join(dir.path, "hub"), args: ["--heartbeat-interval", "1s"] });
    const a = await agent(hub, dir.path, "fa1");
    const mark = marker("killed");
    try {
      expect(
        (await post(hub, { name: "svc", driver: "exec", command: "/bin/sh", args: loop(mark) })).status,
      ).toBe(201);
      const [first] = await waitFor(
        async () => {
          const r = await running(hub, "svc");
          return r.length === 1 ? r : undefined;
        },
        { what: "the service to run on fa1" },
      );
      expect(first!.node).toBe("fa1");
      await using _b = await agent(hub, dir.path, "fb1");
      const killedAt = Date.now();
      await killAll(a, mark, "SIGKILL");
      const moved = await waitFor(async () => (await running(hub, "svc")).find((x) => x.node === "fb1"), {
        what: "the service to run on fb1",
        timeoutMs: 30_000,
      });
      const tookMs = Date.now() - killedAt;
      // Defaults for a level-2 service: suspect at the close, disconnected 2 s later, lost 5 s after the close.
      expect(tookMs).toBeLessThan(15_000);
      expect(tookMs).toBeGreaterThanOrEqual(5_000);
      expect(moved.status).toBe("running");
      expect((await pids(mark)).length).toBe(1);
      const all = (await hub.api<WorkloadJson>("/api/v1/workloads/svc")).body.allocs;
      expect(all.find((x) => x.node === "fa1")?.status).toBe("lost");
      const log = await events(hub);
      expect(
        log.find((e) => e.kind === "node" && e.node === "fa1" && e.change === "ready -> suspect")?.reason,
      ).toBe("connection closed");
      expect(
        log.find((e) => e.kind === "node" && e.node === "fa1" && e.change === "suspect -> disconnected"),
      ).toBeTruthy();
      expect(log.find((e) => e.kind === "mark_lost" && e.workload === "svc")?.reason).toMatch(
        /node fa1 disconnected for \d+(\.\d)? s \(lost_after 5 s, level 2 service\)/,
      );
      expect(log.find((e) => e.kind === "place" && e.workload === "svc")?.reason).toContain("placed on fb1");
      const nodes = (await hub.api<{ nodes: { id: string; status: string }[] }>("/api/v1/nodes")).body.nodes;
      expect(nodes.find((n) => n.id === "fa1")?.status).toBe("down");
      const metrics = await (await fetch(`${hub.url}/metrics`)).text();
      expect(metrics).toMatch(/novacron_hub_node_transitions_total\{to="disconnected"\} 1/);
      expect(metrics).toMatch(/novacron_hub_failover_actions_total\{action="mark_lost"\} 1/);
    } finally {
      for (const p of await pids(mark)) process.kill(p, "SIGKILL");
      await a[Symbol.asyncDispose]();
    }
  }, 60_000);

  test("power loss (agent and workload frozen, link black-holed, no FIN): detected by missed heartbeats and replaced within the policy's times", async () => {
    using dir = tempDir();
    await using hub = await startHub({
      data: join(dir.path, "hub"),
      args: ["--heartbeat-interval", "1s", "--suspect-after", "3s"],
    });
    using proxy = startTcpProxy(hub.port);
    const a = await agent(hub, dir.path, "pa1", via(proxy));
    const mark = marker("frozen");
    try {
      await post(hub, {
        name: "frozen",
        driver: "exec",
        command: "/bin/sh",
        args: loop(mark),
        disconnect: { lost_after: "3s" },
      });
      await waitFor(async () => (await running(hub, "frozen")).length === 1, {
        what: "the service to run on pa1",
      });
      await using _b = await agent(hub, dir.path, "pb1");
      const frozenAt = Date.now();
      proxy.blackHole();
      await killAll(a, mark, "SIGSTOP");
      const moved = await waitFor(async () => (await running(hub, "frozen")).find((x) => x.node === "pb1"), {
        what: "a replacement on pb1",
        timeoutMs: 30_000,
      });
      const tookMs = Date.now() - frozenAt;
      // suspect_after 3 s (up to 20% jitter) + heartbeat spacing, then lost_after 3 s counted from then.
      expect(tookMs).toBeGreaterThanOrEqual(3_000 + 3_000 - 1_000);
      expect(tookMs).toBeLessThan(3_600 + 1_000 + 3_000 + 4_000);
      expect(moved.status).toBe("running");
      const log = await events(hub, "?node=pa1");
      expect(log.find((e) => e.change === "ready -> suspect")?.reason).toMatch(/^no heartbeat for/);
    } finally {
      await killAll(a, mark, "SIGCONT").catch(() => {});
      for (const p of await pids(mark)) process.kill(p, "SIGKILL");
      await a[Symbol.asyncDispose]();
    }
  }, 60_000);

  test("partition longer than lost_after with replace: true, then heal: exactly the policy's copy runs for each reconcile value, and a kept original was never restarted", async () => {
    using dir = tempDir();
    await using hub = await startHub({ data: join(dir.path, "hub"), args: ["--heartbeat-interval", "1s"] });
    using proxy = startTcpProxy(hub.port);
    const a = await agent(hub, dir.path, "ra1", via(proxy));
    const choices = ["keep_original", "keep_replacement", "best_score", "longest_running"] as const;
    const marks = Object.fromEntries(choices.map((c) => [c, marker(c)])) as Record<
      (typeof choices)[number],
      string
    >;
    try {
      for (const c of choices) {
        const name = c.replace("_", "-");
        const body = {
          name,
          driver: "exec",
          command: "/bin/sh",
          args: loop(marks[c]),
          disconnect: { lost_after: "2s", replace: true, reconcile: c },
        };
        expect((await post(hub, body)).status).toBe(201);
      }
      await waitFor(async () => (await tasksOf(a)).filter((t) => t.status === "running").length === 4, {
        what: "four services on ra1",
      });
      const originals = new Map((await tasksOf(a)).map((t) => [t.workload, t]));
      await using _b = await agent(hub, dir.path, "rb1");
      proxy.refuse();
      for (const c of choices) {
        await waitFor(async () => (await running(hub, c.replace("_", "-"))).some((x) => x.node === "rb1"), {
          what: `a replacement of ${c} on rb1`,
          timeoutMs: 30_000,
        });
      }
      proxy.heal();
      await waitFor(async () => (await a.status()).connected, {
        what: "ra1 to reconnect",
        timeoutMs: 30_000,
      });
      for (const c of choices) {
        const name = c.replace("_", "-");
        // Exactly one copy, on the node the policy chose, and it stays one. The hub's view and the
        // processes are read one after the other, so a copy stopping in between can make them agree
        // for an instant on the wrong one: wait for the policy's node rather than take the first match.
        const chosen = c === "keep_replacement" ? "rb1" : c === "best_score" ? undefined : "ra1";
        const only = await waitFor(
          async () => {
            const r = await running(hub, name);
            const procs = await pids(marks[c]);
            const one = r.length === 1 && procs.length === 1 ? r[0] : undefined;
            return one && (chosen === undefined || one.node === chosen) ? one : undefined;
          },
          { what: `one copy of ${name}${chosen ? ` on ${chosen}` : ""}`, timeoutMs: 20_000 },
        );
        const original = originals.get(name)!;
        if (chosen) expect(only.node).toBe(chosen);
        if (only.node === "ra1") {
          // The original was never restarted: same process, no restarts.
          const now = (await tasksOf(a)).find((t) => t.workload === name)!;
          expect(now.pid).toBe(original.pid);
          expect(now.restarts).toBe(0);
          expect(await pids(marks[c])).toEqual([original.pid!]);
        }
      }
      await Bun.sleep(1500);
      for (const c of choices) expect((await pids(marks[c])).length).toBe(1);
      const log = await events(hub);
      expect(log.some((e) => e.kind === "stop" && e.reason.includes("reconcile keep_original"))).toBe(true);
      expect(log.some((e) => e.kind === "stop" && e.reason.includes("reconcile keep_replacement"))).toBe(
        true,
      );
    } finally {
      for (const m of Object.values(marks)) for (const p of await pids(m)) process.kill(p, "SIGKILL");
      await a[Symbol.asyncDispose]();
    }
  }, 90_000);

  test.each(["refused", "silent"] as const)(
    "stop_on_agent_after, partition %s: the cut-off agent stops its copy on time, and at no instant do two copies run (ps every 100 ms)",
    async (how) => {
      using dir = tempDir();
      await using hub = await startHub({
        data: join(dir.path, "hub"),
        args: ["--heartbeat-interval", "1s", "--suspect-after", "3s"],
      });
      using proxy = startTcpProxy(hub.port);
      const a = await agent(hub, dir.path, "sa1", via(proxy));
      const mark = marker("fenced");
      try {
        await post(hub, {
          name: "fenced",
          driver: "exec",
          command: "/bin/sh",
          args: loop(mark),
          disconnect: {
            lost_after: "4s",
            replace: true,
            reconcile: "keep_original",
            stop_on_agent_after: "2s",
          },
        });
        await waitFor(async () => (await running(hub, "fenced")).length === 1, { what: "the copy on sa1" });
        const [original] = await pids(mark);
        await using _b = await agent(hub, dir.path, "sb1");
        let most = 0;
        let stoppedAt: number | undefined;
        let sampling = true;
        const cutAt = Date.now();
        const sampler = (async () => {
          while (sampling) {
            const procs = await pids(mark);
            most = Math.max(most, procs.length);
            if (stoppedAt === undefined && !procs.includes(original!)) stoppedAt = Date.now();
            await Bun.sleep(100);
          }
        })();
        if (how === "refused") proxy.refuse();
        else proxy.blackHole();
        await waitFor(async () => (await running(hub, "fenced")).some((x) => x.node === "sb1"), {
          what: "the replacement on sb1",
          timeoutMs: 30_000,
        });
        expect(stoppedAt).toBeDefined();
        // On time: 2 s after the agent last knew its hub was there. That is its last 250 ms check
        // before the cut when the link closes, and the hub's last frame (up to one heartbeat before
        // the cut) when it goes silent; early is the safe side of fencing, late is not.
        expect(stoppedAt! - cutAt).toBeGreaterThanOrEqual(how === "refused" ? 1_650 : 900);
        expect(stoppedAt! - cutAt).toBeLessThan(4_000);
        proxy.heal();
        await waitFor(async () => (await a.status()).connected, {
          what: "sa1 to reconnect",
          timeoutMs: 30_000,
        });
        // The returned node's fenced copy is settled by the hub (a replacement runs): it stays stopped.
        await waitFor(
          async () => {
            const w = (await hub.api<WorkloadJson>("/api/v1/workloads/fenced")).body;
            return w.allocs.filter((x) => x.node === "sa1").length === 0;
          },
          { what: "the fenced copy to be settled", timeoutMs: 15_000 },
        );
        await Bun.sleep(2000);
        sampling = false;
        await sampler;
        expect(most).toBe(1);
        expect((await pids(mark)).length).toBe(1);
        expect((await running(hub, "fenced")).map((x) => x.node)).toEqual(["sb1"]);
      } finally {
        for (const p of await pids(mark)) process.kill(p, "SIGKILL");
        await a[Symbol.asyncDispose]();
      }
    },
    90_000,
  );

  test("a partition shorter than lost_after but longer than stop_on_agent_after: the fenced copy starts afresh on its node when it returns", async () => {
    using dir = tempDir();
    await using hub = await startHub({ data: join(dir.path, "hub"), args: ["--heartbeat-interval", "1s"] });
    using proxy = startTcpProxy(hub.port);
    const a = await agent(hub, dir.path, "ta1", via(proxy));
    const mark = marker("short");
    try {
      await post(hub, {
        name: "short",
        driver: "exec",
        command: "/bin/sh",
        args: loop(mark),
        disconnect: { lost_after: "60s", stop_on_agent_after: "2s" },
      });
      const [first] = await waitFor(
        async () => {
          const r = await running(hub, "short");
          return r.length === 1 ? r : undefined;
        },
        { what: "the copy on ta1" },
      );
      proxy.refuse();
      await waitFor(async () => (await pids(mark)).length === 0, {
        what: "the copy fenced",
        timeoutMs: 10_000,
      });
      proxy.heal();
      const fresh = await waitFor(
        async () => {
          const r = await running(hub, "short");
          return r.length === 1 && r[0]!.id !== first!.id ? r[0] : undefined;
        },
        { what: "a fresh copy on ta1", timeoutMs: 30_000 },
      );
      expect(fresh.node).toBe("ta1");
      expect(await pids(mark)).toHaveLength(1);
      const log = await events(hub, "?workload=short");
      expect(log.map((e) => e.kind)).toContain("fenced");
      expect(log.find((e) => e.kind === "restart")?.reason).toContain("returned stopped");
    } finally {
      for (const p of await pids(mark)) process.kill(p, "SIGKILL");
      await a[Symbol.asyncDispose]();
    }
  }, 60_000);

  test("a partition where a site peer still reaches the node: disconnected with witness evidence, and its copies keep running where they are", async () => {
    using dir = tempDir();
    await using hub = await startHub({ data: join(dir.path, "hub"), args: ["--heartbeat-interval", "1s"] });
    using proxy = startTcpProxy(hub.port);
    // The node's probe port: a service on it answers TCP, and its `witness` label names it.
    const port = freePort();
    const a = await agent(hub, dir.path, "wa1", via(proxy), [
      "--label",
      "site=s1",
      "--label",
      `witness=127.0.0.1:${port}`,
    ]);
    const marks = { probe: marker("probe"), svc: marker("svc") };
    try {
      await post(hub, {
        name: "camera",
        driver: "exec",
        command: "python3",
        args: [
          "-c",
          `import socket,time; s=socket.socket(); s.bind(("127.0.0.1",${port})); s.listen(); time.sleep(600) # ${marks.probe}`,
        ],
        disconnect: { replace: false, lost_after: "2s" },
      });
      await post(hub, { name: "svc", driver: "exec", command: "/bin/sh", args: loop(marks.svc) });
      await waitFor(
        async () => (await running(hub, "camera")).length === 1 && (await running(hub, "svc")).length === 1,
        {
          what: "both on wa1",
        },
      );
      // Each copy is one process, the one the agent started: a forking shell can show a second pid
      // with the same command line for an instant, so the snapshot waits for the settled state.
      const before = await waitFor(
        async () => {
          const tasks = await tasksOf(a);
          const pid = (w: string) => tasks.find((t) => t.workload === w && t.status === "running")?.pid;
          const snap = { probe: await pids(marks.probe), svc: await pids(marks.svc) };
          return snap.probe.length === 1 && snap.probe[0] === pid("camera") && snap.svc[0] === pid("svc")
            ? snap
            : undefined;
        },
        { what: "one process per copy, as the agent reports them" },
      );
      // The pid exists before python has bound its socket: a witness asked in between finds nothing
      // listening, and the first report would rightly say so.
      await waitFor(async () => (await tcpConnectMs(`127.0.0.1:${port}`, 500)) !== undefined, {
        what: "the probe port to accept connections",
      });
      await using _b = await agent(hub, dir.path, "wb1", hub.wsUrl, ["--label", "site=s1"]);
      proxy.refuse();
      const witness = await waitFor(
        async () => (await events(hub, "?node=wa1")).find((e) => e.kind === "witness"),
        { what: "the witnesses' report", timeoutMs: 15_000 },
      );
      expect(witness.reason).toBe("1 of 1 site peers reach it");
      const liveness = await waitFor(
        async () => {
          const n = (
            await hub.api<{ nodes: { id: string; health: string; evidence: string[] }[] }>(
              "/api/v1/failover/nodes",
            )
          ).body.nodes.find((x) => x.id === "wa1");
          return n?.health === "disconnected" ? n : undefined;
        },
        { what: "wa1 disconnected" },
      );
      expect(liveness.evidence).toContain("1 of 1 site peers reach it");
      // Well past lost_after (2 s) and the default 5 s: nothing was stopped, moved or duplicated.
      await Bun.sleep(8000);
      expect(await pids(marks.probe)).toEqual(before.probe);
      expect((await pids(marks.svc))[0]).toBe(before.svc[0]!);
      expect((await tasksOf(a)).map((t) => t.restarts)).toEqual([0, 0]);
      const w = (await hub.api<WorkloadJson>("/api/v1/workloads/svc")).body;
      expect(w.allocs.map((x) => x.node)).toEqual(["wa1"]);
      expect((await events(hub)).filter((e) => e.kind === "mark_lost" || e.kind === "place")).toEqual([]);
    } finally {
      for (const m of Object.values(marks)) for (const p of await pids(m)) process.kill(p, "SIGKILL");
      await a[Symbol.asyncDispose]();
    }
  }, 60_000);

  test("hub SIGKILLed and restarted: no workload is stopped, restarted or duplicated anywhere", async () => {
    using dir = tempDir();
    await using hub = await startHub({
      data: join(dir.path, "hub"),
      args: ["--heartbeat-interval", "1s", "--restart-grace", "3s"],
    });
    const marks = [marker("hr-placed"), marker("hr-pinned")];
    await using a = await agent(hub, dir.path, "ha1");
    await using b = await agent(hub, dir.path, "hb1");
    try {
      await post(hub, {
        name: "placed",
        driver: "exec",
        command: "/bin/sh",
        args: loop(marks[0]!),
        replicas: 2,
      });
      await post(hub, {
        name: "pinned",
        driver: "exec",
        command: "/bin/sh",
        args: loop(marks[1]!),
        nodes: ["ha1"],
      });
      await waitFor(
        async () =>
          (await running(hub, "placed")).length === 2 && (await running(hub, "pinned")).length === 1,
        {
          what: "three copies running",
        },
      );
      const before = [...(await tasksOf(a)), ...(await tasksOf(b))].map((t) => `${t.alloc}:${t.pid}`).sort();
      const pidsBefore = [...(await pids(marks[0]!)), ...(await pids(marks[1]!))].sort();
      await hub.restart();
      await waitFor(async () => (await a.status()).connected && (await b.status()).connected, {
        what: "both agents back",
      });
      // Past the restart grace and every policy time: nothing may have moved.
      await Bun.sleep(7000);
      const after = [...(await tasksOf(a)), ...(await tasksOf(b))].map((t) => `${t.alloc}:${t.pid}`).sort();
      expect(after).toEqual(before);
      expect([...(await pids(marks[0]!)), ...(await pids(marks[1]!))].sort()).toEqual(pidsBefore);
      for (const t of [...(await tasksOf(a)), ...(await tasksOf(b))]) expect(t.restarts).toBe(0);
      const w = (await hub.api<WorkloadJson>("/api/v1/workloads/placed")).body;
      expect(w.allocs.filter((x) => x.status === "running")).toHaveLength(2);
      expect(w.allocs).toHaveLength(2);
      expect((await events(hub)).filter((e) => e.kind !== "node")).toEqual([]);
    } finally {
      for (const m of marks) for (const p of await pids(m)) process.kill(p, "SIGKILL");
    }
  }, 60_000);
});

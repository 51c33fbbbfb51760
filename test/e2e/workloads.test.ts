// End to end: a real hub assigns workloads to real agents, which run real child processes and report back.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { loop, pids } from "../support/marked-procs.ts";
import { type AgentHandle, type HubHandle, startAgent, startHub, tempDir } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";

interface AllocJson {
  id: string;
  node: string;
  status: string;
  generation: number;
  version: number;
  restarts: number;
  pid: number | null;
  message: string | null;
  exit_code: number | null;
  output_tail: string | null;
}
interface WorkloadJson {
  version: number;
  rollout_status: { state: string; message?: string };
  allocs: AllocJson[];
}
interface TaskJson {
  alloc: string;
  workload: string;
  status: string;
  pid: number | null;
  restarts: number;
}

/** A unique marker in a task's command line, so the test can count its processes on this machine. */
const marker = (tag: string) => `novacron-e2e-${tag}-${process.pid}-${Math.floor(Math.random() * 1e9)}`;

/** Pids of processes whose command line contains `mark` (read from /proc, like pgrep -f). */

async function tasksOf(agent: AgentHandle): Promise<TaskJson[]> {
  return ((await (await fetch(`${agent.apiUrl}/v1/tasks`)).json()) as { tasks: TaskJson[] }).tasks;
}

async function workload(hub: HubHandle, name: string): Promise<WorkloadJson> {
  return (await hub.api<WorkloadJson>(`/api/v1/workloads/${name}`)).body;
}

async function post(hub: HubHandle, body: unknown, method = "POST", path = "/api/v1/workloads") {
  return hub.api<Record<string, unknown>>(path, {
    method,
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

async function agents(hub: HubHandle, dir: string, ids: string[]): Promise<AgentHandle[]> {
  const out: AgentHandle[] = [];
  for (const id of ids) {
    out.push(
      await startAgent({
        data: join(dir, id),
        nodeId: id,
        hub: hub.wsUrl,
        joinToken: hub.joinToken,
        args: ["--heartbeat-interval", "1s", "--batch-interval", "1s"],
      }),
    );
  }
  return out;
}

describe("workloads end to end", () => {
  test("3 replicas pinned to 3 agents run; a killed process is restarted; deleting the workload stops it everywhere", async () => {
    using dir = tempDir();
    await using hub = await startHub({ data: join(dir.path, "hub") });
    const nodes = await agents(hub, dir.path, ["w1", "w2", "w3"]);
    try {
      const mark = marker("replicas");
      const created = await post(hub, {
        name: "web",
        driver: "exec",
        command: "/bin/sh",
        args: loop(mark),
        restart: "always",
        backoff: { initial_ms: 100, max_ms: 1000 },
        nodes: ["w1", "w2", "w3"],
      });
      expect(created.status).toBe(201);
      await waitFor(async () => (await workload(hub, "web")).allocs.every((a) => a.status === "running"), {
        what: "three running replicas",
      });
      expect(await pids(mark)).toHaveLength(3);
      const [first] = await tasksOf(nodes[0]!);
      // Output is kept in a ring on the node, readable locally and through the hub.
      const localLogs = `${nodes[0]!.apiUrl}/v1/tasks/${first!.alloc}/logs?lines=2`;
      await waitFor(async () => (await (await fetch(localLogs)).text()).includes(mark), {
        what: "the task's output in the local API",
      });
      const viaHub = await hub.api<{ logs: string }>(
        `/api/v1/workloads/web/allocs/${first!.alloc}/logs?lines=2`,
      );
      expect(viaHub.status).toBe(200);
      expect(viaHub.body.logs).toContain(mark);
      expect((await fetch(`${nodes[0]!.apiUrl}/v1/tasks/nope/logs`)).status).toBe(404);
      process.kill(first!.pid!, "SIGKILL");
      const restarted = await waitFor(
        async () => {
          const t = (await tasksOf(nodes[0]!))[0];
          return t && t.restarts >= 1 && t.status === "running" && t.pid !== first!.pid ? t : undefined;
        },
        { what: "the killed replica to be restarted" },
      );
      expect(restarted.pid).not.toBe(first!.pid);
      await waitFor(
        async () => (await workload(hub, "web")).allocs.find((a) => a.node === "w1")?.restarts === 1,
        {
          what: "the hub to see the restart",
        },
      );
      expect(await pids(mark)).toHaveLength(3);
      expect((await hub.api(`/api/v1/workloads/web`, { method: "DELETE" })).status).toBe(200);
      await waitFor(async () => (await pids(mark)).length === 0, { what: "every replica to stop" });
      for (const n of nodes) expect(await tasksOf(n)).toEqual([]);
    } finally {
      for (const n of nodes) await n[Symbol.asyncDispose]();
    }
  }, 60_000);

  test("a job's exit code and output reach the hub; a job queued while its node is offline runs and reports once after it connects", async () => {
    using dir = tempDir();
    await using hub = await startHub({ data: join(dir.path, "hub") });
    const [online] = await agents(hub, dir.path, ["j1"]);
    try {
      await post(hub, {
        name: "check",
        driver: "job",
        command: "/bin/sh",
        args: ["-c", "echo out; echo err >&2; exit 7"],
        nodes: ["j1"],
      });
      const done = await waitFor(
        async () => {
          const a = (await workload(hub, "check")).allocs[0];
          return a?.status === "failed" && a.exit_code !== null ? a : undefined;
        },
        { what: "the job result" },
      );
      expect(done.exit_code).toBe(7);
      expect(done.output_tail).toContain("out");
      expect(done.output_tail).toContain("err");
      // Offline node: the job is assigned before the agent exists.
      const mark = marker("queued");
      await post(hub, {
        name: "queued",
        driver: "job",
        command: "/bin/sh",
        args: ["-c", `echo ${mark}`],
        nodes: ["j2"],
      });
      expect((await workload(hub, "queued")).allocs[0]?.status).toBe("pending");
      const [late] = await agents(hub, dir.path, ["j2"]);
      try {
        const a = await waitFor(
          async () => {
            const x = (await workload(hub, "queued")).allocs[0];
            return x?.status === "complete" ? x : undefined;
          },
          { what: "the queued job to run after its node joined" },
        );
        expect(a.exit_code).toBe(0);
        expect(a.output_tail).toContain(mark);
        // Reported once: restarting the agent neither re-runs it nor reports it again.
        await late!.restart();
        await waitFor(async () => (await late!.status()).connected, { what: "reconnect" });
        const node = (await hub.api<{ ingest: { duplicates: number } }>("/api/v1/nodes/j2")).body;
        expect((await workload(hub, "queued")).allocs[0]?.status).toBe("complete");
        expect(node.ingest.duplicates).toBe(0);
      } finally {
        await late![Symbol.asyncDispose]();
      }
    } finally {
      await online![Symbol.asyncDispose]();
    }
  }, 60_000);

  test("agent killed with SIGKILL while running workloads, restarted with no hub: the same workloads run again, none twice", async () => {
    using dir = tempDir();
    const hub = await startHub({ data: join(dir.path, "hub") });
    const [agent] = await agents(hub, dir.path, ["k1"]);
    const marks = [marker("adopt-a"), marker("adopt-b")];
    try {
      for (const [i, mark] of marks.entries()) {
        await post(hub, {
          name: `keep-${i}`,
          driver: "exec",
          command: "/bin/sh",
          args: loop(mark),
          nodes: ["k1"],
        });
      }
      await waitFor(async () => (await tasksOf(agent!)).filter((t) => t.status === "running").length === 2, {
        what: "two running tasks",
      });
      const before = await Promise.all(marks.map(pids));
      await hub[Symbol.asyncDispose]();
      await agent!.restart();
      const after = await waitFor(
        async () => {
          const t = await tasksOf(agent!);
          return t.length === 2 && t.every((x) => x.status === "running") ? t : undefined;
        },
        { what: "both tasks back without a hub" },
      );
      expect((await agent!.status()).connected).toBe(false);
      // Re-adopted: the very same processes, one per workload.
      const now = await Promise.all(marks.map(pids));
      expect(now).toEqual(before);
      expect(after.map((t) => t.pid).sort()).toEqual(before.flat().sort());
      // And when one of them dies with no hub around, it is started again, still only once.
      process.kill(before[0]![0]!, "SIGKILL");
      await waitFor(
        async () => (await pids(marks[0]!)).length === 1 && (await pids(marks[0]!))[0] !== before[0]![0],
        {
          what: "the adopted task to be restarted",
        },
      );
      expect(await pids(marks[1]!)).toEqual(before[1]!);
    } finally {
      for (const mark of marks) for (const p of await pids(mark)) process.kill(-p, "SIGKILL");
      await agent![Symbol.asyncDispose]();
    }
  }, 60_000);

  test("a rolling update whose new version fails its health check stops at the first replica and rolls back; a canary is promoted", async () => {
    using dir = tempDir();
    await using hub = await startHub({ data: join(dir.path, "hub") });
    const nodes = await agents(hub, dir.path, ["r1", "r2", "r3"]);
    const mark = marker("roll");
    try {
      const base = {
        name: "svc",
        driver: "exec",
        command: "/bin/sh",
        args: loop(mark),
        nodes: ["r1", "r2", "r3"],
        health: {
          type: "command",
          command: "/bin/sh",
          args: ["-c", "exit 0"],
          interval_ms: 200,
          threshold: 2,
        },
        rollout: { strategy: "rolling", min_healthy_ms: 500, deadline_ms: 20_000 },
      };
      await post(hub, base);
      await waitFor(
        async () => (await workload(hub, "svc")).allocs.filter((a) => a.status === "running").length === 3,
        {
          what: "version 1 running on three nodes",
        },
      );
      const broken = { ...base, health: { ...base.health, args: ["-c", "exit 1"] } };
      expect((await post(hub, broken, "PUT", "/api/v1/workloads/svc")).status).toBe(200);
      const rolledBack = await waitFor(
        async () => {
          const w = await workload(hub, "svc");
          return w.rollout_status.state === "rolled-back" ? w : undefined;
        },
        { what: "the rollout to roll back", timeoutMs: 30_000 },
      );
      expect(rolledBack.rollout_status.message).toContain("health check");
      expect(rolledBack.version).toBe(1);
      await waitFor(
        async () => {
          const w = await workload(hub, "svc");
          return w.allocs.length === 3 && w.allocs.every((a) => a.version === 1 && a.status === "running");
        },
        { what: "all three back on version 1" },
      );
      // Only the first replica was ever tried: the other two never stopped.
      expect((await pids(mark)).length).toBe(3);

      const canary = {
        ...base,
        args: loop(`${mark}-v2`),
        rollout: { strategy: "canary", canary: 1, min_healthy_ms: 300 },
      };
      await post(hub, canary, "PUT", "/api/v1/workloads/svc");
      await waitFor(async () => (await workload(hub, "svc")).rollout_status.state === "awaiting-promotion", {
        what: "the canary to wait for promotion",
        timeoutMs: 30_000,
      });
      expect((await workload(hub, "svc")).allocs.map((a) => a.version).sort()).toEqual([1, 1, 3]);
      expect((await hub.api("/api/v1/workloads/svc/promote", { method: "POST" })).status).toBe(200);
      await waitFor(
        async () => {
          const w = await workload(hub, "svc");
          return (
            w.rollout_status.state === "idle" &&
            w.allocs.every((a) => a.version === 3 && a.status === "running")
          );
        },
        { what: "the promoted version everywhere", timeoutMs: 30_000 },
      );
    } finally {
      for (const n of nodes) await n[Symbol.asyncDispose]();
      // The copies outlive their agents (an agent's stop leaves its workloads running): v1's and v2's.
      for (const p of await pids(mark)) {
        try {
          process.kill(-p, "SIGKILL");
        } catch {} // gone already
      }
    }
  }, 90_000);

  test("a spec for a binary that does not exist ends as failed with the error text, and the agent carries on", async () => {
    using dir = tempDir();
    await using hub = await startHub({ data: join(dir.path, "hub") });
    const [agent] = await agents(hub, dir.path, ["f1"]);
    try {
      await post(hub, {
        name: "ghost",
        driver: "exec",
        command: "/no/such/binary",
        restart: "never",
        nodes: ["f1"],
      });
      const a = await waitFor(
        async () => {
          const x = (await workload(hub, "ghost")).allocs[0];
          return x?.status === "failed" ? x : undefined;
        },
        { what: "the missing binary to fail" },
      );
      expect(a.message).toContain("/no/such/binary");
      expect((await agent!.status()).connected).toBe(true);
      expect(agent!.proc.running).toBe(true);
      const bad = await post(hub, { name: "Nope", driver: "exec", command: "x" });
      expect(bad.status).toBe(400);
      expect(JSON.stringify(bad.body)).toContain("name");
    } finally {
      await agent![Symbol.asyncDispose]();
    }
  }, 60_000);
});

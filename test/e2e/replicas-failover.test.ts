// Hub replicas when something dies with them: a node's agent together with the replica holding its
// session (failover must still happen, decided by another replica), and PostgreSQL itself.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { openPostgres } from "../../hub/store/sql/index.ts";
import { createLoop, pids } from "../support/marked-procs.ts";
import { describeOnPostgres } from "../support/postgres.ts";
import { type AgentHandle, type HubHandle, startAgent, tempDir } from "../support/processes.ts";
import { leaderOf, startReplicas } from "../support/replicas.ts";
import { waitFor } from "../support/wait.ts";
import { balanced } from "../support/accounts.ts";

interface NodeJson {
  status: string;
  ingest: { samples: number };
  counters: { produced: number; dropped: number; held: number; lost: number } | null;
}

// Level 2 (a regional site): its services are replaced 5 s after their node is lost.
const agentArgs = ["--heartbeat-interval", "1s", "--batch-interval", "1s", "--level", "2"];

describeOnPostgres("hub replicas: failures", (pg) => {
  test("a node's agent and the replica holding its session (the leader) SIGKILLed together: another replica takes the lead, finds the node silent from its stored last-heard time, declares it lost and places its workload on another node, once", async () => {
    using dir = tempDir();
    const url = await pg().newDatabase();
    const hubs = await startReplicas(dir.path, url, 2, {
      hubId: "hub-f",
      // Heartbeats every second, and the lead handed over within 3 s (--lease-ttl).
      args: [
        "--heartbeat-interval",
        "1s",
        "--suspect-after",
        "4s",
        "--down-after",
        "10s",
        "--restart-grace",
        "5s",
        "--lease-ttl",
        "3s",
      ],
    });
    const store = openPostgres(url);
    const agents: AgentHandle[] = [];
    const mark = `novacron-e2e-replica-failover-${process.pid}-${Math.floor(Math.random() * 1e9)}`;
    try {
      const lead = (await waitFor(() => leaderOf(store, hubs), { what: "a replica to lead" })).i;
      const other = hubs[1 - lead]!;
      // The victim's session is at the leader; the standby's at the other replica.
      const victim = await startAgent({
        data: join(dir.path, "victim"),
        nodeId: "victim",
        hub: hubs[lead]!.wsUrl,
        joinToken: other.joinToken,
        args: agentArgs,
      });
      agents.push(victim);
      await waitFor(async () => (await victim.status()).connected, { what: "victim connected" });
      expect(await createLoop(other, mark)).toBe(201);
      await waitFor(async () => (await pids(mark)).length === 1, { what: "the service on victim" });
      // Its logs, asked through the replica that does not hold the victim's session, come through the one that does.
      const alloc = await waitFor(() =>
        store.get<{ id: string }>("SELECT id FROM allocs WHERE workload = 'svc' AND node = 'victim'"),
      );
      const logs = await waitFor(
        async () => {
          const r = await other.api<{ node: string; logs: string }>(
            `/api/v1/workloads/svc/allocs/${alloc.id}/logs?lines=5`,
          );
          return r.status === 200 && r.body.logs.includes(mark) ? r.body : undefined;
        },
        { what: "the copy's logs through the other replica" },
      );
      expect(logs.node).toBe("victim");
      const standby = await startAgent({
        data: join(dir.path, "standby"),
        nodeId: "standby",
        hub: other.wsUrl,
        joinToken: other.joinToken,
        args: agentArgs,
      });
      agents.push(standby);
      await waitFor(
        async () => (await other.api<NodeJson>("/api/v1/nodes/standby")).body.status === "ready",
        {
          what: "standby ready",
        },
      );

      // The node, its copy and the replica holding its session, all at once.
      for (const p of await pids(mark)) process.kill(p, "SIGKILL");
      await victim.proc.kill("SIGKILL");
      await hubs[lead]!.proc.kill("SIGKILL");

      await waitFor(
        async () => {
          const l = await leaderOf(store, hubs);
          return l !== undefined && l.i !== lead ? l : undefined;
        },
        { what: "the other replica to lead", timeoutMs: 30_000 },
      );
      const lost = await waitFor(
        () =>
          store.get<{ change: string; reason: string }>(
            "SELECT change, reason FROM failover_events WHERE kind = 'node' AND node = 'victim' AND change LIKE '%-> lost'",
          ),
        { what: "victim declared lost", timeoutMs: 60_000 },
      );
      expect(lost.reason).toMatch(/silent for/);
      await waitFor(
        async () =>
          (
            await other.api<{ allocs: { node: string; status: string; desired: string }[] }>(
              "/api/v1/workloads/svc",
            )
          ).body.allocs.some((a) => a.node === "standby" && a.status === "running"),
        { what: "the service running on standby", timeoutMs: 60_000 },
      );
      expect(await pids(mark)).toHaveLength(1);
      const running = await store.all<{ node: string }>(
        "SELECT node FROM allocs WHERE workload = 'svc' AND desired = 'run' AND node != 'victim'",
      );
      expect(running).toEqual([{ node: "standby" }]);
      // The standby, whose replica lived, was never declared down.
      expect(
        await store.all(
          "SELECT change FROM failover_events WHERE node = 'standby' AND (change LIKE '%-> lost' OR change LIKE '%-> disconnected')",
        ),
      ).toEqual([]);
    } finally {
      for (const a of agents) await a[Symbol.asyncDispose]();
      for (const h of hubs) await h[Symbol.asyncDispose]();
      for (const p of await pids(mark)) process.kill(p, "SIGKILL");
      await store.close();
    }
  }, 180_000);

  test("a named-cache write through one replica reaches a node whose session another replica holds", async () => {
    using dir = tempDir();
    const url = await pg().newDatabase();
    const hubs = await startReplicas(dir.path, url, 2, { hubId: "hub-f" });
    const agents: AgentHandle[] = [];
    try {
      const caches = JSON.stringify({ prices: { strategy: "write-behind", replicate: "site" } });
      for (const [i, id] of ["writer", "reader"].entries())
        agents.push(
          await startAgent({
            data: join(dir.path, id),
            nodeId: id,
            hub: hubs[i]!.wsUrl,
            joinToken: hubs[0]!.joinToken,
            args: [...agentArgs, "--caches", caches, "--label", "site=s1"],
          }),
        );
      for (const a of agents)
        await waitFor(async () => (await a.status()).connected, { what: `${a.nodeId} connected` });
      const [writer, reader] = agents as [AgentHandle, AgentHandle];
      const put = await fetch(`${writer.apiUrl}/v1/caches/prices/k1`, { method: "PUT", body: "42" });
      expect(put.status).toBe(200);
      await waitFor(
        async () => {
          const r = await fetch(`${reader.apiUrl}/v1/caches/prices/k1`);
          return r.status === 200 && (await r.text()) === "42";
        },
        { what: "the reader, held by the other replica, to hold the writer's value" },
      );
    } finally {
      for (const a of agents) await a[Symbol.asyncDispose]();
      for (const h of hubs) await h[Symbol.asyncDispose]();
    }
  }, 120_000);

  test("PostgreSQL stopped for 30 s under two replicas and four agents: both replicas stay up and answer /readyz 503 meanwhile, ack nothing they could not store, and afterwards every node's account balances with nothing stored twice", async () => {
    using dir = tempDir();
    const url = await pg().newDatabase();
    const hubs = await startReplicas(dir.path, url, 2, { hubId: "hub-f" });
    const agents: AgentHandle[] = [];
    const ids = ["out-a", "out-b", "out-c", "out-d"];
    try {
      for (const [i, id] of ids.entries())
        agents.push(
          await startAgent({
            data: join(dir.path, id),
            nodeId: id,
            hub: [hubs[i % 2]!.wsUrl, hubs[(i + 1) % 2]!.wsUrl].join(","),
            joinToken: hubs[0]!.joinToken,
            args: agentArgs,
          }),
        );
      const node = async (id: string) => (await hubs[0]!.api<NodeJson>(`/api/v1/nodes/${id}`)).body;
      for (const id of ids)
        await waitFor(async () => (await node(id)).ingest.samples > 0, { what: `samples of ${id}` });
      const readyz = async (h: HubHandle) => (await fetch(`${h.url}/readyz`)).status;
      for (const h of hubs) expect(await readyz(h)).toBe(200);
      await pg().stop();
      const downAt = Date.now();
      for (const h of hubs)
        await waitFor(async () => (await readyz(h)) === 503, {
          what: "/readyz to answer 503",
          timeoutMs: 15_000,
        });
      while (Date.now() - downAt < 30_000) {
        for (const h of hubs) {
          expect(h.proc.running).toBe(true);
          expect((await fetch(`${h.url}/healthz`)).status).toBe(200);
        }
        await Bun.sleep(2000);
      }
      await pg().start();
      for (const h of hubs)
        await waitFor(async () => (await readyz(h)) === 200, {
          what: "/readyz 200 again",
          timeoutMs: 30_000,
        });
      // Every sample each agent produced is stored once or counted as dropped: read between two looks
      // at the agent that agree (no sample made meanwhile) with nothing left in its outbox.
      for (const agent of agents)
        await waitFor(() => balanced(agent, hubs[0]!), {
          what: `${agent.nodeId}'s account to balance after the outage`,
          timeoutMs: 90_000,
        });
      const store = openPostgres(url);
      try {
        // A batch is stored once by its key (node, seq); the node's stored count is their sum, and it is
        // what the agents' accounts were compared with.
        expect(
          await store.all(
            "SELECT n.id FROM nodes n JOIN (SELECT node, sum(samples) AS s FROM batches GROUP BY node) b ON b.node = n.id WHERE b.s != n.samples",
          ),
        ).toEqual([]);
        // Both replicas are members again, and one leads.
        await waitFor(async () => (await leaderOf(store, hubs)) !== undefined, { what: "a leader again" });
      } finally {
        await store.close();
      }
    } finally {
      for (const a of agents) await a[Symbol.asyncDispose]();
      for (const h of hubs) await h[Symbol.asyncDispose]();
    }
  }, 240_000);
});

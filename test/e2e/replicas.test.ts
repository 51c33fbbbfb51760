// Three hub replicas on one private PostgreSQL (--store postgres://...), agents spread over them with
// each one's ordered hub list: replicas SIGKILLed while the agents sample lose nothing, store nothing
// twice, make no node look down, and neither stop nor double a workload.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { openPostgres } from "../../hub/store/sql/index.ts";
import { createLoop, pids } from "../support/marked-procs.ts";
import { describeOnPostgres } from "../support/postgres.ts";
import { mosquittoBinary, startMosquitto } from "../support/mosquitto.ts";
import { type AgentHandle, type HubHandle, startAgent, tempDir } from "../support/processes.ts";
import { isReplica, leaderOf, startReplicas } from "../support/replicas.ts";
import { waitFor } from "../support/wait.ts";
import { balanced } from "../support/accounts.ts";

interface NodeJson {
  status: string;
  ingest: { samples: number; last_seq: number };
  counters: { produced: number; dropped: number; held: number; lost: number } | null;
}

const node = async (hub: HubHandle, id: string) => (await hub.api<NodeJson>(`/api/v1/nodes/${id}`)).body;

describeOnPostgres("hub replicas", (pg) => {
  test.skipIf(!mosquittoBinary())(
    "three replicas, 30 agents (15 over WebSocket with ordered hub lists, 15 through one MQTT broker) spread over them: SIGKILL one replica, then another, while they sample; every node's account balances with nothing stored twice, no node is ever declared down, and a workload created through one replica is placed once and runs once throughout",
    async () => {
      using dir = tempDir();
      const url = await pg().newDatabase();
      await using broker = await startMosquitto(dir.path);
      // Short timings, so that a node looking silent to the leader would be declared down within the run.
      const hubs = await startReplicas(dir.path, url, 3, {
        args: ["--restart-grace", "10s", "--suspect-after", "15s", "--down-after", "30s"],
        mqtt: broker.url,
      });
      const began = Date.now();
      const store = openPostgres(url);
      const agents: AgentHandle[] = [];
      const mark = `novacron-e2e-replicas-${process.pid}-${Math.floor(Math.random() * 1e9)}`;
      const ids = Array.from({ length: 30 }, (_, i) => `rep-${String(i).padStart(2, "0")}`);
      const copies: number[] = [];
      let sampling = true;
      try {
        // Over WebSocket each agent starts at its own replica and falls back through the others in
        // order; over MQTT the broker hands its first handshake message to one replica of three.
        for (const [i, id] of ids.entries()) {
          const ws = [0, 1, 2].map((k) => hubs[(i + k) % 3]!.wsUrl).join(",");
          const list = i % 2 === 0 ? ws : broker.url;
          agents.push(
            await startAgent({
              data: join(dir.path, id),
              nodeId: id,
              hub: list,
              joinToken: hubs[0]!.joinToken,
              args: ["--heartbeat-interval", "1s", "--batch-interval", "1s"],
            }),
          );
        }
        for (const id of ids)
          await waitFor(async () => (await node(hubs[0]!, id)).ingest.samples > 0, {
            what: `samples of ${id}`,
            timeoutMs: 30_000,
          });
        const held = await store.all<{ replica: string; n: number }>(
          "SELECT replica, count(*) AS n FROM node_sessions WHERE replica IS NOT NULL GROUP BY replica",
        );
        // Sessions are spread: each replica holds some, and the broker handed MQTT agents to several.
        expect(held).toHaveLength(3);
        const mqttHolders = await store.all(
          "SELECT DISTINCT s.replica FROM node_sessions s JOIN nodes n ON n.id = s.node WHERE n.transport = 'mqtt' AND s.replica IS NOT NULL",
        );
        expect(mqttHolders.length).toBeGreaterThanOrEqual(2);

        // Created through a replica that does not lead (if one leads yet): it is placed once.
        const leading = (await waitFor(() => leaderOf(store, hubs), { what: "a replica to lead" })).i;
        const via = hubs[(leading + 1) % 3]!;
        expect(await createLoop(via, mark)).toBe(201);
        await waitFor(async () => (await pids(mark)).length === 1, {
          what: "the workload's one copy to run",
          timeoutMs: 30_000,
        });
        // Sampled throughout: the copies running and the allocations wanted running.
        const sampler = (async () => {
          while (sampling) {
            copies.push((await pids(mark)).length);
            const active = await store.all(
              "SELECT id FROM allocs WHERE workload = 'svc' AND desired = 'run'",
            );
            copies.push(active.length);
            await Bun.sleep(250);
          }
        })();

        // The leader dies first, then one of the two left.
        const first = leading;
        await hubs[first]!.proc.kill("SIGKILL");
        const left = [0, 1, 2].filter((i) => i !== first);
        await waitFor(
          async () => {
            const l = await leaderOf(store, hubs);
            return l !== undefined && l.i !== first ? l : undefined;
          },
          { what: "another replica to lead", timeoutMs: 30_000 },
        );
        await Bun.sleep(5000);
        const second = left[0]!;
        await hubs[second]!.proc.kill("SIGKILL");
        const last = hubs[left[1]!]!;
        // Every agent ends at the last replica, and its samples keep arriving there.
        await waitFor(
          async () => {
            const rows = await store.all<{ replica: string | null }>(
              "SELECT DISTINCT replica FROM node_sessions WHERE node LIKE 'rep-%'",
            );
            return rows.length === 1 && isReplica(last, rows[0]!.replica);
          },
          { what: "every agent to hold its session at the last replica", timeoutMs: 60_000 },
        );
        // Long enough past the grace for a node that looked silent to be lost.
        await Bun.sleep(Math.max(3000, began + 50_000 - Date.now()));
        sampling = false;
        await sampler;

        for (const agent of agents)
          await waitFor(() => balanced(agent, last), {
            what: `${agent.nodeId}'s account to balance`,
            timeoutMs: 30_000,
          });
        // A batch is stored once by its key (node, seq); the node's stored count is their sum, and it is
        // what the agents' accounts were compared with.
        expect(
          await store.all(
            "SELECT n.id FROM nodes n JOIN (SELECT node, sum(samples) AS s FROM batches GROUP BY node) b ON b.node = n.id WHERE b.s != n.samples",
          ),
        ).toEqual([]);
        // No node was ever declared down: no liveness transition to disconnected or lost.
        const down = await store.all<{ node: string; change: string; reason: string }>(
          "SELECT node, change, reason FROM failover_events WHERE kind = 'node' AND (change LIKE '%disconnected' OR change LIKE '%lost')",
        );
        expect(down).toEqual([]);
        expect(await store.all("SELECT id, node, message FROM hub_alerts WHERE rule = 'node-down'")).toEqual(
          [],
        );

        // One copy wanted and one running at every sample: never stopped, never doubled.
        expect(copies.length).toBeGreaterThan(20);
        expect(copies.every((c) => c === 1)).toBe(true);
        expect(await store.all("SELECT id FROM allocs WHERE workload = 'svc'")).toHaveLength(1);
      } finally {
        sampling = false;
        for (const a of agents) await a[Symbol.asyncDispose]();
        for (const h of hubs) await h[Symbol.asyncDispose]();
        for (const p of await pids(mark)) process.kill(p, "SIGKILL");
        await store.close();
      }
    },
    240_000,
  );
});

// A hub whose store is a private PostgreSQL (--store postgres://...): agents join, telemetry is stored
// once through a hub SIGKILL, a placed workload runs, and the state lives in PostgreSQL, not in --data.
import { expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { openPostgres } from "../../hub/store/sql/index.ts";
import { createLoop, pids } from "../support/marked-procs.ts";
import { describeOnPostgres } from "../support/postgres.ts";
import { type AgentHandle, type HubHandle, startAgent, startHub, tempDir } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";

interface NodeJson {
  status: string;
  ingest: { samples: number; last_seq: number };
  counters: { produced: number; dropped: number; held: number; lost: number } | null;
}

const node = async (hub: HubHandle, id: string) => (await hub.api<NodeJson>(`/api/v1/nodes/${id}`)).body;

/** Agents `ids` joined to `hub` (added to `into`, for the caller to dispose), each once its samples are stored. */
async function sampling(hub: HubHandle, dir: string, ids: string[], into: AgentHandle[]): Promise<void> {
  for (const id of ids)
    into.push(
      await startAgent({
        data: join(dir, id),
        nodeId: id,
        hub: hub.wsUrl,
        joinToken: hub.joinToken,
        args: ["--heartbeat-interval", "1s", "--batch-interval", "1s"],
      }),
    );
  for (const id of ids)
    await waitFor(async () => (await node(hub, id)).ingest.samples > 0, { what: `samples of ${id}` });
}

describeOnPostgres("hub on postgres", (pg) => {
  test("a hub on PostgreSQL: two agents' samples are each stored once through a hub SIGKILL, a workload placed through the API runs once, and nothing is kept in --data's hub.db", async () => {
    using dir = tempDir();
    const url = await pg().newDatabase();
    const data = join(dir.path, "hub");
    await using hub = await startHub({ data, args: ["--store", url] });
    const agents: AgentHandle[] = [];
    const store = openPostgres(url);
    const mark = `novacron-e2e-pg-${process.pid}-${Math.floor(Math.random() * 1e9)}`;
    try {
      await sampling(hub, dir.path, ["pg-a", "pg-b"], agents);
      expect(await createLoop(hub, mark)).toBe(201);
      await waitFor(async () => (await pids(mark)).length === 1, { what: "the workload's one copy to run" });

      // The hub dies mid-stream and comes back on the same store: nothing lost, nothing twice.
      await hub.restart();
      for (const id of ["pg-a", "pg-b"])
        await waitFor(async () => (await node(hub, id)).status === "ready", {
          what: `${id} back at the restarted hub`,
          timeoutMs: 30_000,
        });
      const afterRestart = new Map<string, number>();
      for (const id of ["pg-a", "pg-b"]) afterRestart.set(id, (await node(hub, id)).ingest.samples);
      for (const id of ["pg-a", "pg-b"])
        await waitFor(
          async () => {
            const n = await node(hub, id);
            const c = n.counters;
            // Every sample the node produced is dropped (counted), stored or still held by it.
            return n.ingest.samples > afterRestart.get(id)! &&
              c !== null &&
              c.lost === 0 &&
              c.produced === c.dropped + n.ingest.samples + c.held
              ? n
              : undefined;
          },
          { what: `${id}'s account to balance after the restart`, timeoutMs: 30_000 },
        );
      const twice = await store.all(
        "SELECT node, seq, count(*) AS n FROM batches GROUP BY node, seq HAVING count(*) > 1",
      );
      expect(twice).toEqual([]);
      const stored = await store.all<{ node: string; samples: number }>(
        "SELECT node, sum(samples) AS samples FROM batches GROUP BY node ORDER BY node",
      );
      for (const s of stored) expect((await node(hub, s.node)).ingest.samples).toBe(Number(s.samples));
      // Still one copy: the restart stopped and doubled nothing.
      expect(await pids(mark)).toHaveLength(1);
      const active = await store.all("SELECT id FROM allocs WHERE workload = 'svc' AND desired = 'run'");
      expect(active).toHaveLength(1);
      // The state is in PostgreSQL: the data directory holds no hub.db.
      expect(existsSync(join(data, "hub.db"))).toBe(false);
      expect((await store.all<{ id: string }>("SELECT id FROM nodes ORDER BY id")).map((r) => r.id)).toEqual([
        "pg-a",
        "pg-b",
      ]);
    } finally {
      for (const a of agents) await a[Symbol.asyncDispose]();
      // Tasks outlive their agent by design (they are adopted again on its next start): end this one.
      for (const p of await pids(mark)) process.kill(p, "SIGKILL");
      await store.close();
    }
  }, 120_000);

  test("PostgreSQL stopped for 30 s under load: the hub stays up and says it is not ready, acks nothing it could not store, and after the store is back every sample is stored once", async () => {
    using dir = tempDir();
    const url = await pg().newDatabase();
    await using hub = await startHub({ data: join(dir.path, "hub"), args: ["--store", url] });
    const agents: AgentHandle[] = [];
    const ids = ["out-a", "out-b"];
    try {
      await sampling(hub, dir.path, ids, agents);
      const readyz = async () => (await fetch(`${hub.url}/readyz`)).status;
      expect(await readyz()).toBe(200);
      await pg().stop();
      const downAt = Date.now();
      await waitFor(async () => (await readyz()) === 503, {
        what: "/readyz to answer 503",
        timeoutMs: 15_000,
      });
      // Alive all along: the process answers, and /healthz stays 200.
      while (Date.now() - downAt < 30_000) {
        expect((await fetch(`${hub.url}/healthz`)).status).toBe(200);
        expect(await readyz()).toBe(503);
        expect(hub.proc.running).toBe(true);
        await Bun.sleep(2000);
      }
      await pg().start();
      await waitFor(async () => (await readyz()) === 200, {
        what: "/readyz to answer 200 again",
        timeoutMs: 30_000,
      });
      // What the agents held meanwhile arrives; every account balances, nothing lost, nothing twice.
      for (const id of ids)
        await waitFor(
          async () => {
            const n = await node(hub, id);
            const c = n.counters;
            return c !== null &&
              c.lost === 0 &&
              c.held < 200 &&
              c.produced === c.dropped + n.ingest.samples + c.held
              ? n
              : undefined;
          },
          { what: `${id}'s account to balance after the outage`, timeoutMs: 60_000 },
        );
      const store = openPostgres(url);
      try {
        expect(
          await store.all("SELECT node, seq FROM batches GROUP BY node, seq HAVING count(*) > 1"),
        ).toEqual([]);
      } finally {
        await store.close();
      }
    } finally {
      for (const a of agents) await a[Symbol.asyncDispose]();
    }
  }, 180_000);
});

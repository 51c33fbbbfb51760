// Topology change → visible two hub levels up: a node joining or leaving a metro hub, seen at the cloud hub.
//
//   bun bench/federation-latency.ts [--rounds 50]
//
// Three real hub processes in a chain (cloud ← regional ← metro, each linked to its parent with --parent).
// Each round, one node opens an authenticated session to the metro hub (the agent's secure transport and
// hello), then closes it. Timed: from the moment the bench sent the hello (join) or closed the socket
// (leave) to the moment the cloud hub received the change (its `received` stamp in GET /api/v1/topology;
// same machine, same clock). Printed: p50, p99 and max for joins and leaves.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { envelope } from "../shared/protocol/index.ts";
import { type HubHandle, startHub } from "../test/support/processes.ts";
import { connectSecure } from "../test/support/secure-client.ts";
import { waitFor } from "../test/support/wait.ts";
import { machineInfo, pct, printMachine, table } from "./_machine.ts";

const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: { rounds: { type: "string", default: "50" } },
});
const rounds = Number(opts.rounds);

interface Change {
  node: string;
  from: string | null;
  to: string | null;
  received: number;
}

const root = mkdtempSync(join(tmpdir(), "novacron-fed-bench-"));
const hubs: HubHandle[] = [];
try {
  printMachine(machineInfo());
  const quick = ["--heartbeat-interval", "1s"];
  const cloud = await startHub({ data: join(root, "cloud"), args: [...quick, "--hub-id", "cloud"] });
  hubs.push(cloud);
  const regional = await startHub({
    data: join(root, "regional"),
    args: [
      ...quick,
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
  const metro = await startHub({
    data: join(root, "metro"),
    args: [
      ...quick,
      "--hub-id",
      "metro",
      "--level",
      "3",
      "--parent",
      regional.wsUrl,
      "--parent-join-token",
      regional.joinToken,
    ],
  });
  hubs.push(metro);
  const tree = async () =>
    (await cloud.api<{ tree: { subtree: { total: number } }; changes: Change[] }>("/api/v1/topology")).body;
  await waitFor(
    async () => (await cloud.api<{ nodes: unknown[] }>("/api/v1/nodes")).body.nodes.length === 1,
    {
      what: "regional to link to cloud",
      timeoutMs: 30_000,
    },
  );
  await waitFor(
    async () => (await regional.api<{ nodes: unknown[] }>("/api/v1/nodes")).body.nodes.length === 1,
    {
      what: "metro to link to regional",
      timeoutMs: 30_000,
    },
  );
  // The cloud must know metro (from regional's summary) before changes below it are taken.
  await waitFor(async () => JSON.stringify(await tree()).includes('"id":"metro"'), {
    what: "metro at cloud",
  });

  const seen = async (node: string, joined: boolean): Promise<number> => {
    const c = await waitFor(
      async () =>
        (await tree()).changes.find(
          (x) => x.node === node && (joined ? x.from === null && x.to === "ready" : x.from === "ready"),
        ),
      { intervalMs: 5, timeoutMs: 20_000, what: `${node} ${joined ? "join" : "leave"} at cloud` },
    );
    return c.received;
  };
  const joins: number[] = [];
  const leaves: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const node = `n${i}`;
    const client = await connectSecure(`${metro.wsUrl}/v1/agent`, {
      nodeId: node,
      joinToken: metro.joinToken,
    });
    const hello = {
      node_id: node,
      level: 4,
      labels: { region: "eu", site: `s${i % 4}` },
      capabilities: [],
      resources: {},
      version: "bench",
      boot_id: `b${i}`,
      last_acked: 0,
    };
    const sent = Date.now();
    client.send(envelope("hello", node, hello, { ts: sent }));
    joins.push((await seen(node, true)) - sent);
    // A beat so the next change is a session end, not a race with the join's summary.
    await Bun.sleep(50);
    const closed = Date.now();
    await client.transport.close();
    leaves.push((await seen(node, false)) - closed);
  }
  const row = (name: string, xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return [name, s.length, pct(s, 0.5), pct(s, 0.99), s[s.length - 1]!];
  };
  console.log(
    table([
      ["change at metro → received at cloud (ms)", "n", "p50", "p99", "max"],
      row("node joins (hello sent)", joins),
      row("node leaves (socket closed)", leaves),
    ]),
  );
} finally {
  for (const h of hubs.reverse()) await h[Symbol.asyncDispose]();
  rmSync(root, { recursive: true, force: true });
}

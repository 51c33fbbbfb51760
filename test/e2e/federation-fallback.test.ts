// Losing a whole child hub: its agent fails over to the fallback hub it lists second, with its telemetry exactly once.
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { reconcileEntry } from "../support/federation.ts";
import { loop, pids } from "../support/marked-procs.ts";
import { type AgentHandle, type HubHandle, startAgent, startHub, tempDir } from "../support/processes.ts";
import { type NodeJson, writeAgentConfig } from "../support/telemetry.ts";
import { waitFor } from "../support/wait.ts";

const HUB_ARGS = ["--heartbeat-interval", "1s", "--suspect-after", "3s", "--restart-grace", "1s"];

/** Every (series, time) a hub holds for a node. */
async function stored(hub: HubHandle, node: string): Promise<Set<string>> {
  const { series } = (await hub.api<{ series: string[] }>(`/api/v1/nodes/${node}/series`)).body;
  const seen = new Set<string>();
  const to = Date.now() + 3_600_000;
  for (const name of series) {
    const q = `series=${encodeURIComponent(name)}&from=${to - 6 * 3_600_000}&to=${to}`;
    const { points } = (await hub.api<{ points: [number, number][] }>(`/api/v1/nodes/${node}/metrics?${q}`))
      .body;
    for (const [t] of points) seen.add(`${name}@${t}`);
  }
  return seen;
}

test("a metro hub SIGKILLed for good: its agent moves to the fallback hub it lists second, the parent sees the node there and places the hub's movable workload below the sibling, every sample is stored once across the two, and metro-a back stops the copy moved away", async () => {
  using dir = tempDir("novacron-fed-fallback-");
  const hubs: HubHandle[] = [];
  let agent: AgentHandle | undefined;
  const mark = `novacron-fed-lost-${process.pid}-${Math.floor(Math.random() * 1e9)}`;
  try {
    const regional = await startHub({
      data: join(dir.path, "regional"),
      // Lost after 6 s of silence (and witnessed by its nodes turning up below a sibling).
      args: [...HUB_ARGS, "--hub-id", "regional", "--down-after", "6s"],
    });
    hubs.push(regional);
    const metro = (id: string) =>
      startHub({
        data: join(dir.path, id),
        args: [
          ...HUB_ARGS,
          "--hub-id",
          id,
          "--level",
          "3",
          "--parent",
          regional.wsUrl,
          "--parent-join-token",
          regional.joinToken,
        ],
      });
    const metroA = await metro("metro-a");
    hubs.push(metroA);
    const metroB = await metro("metro-b");
    hubs.push(metroB);
    const config = join(dir.path, "f1.yaml");
    // Both hubs' keys pinned: an agent trusts a hub it never met only when told its key (a fallback is one).
    const keys = [metroA, metroB].map((h) => readFileSync(join(h.data, "hub.pub"), "utf8").trim());
    const base = {
      sample_interval: "1s",
      batch_interval: "1s",
      heartbeat_interval: "1s",
      level: 4,
      hub_key: keys,
    };
    writeAgentConfig(config, { ...base, hub: [metroA.wsUrl, metroB.wsUrl] });
    agent = await startAgent({
      data: join(dir.path, "f1"),
      nodeId: "f1",
      joinToken: metroA.joinToken,
      args: ["--config", config],
    });
    await waitFor(
      async () => (await regional.api<{ hub?: string }>("/api/v1/nodes/f1")).body.hub === "metro-a",
      {
        what: "f1 at metro-a, seen from regional",
        timeoutMs: 30_000,
      },
    );
    await waitFor(async () => (await metroA.api<NodeJson>("/api/v1/nodes/f1")).body.ingest.samples > 20, {
      what: "f1's first samples at metro-a",
    });
    // A workload placed from the top into metro-a's domain, whose policy lets it move.
    const submitted = await regional.api<{ hub: string }>("/api/v1/topology/workloads", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        name: "mover",
        driver: "exec",
        command: "/bin/sh",
        args: loop(mark),
        placement: { levels: [4, 4] },
        disconnect: { replace: true },
      }),
    });
    expect(submitted.status).toBe(201);
    expect(submitted.body.hub).toBe("metro-a");
    await waitFor(async () => (await pids(mark)).length === 1, { what: "mover to run on f1 under metro-a" });

    await metroA.proc.kill("SIGKILL");
    await waitFor(
      async () => {
        const s = await agent!.status();
        return s.connected && s.hub?.includes(String(metroB.port));
      },
      { what: "f1 to fail over to metro-b", timeoutMs: 30_000 },
    );
    // The parent: metro-a's subtree disconnected, and f1 now answered by metro-b (a cut-off child's node may move).
    await waitFor(
      async () => (await regional.api<{ hub?: string }>("/api/v1/nodes/f1")).body.hub === "metro-b",
      {
        what: "f1 at metro-b, seen from regional",
        timeoutMs: 30_000,
      },
    );
    const tree = (
      await regional.api<{ tree: { children: { id: string; status: string }[] } }>("/api/v1/topology")
    ).body.tree;
    expect(tree.children.find((c) => c.id === "metro-a")?.status).toBe("disconnected");
    // metro-a lost (silent past down_after, and its node turned up below metro-b): the workload moves there.
    type Below = {
      hub: string;
      moves?: { from: string; to: string; evidence: string }[];
      placed: { allocs: { node: string; status: string }[] } | null;
    };
    const below = await waitFor(
      async () => {
        const w = (await regional.api<Below>("/api/v1/topology/workloads/mover")).body;
        return w.hub === "metro-b" && w.placed?.allocs.some((a) => a.status === "running") ? w : undefined;
      },
      { what: "mover placed again below metro-b", timeoutMs: 45_000 },
    );
    expect(below.moves).toEqual([expect.objectContaining({ from: "metro-a", to: "metro-b" })]);
    expect(below.moves![0]!.evidence).toContain("f1");
    expect(below.placed!.allocs.map((a) => a.node)).toEqual(["f1"]);
    // One copy on f1: the one metro-a started was stopped when f1 took metro-b's desired set.
    await waitFor(async () => (await pids(mark)).length === 1, { what: "exactly one copy of mover" });
    await waitFor(async () => (await metroB.api<NodeJson>("/api/v1/nodes/f1")).body.ingest.samples > 20, {
      what: "f1's samples at metro-b",
    });

    // Quiet: no more sampling; everything the agent holds reaches metro-b.
    writeAgentConfig(config, { ...base, hub: [metroA.wsUrl, metroB.wsUrl], sample_interval: "1h" });
    const final = await waitFor(
      async () => {
        const s = await agent!.status();
        const staged = s.samples.staged_ticks + (s.samples.staged_points ?? 0);
        return s.config.sample_interval_ms === 3_600_000 &&
          s.connected &&
          s.outbox.pending === 0 &&
          staged === 0
          ? s
          : undefined;
      },
      { what: "f1 to drain into metro-b", timeoutMs: 60_000 },
    );
    await agent[Symbol.asyncDispose]();
    agent = undefined;
    const atB = await stored(metroB, "f1");
    // metro-a's store, read by starting it again on its data (the agent is gone: nothing new arrives).
    await metroA.restart();
    const atA = await stored(metroA, "f1");
    const both = [...atA].filter((k) => atB.has(k));
    console.log(
      `fallback: produced ${final.samples.produced}, dropped ${final.samples.dropped}, stored at metro-a ${atA.size}, at metro-b ${atB.size}, at both ${both.length}`,
    );
    expect(atA.size).toBeGreaterThan(0);
    expect(atB.size).toBeGreaterThan(0);
    expect(both).toEqual([]);
    expect(atA.size + atB.size).toBe(final.samples.produced - final.samples.dropped);

    // metro-a is back (the restart above): the copy of mover it still holds is stopped there, since mover
    // was moved below metro-b while metro-a was lost (no workload runs twice), and the parent reports it.
    expect((await metroB.api("/api/v1/workloads/mover")).status).toBe(200);
    await waitFor(async () => (await metroA.api("/api/v1/workloads/mover")).status === 404, {
      what: "mover removed at the returning metro-a",
      timeoutMs: 30_000,
    });
    const entry = await reconcileEntry(regional, "mover", "metro-a");
    expect(entry).toMatchObject({
      child: "metro-a",
      winner: "parent",
      outcome: "the copy there was stopped and removed",
    });
    expect(entry.changed_here).toContain("moved to metro-b");
    const after = (await regional.api<Below>("/api/v1/topology/workloads/mover")).body;
    expect(after.hub).toBe("metro-b");
    expect((after.moves![0]! as { stopped?: number }).stopped).toBeGreaterThan(0);
    expect((await metroB.api("/api/v1/workloads/mover")).status).toBe(200);
  } finally {
    await agent?.[Symbol.asyncDispose]();
    for (const p of await pids(mark)) process.kill(p, "SIGKILL");
    for (const h of hubs.reverse()) await h[Symbol.asyncDispose]();
  }
}, 180_000);

// End to end: an agent's data directory restored from a copy taken while it held a backlog. Nothing is
// stored twice at the hub, counters never go back, and what the original produced but never sent is counted.
import { Database } from "bun:sqlite";
import { expect, test } from "bun:test";
import { cpSync, rmSync } from "node:fs";
import { join } from "node:path";
import { decodeCbor, type MetricsBatchBody } from "../../shared/protocol/index.ts";
import { decodeMetrics } from "../../shared/protocol/metrics-codec.ts";
import { type AgentHandle, type HubHandle, startAgent, startHub, tempDir } from "../support/processes.ts";
import { type NodeJson, writeAgentConfig } from "../support/telemetry.ts";
import { waitFor } from "../support/wait.ts";

const NODE = "restored";

interface Counters {
  epoch: string;
  produced: number;
  dropped: number;
  held: number;
  lost: number;
}
type NodeView = NodeJson & {
  ingest: NodeJson["ingest"] & { duplicate_samples: number };
  counters: Counters | null;
  epochs: { epoch: string; restored: number }[];
};

const node = async (hub: HubHandle) => (await hub.api<NodeView>(`/api/v1/nodes/${NODE}`)).body;

/** Every (series, time) the hub holds for the node, and how many times each. */
async function storedSamples(hub: HubHandle): Promise<Map<string, number>> {
  const { series } = (await hub.api<{ series: string[] }>(`/api/v1/nodes/${NODE}/series`)).body;
  const seen = new Map<string, number>();
  const to = Date.now() + 3_600_000;
  for (const name of series) {
    const q = `series=${encodeURIComponent(name)}&from=${to - 6 * 3_600_000}&to=${to}`;
    const { points } = (await hub.api<{ points: [number, number][] }>(`/api/v1/nodes/${NODE}/metrics?${q}`))
      .body;
    for (const [t] of points) seen.set(`${name}@${t}`, (seen.get(`${name}@${t}`) ?? 0) + 1);
  }
  return seen;
}

/**
 * What a (killed) agent store holds: its counters, the samples it never sent (staged ticks and unnumbered
 * outbox rows), and the (series, time) of the rows it numbered (they may have reached the hub).
 */
function readStore(dir: string): {
  produced: number;
  dropped: number;
  unsent: number;
  numbered: Set<string>;
} {
  const db = new Database(join(dir, "agent.db"));
  try {
    const counter = (name: string) =>
      (db.query("SELECT value FROM counters WHERE name = ?").get(name) as { value: number } | null)?.value ??
      0;
    let unsent = 0;
    const numbered = new Set<string>();
    const rows = db
      .query("SELECT o.seq, o.type, o.samples, b.body FROM outbox o JOIN outbox_body b ON b.id = o.id")
      .all() as {
      seq: number | null;
      type: string;
      samples: number;
      body: Uint8Array;
    }[];
    for (const row of rows) {
      if (row.type !== "metrics_batch") continue;
      if (row.seq === null) {
        unsent += row.samples;
        continue;
      }
      const f = decodeMetrics(decodeCbor(row.body) as MetricsBatchBody);
      for (const col of f.series)
        col.values.forEach((v, i) => {
          if (v !== null) numbered.add(`${col.name}@${f.start + i * f.interval}`);
        });
    }
    for (const row of db.query("SELECT data FROM ticks").all() as { data: Uint8Array }[])
      unsent += Object.keys(decodeCbor(row.data) as Record<string, number>).length;
    return { produced: counter("samples_produced"), dropped: counter("dropped_samples"), unsent, numbered };
  } finally {
    db.close();
  }
}

async function setHub(agent: AgentHandle, config: string, base: Record<string, unknown>, hub: string[]) {
  writeAgentConfig(config, { ...base, hub });
  await waitFor(async () => (await agent.status()).connected === hub.length > 0, {
    timeoutMs: 20_000,
    what: `the agent to ${hub.length > 0 ? "connect" : "go offline"}`,
  });
}

test("a data directory restored from a copy taken with a backlog: nothing stored twice, counters never go back, the loss is counted", async () => {
  using dir = tempDir();
  const data = join(dir.path, "agent");
  const snapshot = join(dir.path, "snapshot");
  const config = join(dir.path, "agent.yaml");
  await using hub = await startHub({ data: join(dir.path, "hub") });
  // Packed every 4 s, counters reported every 5 s (5 heartbeats): reports often count ticks still staged.
  const base = { sample_interval: "1s", batch_interval: "4s", heartbeat_interval: "1s" };
  writeAgentConfig(config, { ...base, hub: [hub.wsUrl] });
  await using agent = await startAgent({
    data,
    nodeId: NODE,
    joinToken: hub.joinToken,
    args: ["--config", config],
  });
  await waitFor(async () => (await agent.status()).connected, { what: "the agent to join" });

  // Offline: a backlog builds up. The copy is taken mid-run, as a VM snapshot would be (process paused).
  await setHub(agent, config, base, []);
  await waitFor(async () => ((await agent.status()).outbox.pending >= 2 ? true : undefined), {
    what: "a backlog of two batches",
  });
  process.kill(agent.proc.pid!, "SIGSTOP");
  cpSync(data, snapshot, { recursive: true });
  process.kill(agent.proc.pid!, "SIGCONT");
  const atCopy = readStore(snapshot);
  expect(atCopy.unsent).toBeGreaterThan(0);
  // It keeps running offline, then the hub returns and the whole backlog goes.
  const pendingAtCopy = (await agent.status()).outbox.pending;
  await waitFor(async () => ((await agent.status()).outbox.pending >= pendingAtCopy + 2 ? true : undefined), {
    what: "more backlog after the copy",
  });
  await setHub(agent, config, base, [hub.wsUrl]);
  await waitFor(async () => ((await agent.status()).outbox.pending === 0 ? true : undefined), {
    timeoutMs: 20_000,
    what: "the backlog to drain",
  });
  // Then it stops packing (batch_interval 10m): what it samples stays staged, and its reports count it.
  writeAgentConfig(config, { ...base, batch_interval: "10m", hub: [hub.wsUrl] });
  await waitFor(async () => ((await agent.status()).samples.staged_ticks >= 6 ? true : undefined), {
    what: "ticks staged past the last batch",
  });
  // Killed once a report counts those staged samples as held (and everything else as stored): they
  // are lost with the original, and the hub knows they were produced.
  const before = await waitFor(
    async () => {
      const n = await node(hub);
      const c = n.counters;
      if (!c || c.held === 0 || c.produced !== c.dropped + n.ingest.samples + c.held) return undefined;
      await agent.proc.kill("SIGKILL");
      return n;
    },
    { timeoutMs: 30_000, intervalMs: 50, what: "a report that counts the staged samples as held" },
  );
  expect(before.counters!.lost).toBe(0);
  const killed = readStore(data);
  const epoch = before.counters!.epoch;

  // The copy comes back in its place.
  rmSync(data, { recursive: true, force: true });
  cpSync(snapshot, data, { recursive: true });
  await agent.restart();
  await agent.proc.waitForLine(/local store was restored from a snapshot or copied; started a new epoch/);
  const first = await agent.status();
  // Counters never go back: the copy carries on from what the hub saw, not from the copy's own.
  expect(first.samples.produced).toBeGreaterThanOrEqual(before.counters!.produced);
  expect(first.samples.produced).toBeGreaterThan(atCopy.produced);

  // Quiet: no more sampling; everything held reaches the hub, and the hub hears the final counters.
  writeAgentConfig(config, { ...base, hub: [hub.wsUrl], sample_interval: "1h" });
  const final = await waitFor(
    async () => {
      const s = await agent.status();
      return s.config.sample_interval_ms === 3_600_000 &&
        s.connected &&
        s.outbox.pending === 0 &&
        s.samples.staged_ticks === 0
        ? s
        : undefined;
    },
    { timeoutMs: 30_000, what: "the restored agent to drain" },
  );
  const after = await waitFor(
    async () => {
      const n = await node(hub);
      return n.counters?.produced === final.samples.produced && n.counters.held === 0 ? n : undefined;
    },
    { timeoutMs: 20_000, what: "the hub to hear the final counters" },
  );

  // Nothing stored twice: every (series, time) once, and the resent backlog was recognised.
  const stored = await storedSamples(hub);
  expect([...stored.values()].filter((n) => n > 1)).toEqual([]);
  expect(stored.size).toBe(after.ingest.samples);
  expect(after.ingest.duplicate_samples).toBeGreaterThan(0);
  // A new epoch after the one the copy came from, which the hub records as restored.
  expect(after.counters!.epoch).not.toBe(epoch);
  expect(after.epochs.find((e) => e.epoch === epoch)?.restored).toBe(1);

  // produced − dropped = stored + lost, where lost is what the original counted and never sent: exactly
  // the samples its last report held (staged, never packed), and no more than its store never sent.
  const lost = final.samples.produced - final.samples.dropped - after.ingest.samples;
  const neverSent = killed.unsent + [...killed.numbered].filter((k) => !stored.has(k)).length;
  console.log(
    `restore: produced ${final.samples.produced}, dropped ${final.samples.dropped}, stored ${after.ingest.samples},` +
      ` duplicates not stored ${after.ingest.duplicate_samples}, lost ${lost} (the original's last report held` +
      ` ${before.counters!.held}; its store never sent ${neverSent})`,
  );
  expect(lost).toBe(after.counters!.lost);
  expect(lost).toBe(before.counters!.held);
  expect(lost).toBeGreaterThan(0);
  expect(lost).toBeLessThanOrEqual(neverSent);
}, 180_000);

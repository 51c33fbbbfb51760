// End to end: an agent whose buffer holds more than its byte budget folds the oldest data into 1-minute
// rollups (dropping only what still does not fit, counted), stays inside, and delivers the rest.
import { expect, test } from "bun:test";
import { statSync } from "node:fs";
import { join } from "node:path";
import { AgentStore, MetricBuffer } from "../../agent/store/index.ts";
import { startAgent, startHub, tempDir } from "../support/processes.ts";
import { expectNothingLost, quiesce, writeAgentConfig } from "../support/telemetry.ts";
import { waitFor } from "../support/wait.ts";

const BUDGET = 1_000_000;

// A day of 1 s samples written through the agent's own buffer, as an agent offline for a day would have.
function fillOneDay(dataDir: string): { produced: number; bytes: number } {
  const store = new AgentStore(dataDir, { bufferBytes: 100_000_000 });
  const buffer = new MetricBuffer(store, 1000);
  const start = Math.floor(Date.now() / 1000) * 1000 - 86_400_000;
  let seed = 7;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  let cpu = 20;
  for (let i = 0; i < 86_400; i++) {
    cpu = Math.min(100, Math.max(0, cpu + (rand() - 0.5) * 4));
    buffer.add(start + i * 1000, {
      "cpu.util": Math.round(cpu * 100) / 100,
      "cpu.load1": Math.round(cpu * 2) / 100,
      "mem.used_pct": Math.round((40 + rand()) * 100) / 100,
      "mem.avail_bytes": 8_000_000_000 + Math.floor(rand() * 1000) * 4096,
      "net.rx_bps": Math.floor(rand() * 5000),
      "net.tx_bps": Math.floor(rand() * 3000),
    });
    if (i % 10 === 9) buffer.flush(start + i * 1000);
  }
  const result = { produced: buffer.produced(), bytes: store.outbox.stats().bytes };
  store.close();
  return result;
}

test("buffer over its byte budget: oldest batches become 1-minute rollups, the store stays inside, and the hub gets everything exactly once", async () => {
  using dir = tempDir();
  const data = join(dir.path, "agent");
  const filled = fillOneDay(data);
  expect(filled.bytes).toBeGreaterThan(BUDGET);
  const config = join(dir.path, "agent.yaml");
  const base = {
    sample_interval: "1s",
    batch_interval: "1s",
    heartbeat_interval: "1s",
    buffer_bytes: BUDGET,
  };
  writeAgentConfig(config, base);
  // Standalone first: no hub, a full buffer, a budget smaller than what it holds.
  await using agent = await startAgent({ data, nodeId: "full", args: ["--config", config] });
  const offline = await waitFor(
    async () => {
      const s = await agent.status();
      return s.samples.produced > filled.produced ? s : undefined;
    },
    { what: "the agent to sample on top of the backlog" },
  );
  const ob = offline.outbox;
  expect(ob.bytes).toBeLessThanOrEqual(BUDGET);
  // A day of six series fits in 1 MB once its older hours are rollups: nothing had to be dropped.
  expect(offline.samples.downsampled).toBeGreaterThan(filled.produced / 4);
  expect(offline.samples.dropped).toBe(0);
  const metrics = await (await fetch(`${agent.apiUrl}/metrics`)).text();
  expect(metrics).toMatch(
    new RegExp(`novacron_agent_samples_downsampled_total ${offline.samples.downsampled}\\b`),
  );
  const dbBytes = statSync(join(data, "agent.db")).size;

  // It keeps sampling for a while: the budget holds and the file does not grow.
  await Bun.sleep(3000);
  const later = await agent.status();
  expect(later.outbox.bytes).toBeLessThanOrEqual(BUDGET);
  expect(statSync(join(data, "agent.db")).size).toBeLessThanOrEqual(dbBytes);

  // Then a hub appears: what was kept arrives, and produced - dropped = stored.
  await using hub = await startHub({ data: join(dir.path, "hub") });
  await agent[Symbol.asyncDispose]();
  await using joined = await startAgent({
    data,
    nodeId: "full",
    hub: hub.wsUrl,
    joinToken: hub.joinToken,
    args: ["--config", config],
  });
  const r = await quiesce(joined, hub, config, base);
  expectNothingLost(r);
  // The hub counts the rolled-up samples among those stored, and apart.
  expect(r.node.ingest.rolled_up).toBe(offline.samples.downsampled);
  const day = await hub.api<{ points: [number, number][]; rollups: number[][] }>(
    `/api/v1/nodes/full/metrics?series=cpu.util&from=${Date.now() - 86_400_000}&to=${Date.now()}`,
  );
  expect(day.body.rollups.length).toBeGreaterThan(600);
  expect(day.body.rollups.every((m) => m[4]! >= 1 && m[4]! <= 60 && m[1]! <= m[3]! && m[3]! <= m[2]!)).toBe(
    true,
  );
}, 120_000);

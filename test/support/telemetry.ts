// Helpers that bring an agent to rest and compare what it produced with what the hub stored.
import { expect } from "bun:test";
import { writeFileSync } from "node:fs";
import type { AgentHandle, HubHandle } from "./processes.ts";
import { waitFor } from "./wait.ts";

export interface NodeJson {
  id: string;
  status: string;
  connected: boolean;
  labels: Record<string, string>;
  ingest: {
    samples: number;
    rolled_up: number;
    batches: number;
    last_seq: number;
    duplicates: number;
    gaps: number;
  };
}

/** Writes an agent config file. */
export function writeAgentConfig(path: string, values: Record<string, unknown>): void {
  const lines = Object.entries(values).map(
    ([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`,
  );
  writeFileSync(path, `${lines.join("\n")}\n`);
}

/**
 * Stops sampling through a hot config change (sample_interval 1h), waits until everything the
 * agent holds reached the hub, and returns both sides' counts.
 */
export async function quiesce(
  agent: AgentHandle,
  hub: HubHandle,
  configPath: string,
  base: Record<string, unknown>,
): Promise<{ produced: number; dropped: number; stored: number; node: NodeJson }> {
  writeAgentConfig(configPath, { ...base, sample_interval: "1h" });
  await waitFor(async () => (await agent.status()).config.sample_interval_ms === 3_600_000, {
    what: `${agent.nodeId} to apply sample_interval 1h`,
  });
  const final = await waitFor(
    async () => {
      const s = await agent.status();
      const staged = s.samples.staged_ticks + (s.samples.staged_points ?? 0);
      return s.connected && s.outbox.pending === 0 && staged === 0 ? s : undefined;
    },
    { timeoutMs: 60_000, what: `${agent.nodeId} to drain its outbox` },
  );
  const node = await waitFor(
    async () => {
      const r = await hub.api<NodeJson>(`/api/v1/nodes/${agent.nodeId}`);
      return r.status === 200 && r.body.ingest.samples === final.samples.produced - final.samples.dropped
        ? r.body
        : undefined;
    },
    { timeoutMs: 10_000, what: `hub to hold every sample of ${agent.nodeId}` },
  ).catch(async () => (await hub.api<NodeJson>(`/api/v1/nodes/${agent.nodeId}`)).body);
  return {
    produced: final.samples.produced,
    dropped: final.samples.dropped,
    stored: node.ingest.samples,
    node,
  };
}

/** Asserts the invariant: produced minus dropped equals stored, and something was produced. */
export function expectNothingLost(r: { produced: number; dropped: number; stored: number }): void {
  expect(r.produced).toBeGreaterThan(0);
  expect(r.stored).toBe(r.produced - r.dropped);
}

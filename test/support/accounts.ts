// Whether every sample an agent produced reached the hub exactly once (or is counted as dropped).
import type { AgentHandle, HubHandle } from "./processes.ts";

interface NodeJson {
  ingest: { samples: number };
  counters: { lost: number } | null;
}

/**
 * Produced − dropped = stored for the agent's node, read between two looks at the agent that agree
 * (it made no sample meanwhile) with its outbox empty (everything acked). The hub's own copy of the
 * counters lags by up to a heartbeat report, so the agent's are the ones compared.
 */
export async function balanced(agent: AgentHandle, hub: HubHandle): Promise<boolean> {
  const before = await agent.status();
  const n = (await hub.api<NodeJson>(`/api/v1/nodes/${agent.nodeId}`)).body;
  const after = await agent.status();
  return (
    before.samples.produced === after.samples.produced &&
    after.outbox.pending === 0 &&
    n.counters?.lost === 0 &&
    after.samples.produced - after.samples.dropped === n.ingest.samples
  );
}

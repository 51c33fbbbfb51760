// Agents with named caches on a real hub, and the calls the cache tests make to them.
import { join } from "node:path";
import { type AgentHandle, type HubHandle, startAgent } from "./processes.ts";
import { waitFor } from "./wait.ts";

export type Figures = {
  name: string;
  writes: number;
  applied: number;
  superseded: number;
  repeated: number;
  out_of_order: number;
  keys: number;
  holders: string[];
};

export async function node(
  hub: HubHandle,
  dir: string,
  nodeId: string,
  caches: Record<string, unknown>,
  extra: string[] = [],
): Promise<AgentHandle> {
  const a = await startAgent({
    data: join(dir, nodeId),
    nodeId,
    hub: hub.wsUrl,
    joinToken: hub.joinToken,
    args: ["--heartbeat-interval", "1s", "--caches", JSON.stringify(caches), ...extra],
  });
  await waitFor(async () => (await a.status()).connected, { what: `${nodeId} connected` });
  return a;
}

export const url = (a: AgentHandle, cache: string, key: string) =>
  `${a.apiUrl}/v1/caches/${cache}/${encodeURIComponent(key)}`;

export async function put(a: AgentHandle, cache: string, key: string, value: string) {
  const r = await fetch(url(a, cache, key), { method: "PUT", body: value });
  return {
    status: r.status,
    body: (await r.json()) as Record<string, unknown> & { error?: { code: string } },
  };
}

export async function get(a: AgentHandle, cache: string, key: string) {
  const r = await fetch(url(a, cache, key));
  const text = await r.text();
  return {
    status: r.status,
    value: r.status === 200 ? text : undefined,
    stale: r.headers.get("x-stale") === "1",
    hlc: r.headers.get("x-hlc"),
  };
}

export async function figures(hub: HubHandle, name: string): Promise<Figures | undefined> {
  const r = await hub.api<{ caches: Figures[] }>("/api/v1/caches");
  return r.body.caches.find((c) => c.name === name);
}

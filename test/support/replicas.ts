// Hub replicas for the tests: several real hub processes on one store, and which of them leads.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { HubSql } from "../../hub/store/sql/index.ts";
import { encodeKey, generateKeyPair } from "../../shared/secure/index.ts";
import { type HubHandle, startHub } from "./processes.ts";

/**
 * `n` replicas of one hub on the store `url`: one hub key (agents pin it), one id (`hubId`), one set
 * of tokens; each in DIR/replica-<i>, with `args` and an MQTT broker when given.
 */
export async function startReplicas(
  dir: string,
  url: string,
  n: number,
  opts: { args?: string[]; mqtt?: string; hubId?: string } = {},
): Promise<HubHandle[]> {
  const key = generateKeyPair();
  const hubs: HubHandle[] = [];
  for (let i = 0; i < n; i++) {
    const data = join(dir, `replica-${i}`);
    mkdirSync(data, { recursive: true });
    writeFileSync(join(data, "hub.key"), `${encodeKey(key.secret)}\n`, { mode: 0o600 });
    hubs.push(
      await startHub({
        data,
        args: ["--store", url, "--hub-id", opts.hubId ?? "hub-r", ...(opts.args ?? [])],
        ...(opts.mqtt ? { mqtt: opts.mqtt } : {}),
      }),
    );
  }
  return hubs;
}

/** The replica id `hub` logged at start ("this hub is a replica on a shared store replica=..."). */
export const replicaId = (hub: HubHandle): string | undefined =>
  hub.proc.lines.map((l) => /replica on a shared store.* replica=(\S+)/.exec(l)?.[1]).find(Boolean);

/** Whether `hub` is the replica `id` (each logs its id at start: "this hub is a replica on a shared store"). */
export const isReplica = (hub: HubHandle, id: string | null) =>
  id !== null && hub.proc.lines.some((l) => l.includes("replica on a shared store") && l.includes(id));

/** The index of the replica that leads the controllers now, read from the store. */
export async function leaderOf(store: HubSql, hubs: HubHandle[]): Promise<{ i: number } | undefined> {
  const row = await store.get<{ holder: string }>(
    "SELECT holder FROM leases WHERE name = 'controller' AND expires_at >= ?",
    [Date.now()],
  );
  const i = row ? hubs.findIndex((h) => isReplica(h, row.holder)) : -1;
  return i >= 0 ? { i } : undefined;
}

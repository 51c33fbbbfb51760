// Node keys rotate under traffic without losing a sample, and a key that expired while the node was away renews.
import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { mosquittoBinary, startMosquitto } from "../support/mosquitto.ts";
import { type HubHandle, startAgent, startHub, tempDir } from "../support/processes.ts";
import { expectNothingLost, quiesce, writeAgentConfig } from "../support/telemetry.ts";
import { waitFor } from "../support/wait.ts";

const BASE = { sample_interval: "1s", batch_interval: "1s", heartbeat_interval: "1s" };
const DAY = 86_400_000;

interface NodeKeyJson {
  connected: boolean;
  key: { public_key: string | null; key_set_at: number; key_expires: number | null };
}
const nodeKey = async (hub: HubHandle, id: string) =>
  (await hub.api<NodeKeyJson>(`/api/v1/nodes/${id}`)).body;

describe("node key rotation", () => {
  test.skipIf(mosquittoBinary() === undefined)(
    "keys rotated on demand under traffic, over WebSocket and MQTT, with reconnects in between: each new key is the one the next session proves, and nothing is lost",
    async () => {
      using dir = tempDir();
      await using broker = await startMosquitto(dir.path);
      await using hub = await startHub({ data: join(dir.path, "hub"), mqtt: broker.url });
      for (const [id, url] of [
        ["ws-node", hub.wsUrl],
        ["mqtt-node", broker.url],
      ] as const) {
        const config = join(dir.path, `${id}.yaml`);
        writeAgentConfig(config, BASE);
        await using agent = await startAgent({
          data: join(dir.path, id),
          nodeId: id,
          hub: url,
          joinToken: hub.joinToken,
          args: ["--config", config],
        });
        await waitFor(async () => (await nodeKey(hub, id)).connected, { what: `${id} connected` });
        const seen = new Set<string>([(await nodeKey(hub, id)).key.public_key!]);
        for (let round = 0; round < 3; round++) {
          const before = (await nodeKey(hub, id)).key.public_key!;
          expect((await hub.api(`/api/v1/nodes/${id}/rotate-key`, { method: "POST" })).status).toBe(202);
          const after = await waitFor(
            async () => {
              const k = (await nodeKey(hub, id)).key.public_key!;
              return k !== before ? k : undefined;
            },
            { what: `${id}'s key to change (round ${round + 1})` },
          );
          expect(seen.has(after)).toBe(false);
          seen.add(after);
          await waitFor(
            () => agent.proc.lines.some((l) => l.includes(`node key rotated public_key=${after}`)),
            {
              what: `${id} to take its new key`,
            },
          );
          // A new session must prove the new key (the old one is refused once the new one was used).
          await agent.restart();
          await waitFor(async () => (await agent.status()).connected, {
            what: `${id} back with its new key`,
          });
        }
        expect(hub.proc.lines.some((l) => l.includes("agent refused") && l.includes(id))).toBe(false);
        expectNothingLost(await quiesce(agent, hub, config, BASE));
      }
    },
    120_000,
  );

  test("a key that expired while the node was offline (30 days, moved on in the hub's store) renews on reconnect", async () => {
    using dir = tempDir();
    let hub = await startHub({ data: join(dir.path, "hub") });
    const config = join(dir.path, "n.yaml");
    writeAgentConfig(config, BASE);
    await using agent = await startAgent({
      data: join(dir.path, "n"),
      nodeId: "far",
      hub: hub.wsUrl,
      joinToken: hub.joinToken,
      args: ["--config", config],
    });
    await waitFor(async () => (await nodeKey(hub, "far")).connected, { what: "far connected" });
    const first = (await nodeKey(hub, "far")).key;
    // The hub goes away; while it is down, 31 days pass for the node's key (the default lifetime is 30).
    const port = hub.port;
    await hub[Symbol.asyncDispose]();
    const db = new Database(join(dir.path, "hub", "hub.db"));
    db.run("UPDATE nodes SET key_set_at = key_set_at - ? WHERE id = 'far'", [31 * DAY]);
    db.close();
    hub = await startHub({ data: join(dir.path, "hub"), port });
    await using _hub = hub;
    const renewed = await waitFor(
      async () => {
        const k = (await nodeKey(hub, "far")).key;
        return k.public_key !== first.public_key ? k : undefined;
      },
      { what: "the node to renew its expired key", timeoutMs: 30_000 },
    );
    expect(renewed.key_expires! - Date.now()).toBeGreaterThan(29 * DAY);
    expect(
      agent.proc.lines.some((l) => /rotating this node's key reason="the hub asked for it"/.test(l)),
    ).toBe(true);
    expectNothingLost(await quiesce(agent, hub, config, BASE));
  }, 90_000);
});

// A hub that restarts quickly has lost every MQTT session; its agents find out from its refusal, confirm it
// with one authenticated round trip, and start new sessions in seconds, not after the silence limit.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { mosquittoBinary, startMosquitto } from "../support/mosquitto.ts";
import { startAgent, startHub, tempDir } from "../support/processes.ts";
import { expectNothingLost, type NodeJson, quiesce, writeAgentConfig } from "../support/telemetry.ts";
import { waitFor } from "../support/wait.ts";

// A 10 s heartbeat: the silence limit would be 32 s, so a reconnect well before it is the refusal's doing.
const BASE = { sample_interval: "1s", batch_interval: "1s", heartbeat_interval: "10s" };

test.skipIf(mosquittoBinary() === undefined)(
  "MQTT: after a hub restart the agent's frames meet 'no session', and it is back in a new session within seconds, losing nothing",
  async () => {
    using dir = tempDir();
    await using broker = await startMosquitto(dir.path);
    await using hub = await startHub({ data: join(dir.path, "hub"), mqtt: broker.url });
    const config = join(dir.path, "a.yaml");
    writeAgentConfig(config, BASE);
    await using agent = await startAgent({
      data: join(dir.path, "a"),
      nodeId: "quick",
      hub: broker.url,
      joinToken: hub.joinToken,
      args: ["--config", config],
    });
    await waitFor(async () => (await agent.status()).connected, { what: "connected" });
    const sessionsBefore = (await agent.status()).link as { sessions: number };
    await hub.restart();
    const restartedAt = Date.now();
    await waitFor(
      async () => {
        const s = await agent.status();
        const node = (await hub.api<NodeJson>("/api/v1/nodes/quick")).body;
        return (s.link as { sessions: number }).sessions > sessionsBefore.sessions && node.connected;
      },
      { what: "a new session after the hub restart", timeoutMs: 25_000 },
    );
    expect(Date.now() - restartedAt).toBeLessThan(20_000);
    expect(agent.proc.lines.some((l) => l.includes("hub no longer knows this session"))).toBe(true);
    expectNothingLost(await quiesce(agent, hub, config, BASE));
  },
  60_000,
);

// End to end: real hub and agent processes over WebSocket and MQTT (a real Mosquitto), with crashes.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { mosquittoBinary, startMosquitto } from "../support/mosquitto.ts";
import { startAgent, startHub, tempDir } from "../support/processes.ts";
import { startTcpProxy } from "../support/tcp-proxy.ts";
import { expectNothingLost, type NodeJson, quiesce, writeAgentConfig } from "../support/telemetry.ts";
import { waitFor } from "../support/wait.ts";

const hasMosquitto = mosquittoBinary() !== undefined;
if (!hasMosquitto)
  console.warn("SKIPPING MQTT tests: the mosquitto binary is not installed (apt-get install mosquitto)");

const BASE = { sample_interval: "1s", batch_interval: "1s", heartbeat_interval: "1s" };

async function nodeOf(hub: { api: <T>(p: string) => Promise<{ status: number; body: T }> }, id: string) {
  const r = await hub.api<NodeJson>(`/api/v1/nodes/${id}`);
  return r.status === 200 ? r.body : undefined;
}

describe("telemetry end to end", () => {
  test.skipIf(!hasMosquitto)(
    "an agent over WebSocket and an agent over MQTT both show as ready with queryable series",
    async () => {
      using dir = tempDir();
      await using broker = await startMosquitto(dir.path);
      await using hub = await startHub({ data: join(dir.path, "hub"), mqtt: broker.url });
      await using wsAgent = await startAgent({
        data: join(dir.path, "ws"),
        nodeId: "edge-ws",
        hub: hub.wsUrl,
        joinToken: hub.joinToken,
        args: ["--batch-interval", "1s"],
      });
      await using mqttAgent = await startAgent({
        data: join(dir.path, "mqtt"),
        nodeId: "edge-mqtt",
        hub: broker.url,
        joinToken: hub.joinToken,
        args: ["--batch-interval", "1s"],
      });
      const nodes = await waitFor(
        async () => {
          const r = await hub.api<{ nodes: { id: string; status: string; connected: boolean }[] }>(
            "/api/v1/nodes",
          );
          const ready = r.body.nodes.filter((n) => n.status === "ready" && n.connected).map((n) => n.id);
          return ready.includes("edge-ws") && ready.includes("edge-mqtt") ? r.body.nodes : undefined;
        },
        { what: "both agents to be ready" },
      );
      expect(nodes.map((n) => n.id).sort()).toEqual(["edge-mqtt", "edge-ws"]);
      for (const id of ["edge-ws", "edge-mqtt"]) {
        const series = await waitFor(
          async () => {
            const r = await hub.api<{ series: string[] }>(`/api/v1/nodes/${id}/series`);
            return r.body.series.includes("cpu.util") ? r.body.series : undefined;
          },
          { what: `${id} series` },
        );
        expect(series).toContain("mem.used_pct");
        const r = await hub.api<{ series: string; points: [number, number][] }>(
          `/api/v1/nodes/${id}/metrics?series=mem.used_pct&from=0`,
        );
        expect(r.status).toBe(200);
        expect(r.body.points.length).toBeGreaterThan(0);
        for (const [t, v] of r.body.points) {
          expect(t).toBeGreaterThan(Date.now() - 120_000);
          expect(v).toBeGreaterThan(0);
          expect(v).toBeLessThanOrEqual(100);
        }
      }
      expect((await nodeOf(hub, "edge-mqtt"))?.ingest.samples).toBeGreaterThan(0);
      void mqttAgent;
      void wsAgent;
    },
    60_000,
  );

  test.skipIf(!hasMosquitto)(
    "hub killed with SIGKILL for 30 s and restarted: nothing lost, nothing twice, resends counted as duplicates",
    async () => {
      using dir = tempDir();
      await using broker = await startMosquitto(dir.path);
      await using hub = await startHub({ data: join(dir.path, "hub"), mqtt: broker.url });
      // The WebSocket agent reaches the hub through a proxy that can stall the hub's replies.
      using proxy = startTcpProxy(hub.port);
      const agents = [];
      for (const [id, url] of [
        ["crash-ws", `ws://127.0.0.1:${proxy.port}`],
        ["crash-mqtt", broker.url],
      ] as const) {
        const config = join(dir.path, `${id}.yaml`);
        writeAgentConfig(config, BASE);
        agents.push({
          config,
          agent: await startAgent({
            data: join(dir.path, id),
            nodeId: id,
            hub: url,
            joinToken: hub.joinToken,
            args: ["--config", config],
          }),
        });
      }
      for (const { agent } of agents) {
        await waitFor(async () => ((await nodeOf(hub, agent.nodeId))?.ingest.samples ?? 0) > 0, {
          what: `${agent.nodeId} first samples`,
        });
      }
      // A stalled link: acks come late, the agent resends what the hub already stored.
      // Held longer than the ack timeout (heartbeat + 1 s) but shorter than the silence limit (3 heartbeats + 2 s).
      proxy.holdDownstream();
      await Bun.sleep(4500);
      proxy.resumeDownstream();
      await waitFor(async () => ((await nodeOf(hub, "crash-ws"))?.ingest.duplicates ?? 0) > 0, {
        what: "the hub to count the resent batches as duplicates",
      });
      await hub.proc.kill("SIGKILL");
      await Bun.sleep(30_000);
      for (const { agent } of agents) {
        const s = await agent.status();
        expect(s.connected).toBe(false);
        expect(s.outbox.pending).toBeGreaterThan(10);
      }
      await hub.restart();
      for (const { agent, config } of agents) {
        const r = await quiesce(agent, hub, config, BASE);
        expectNothingLost(r);
        expect(r.dropped).toBe(0);
        if (agent.nodeId === "crash-ws") expect(r.node.ingest.duplicates).toBeGreaterThan(0);
        await agent[Symbol.asyncDispose]();
      }
      void broker;
    },
    150_000,
  );

  test("agent killed with SIGKILL in the middle of flushing, again and again: nothing lost, nothing twice", async () => {
    using dir = tempDir();
    await using hub = await startHub({ data: join(dir.path, "hub") });
    const config = join(dir.path, "agent.yaml");
    const base = { ...BASE, sample_interval: "200ms" };
    writeAgentConfig(config, base);
    await using agent = await startAgent({
      data: join(dir.path, "agent"),
      nodeId: "killed",
      hub: hub.wsUrl,
      joinToken: hub.joinToken,
      args: ["--config", config],
    });
    // A backlog first, so that kills land while the outbox is draining.
    await hub.proc.kill("SIGKILL");
    await Bun.sleep(4000);
    await hub.restart();
    for (let i = 0; i < 5; i++) {
      await Bun.sleep(300 + Math.floor(Math.random() * 1200));
      await agent.restart();
    }
    await waitFor(async () => (await agent.status()).connected, { what: "agent to reconnect" });
    const r = await quiesce(agent, hub, config, base);
    expectNothingLost(r);
    expect(r.node.ingest.batches).toBeGreaterThan(5);
  }, 120_000);

  test.skipIf(!hasMosquitto)(
    "broker restarted under an MQTT agent: it reconnects and nothing is lost",
    async () => {
      using dir = tempDir();
      await using broker = await startMosquitto(dir.path);
      await using hub = await startHub({ data: join(dir.path, "hub"), mqtt: broker.url });
      const config = join(dir.path, "agent.yaml");
      writeAgentConfig(config, BASE);
      await using agent = await startAgent({
        data: join(dir.path, "agent"),
        nodeId: "via-broker",
        hub: broker.url,
        joinToken: hub.joinToken,
        args: ["--config", config],
      });
      await waitFor(async () => ((await nodeOf(hub, "via-broker"))?.ingest.samples ?? 0) > 0, {
        what: "samples",
      });
      await broker.restart(3000);
      await waitFor(async () => !(await agent.status()).connected || true);
      const r = await quiesce(agent, hub, config, BASE);
      expectNothingLost(r);
      const sessions = ((await agent.status()).link as { sessions: number }).sessions;
      expect(sessions).toBeGreaterThanOrEqual(2);
    },
    120_000,
  );
});

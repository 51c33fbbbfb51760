// End to end: points pushed at sub-second times (HTTP and a local MQTT topic) reach the hub one for one, at their times.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { MqttClient } from "../../shared/mqtt/index.ts";
import { mosquittoBinary, startMosquitto } from "../support/mosquitto.ts";
import { startAgent, startHub, tempDir } from "../support/processes.ts";
import { expectNothingLost, quiesce, writeAgentConfig } from "../support/telemetry.ts";
import { waitFor } from "../support/wait.ts";

const SERIES = "app.vibration";

test("10 points a second for a minute, half over HTTP and half over MQTT: all 600 stored at the hub and queried back by timestamp; a same-millisecond pair folds and is counted", async () => {
  if (!mosquittoBinary()) throw new Error("mosquitto is not installed (.ci/run installs it)");
  using dir = tempDir();
  await using broker = await startMosquitto(dir.path);
  await using hub = await startHub({ data: join(dir.path, "hub") });
  const base = {
    batch_interval: "1s",
    heartbeat_interval: "1s",
    ingest_mqtt: { url: broker.url, topics: ["apps/#"] },
  };
  const config = join(dir.path, "agent.yaml");
  writeAgentConfig(config, base);
  await using agent = await startAgent({
    data: join(dir.path, "agent"),
    nodeId: "fast-app",
    hub: hub.wsUrl,
    joinToken: hub.joinToken,
    args: ["--config", config],
  });
  await waitFor(async () => (await agent.status()).ingest_mqtt?.connected, { what: "the MQTT subscription" });
  const push = async (points: unknown[]) => {
    const r = await fetch(`${agent.apiUrl}/v1/ingest`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ points }),
    });
    expect(r.status).toBe(202);
    return (await r.json()) as { accepted: number };
  };

  // The last minute at 10 points a second (100 ms apart, off the whole second by 37 ms): what an
  // application sampling at 10 Hz pushes, once a second over HTTP and point by point over MQTT.
  const t0 = Math.floor(Date.now() / 1000) * 1000 - 61_000 + 37;
  const points = Array.from({ length: 600 }, (_, i) => ({ series: SERIES, t: t0 + i * 100, value: i / 4 }));
  const client = await MqttClient.connect(broker.url, { clientId: "fast-app-publisher" });
  try {
    for (let s = 0; s < 60; s++) {
      const second = points.slice(s * 10, s * 10 + 10);
      expect(await push(second.filter((_, i) => i % 2 === 0))).toEqual({ accepted: 5 });
      for (const p of second.filter((_, i) => i % 2 === 1))
        await client.publish("apps/vibration", JSON.stringify({ points: [p] }), { qos: 1 });
    }
  } finally {
    await client.end();
  }
  await waitFor(async () => (await agent.status()).ingest_mqtt?.points === 300, {
    what: "the 300 MQTT points to arrive",
  });
  // Points without a time take the agent's clock on arrival: 10 a second, in real time, all kept.
  for (let i = 0; i < 20; i++) {
    await push([{ series: "app.live", value: i }]);
    await Bun.sleep(100);
  }
  // Two points of one series at the same millisecond: the later one stays, the earlier one is folded.
  const same = t0 - 5000;
  await push([
    { series: "app.dup", t: same, value: 1 },
    { series: "app.dup", t: same, value: 2 },
  ]);

  const r = await quiesce(agent, hub, config, base);
  expectNothingLost(r);
  const status = await agent.status();
  expect(status.samples.folded).toBe(1);
  expect(r.dropped).toBe(1);

  const query = async (series: string, from = 0, to = Date.now() + 60_000) =>
    (
      await hub.api<{ points: [number, number][] }>(
        `/api/v1/nodes/fast-app/metrics?series=${series}&from=${from}&to=${to}`,
      )
    ).body.points;
  expect(await query(SERIES)).toEqual(points.map((p) => [p.t, p.value]));
  // By timestamp: one second of it is its ten points.
  expect(await query(SERIES, t0 + 10_000, t0 + 10_999)).toEqual(
    points.slice(100, 110).map((p) => [p.t, p.value]),
  );
  const live = await query("app.live");
  expect(live.map((p) => p[1])).toEqual(Array.from({ length: 20 }, (_, i) => i));
  expect(new Set(live.map((p) => p[0])).size).toBe(20);
  expect(await query("app.dup")).toEqual([[same, 2]]);
}, 90_000);

// End to end: local applications push points and use the cache; pipelines turn points into series and alerts.
import { expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { MqttClient } from "../../shared/mqtt/index.ts";
import { encodeCbor } from "../../shared/protocol/index.ts";
import { mosquittoBinary, startMosquitto } from "../support/mosquitto.ts";
import { startAgent, startHub, tempDir } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";

test("pushed points flow through a pipeline to a derived series and an alert at the hub; bad bodies get 4xx naming the field; the cache stores, serves and deletes", async () => {
  using dir = tempDir();
  await using hub = await startHub({ data: join(dir.path, "hub") });
  const config = join(dir.path, "agent.yaml");
  writeFileSync(
    config,
    [
      "batch_interval: 1s",
      "heartbeat_interval: 1s",
      "pipelines:",
      "  - name: vibration",
      '    source: "sensor.vibration"',
      "    steps:",
      '      - derive: { series: "sensor.vibration_g", expr: "value / 9.81" }',
      '      - threshold: { above: 5, severity: critical, message: "vibration over 5 g" }',
      "",
    ].join("\n"),
  );
  await using agent = await startAgent({
    data: join(dir.path, "agent"),
    nodeId: "sensors",
    hub: hub.wsUrl,
    joinToken: hub.joinToken,
    args: ["--config", config],
  });
  const ingest = (body: string | Uint8Array, type = "application/json") =>
    fetch(`${agent.apiUrl}/v1/ingest`, { method: "POST", headers: { "content-type": type }, body });

  const ok = await ingest(JSON.stringify({ points: [{ series: "sensor.vibration", value: 9.81 }] }));
  expect(ok.status).toBe(202);
  expect(await ok.json()).toEqual({ accepted: 1 });
  const viaCbor = await ingest(encodeCbor([{ series: "sensor.vibration", value: 98.1 }]), "application/cbor");
  expect(viaCbor.status).toBe(202);
  await waitFor(
    async () => {
      const a = await hub.api<{ alerts: { node: string; severity: string; message: string }[] }>(
        "/api/v1/alerts",
      );
      return a.body.alerts.some((x) => x.node === "sensors" && x.severity === "critical");
    },
    { what: "the pipeline's alert at the hub" },
  );
  await waitFor(
    async () => {
      const s = await hub.api<{ series: string[] }>("/api/v1/nodes/sensors/series");
      return s.body.series?.includes("sensor.vibration") && s.body.series.includes("sensor.vibration_g");
    },
    { what: "the pushed and the derived series at the hub" },
  );

  const bad: [string | Uint8Array, string, string][] = [
    ["{nope", "application/json", "body"],
    [
      JSON.stringify({ points: [{ series: "sensor.x", value: "high" }] }),
      "application/json",
      "points.0.value",
    ],
    [JSON.stringify({ points: [{ series: "Bad Name!", value: 1 }] }), "application/json", "points.0.series"],
    [new Uint8Array([0xff, 0xfe, 0x00]), "application/cbor", "body"],
    [
      JSON.stringify({ points: Array.from({ length: 10_001 }, () => ({ series: "s", value: 1 })) }),
      "application/json",
      "points",
    ],
  ];
  for (const [body, type, field] of bad) {
    const r = await ingest(body, type);
    expect(r.status).toBe(400);
    expect(((await r.json()) as { error: { field: string } }).error.field).toBe(field);
  }
  const huge = await ingest("x".repeat(5 * 1024 * 1024));
  expect(huge.status).toBe(400);

  const cache = (key: string, init?: RequestInit) => fetch(`${agent.apiUrl}/v1/cache/${key}`, init);
  expect((await cache("price:AAPL", { method: "PUT", body: "189.32" })).status).toBe(200);
  const got = await cache("price:AAPL");
  expect(got.status).toBe(200);
  expect(await got.text()).toBe("189.32");
  expect((await cache("price:AAPL", { method: "PUT", body: "1", headers: {} })).status).toBe(200);
  expect((await cache("tmp?ttl_ms=-5", { method: "PUT", body: "x" })).status).toBe(400);
  expect((await cache("big", { method: "PUT", body: "x".repeat(2 * 1024 * 1024) })).status).toBe(400);
  expect((await cache("price:AAPL", { method: "DELETE" })).status).toBe(204);
  expect((await cache("price:AAPL")).status).toBe(404);
  const metrics = await (await fetch(`${agent.apiUrl}/metrics`)).text();
  expect(metrics).toContain("novacron_agent_samples_total");
  // Nothing above disturbed the agent: it is still connected and sampling.
  expect((await agent.status()).connected).toBe(true);
}, 60_000);

test("hub-pushed cache entries reach the nodes they target, also ones that connect later; an older version never replaces a newer one", async () => {
  using dir = tempDir();
  await using hub = await startHub({ data: join(dir.path, "hub") });
  const put = (body: unknown) =>
    hub.api<{ delivered_now: string[]; error?: { field: string } }>("/api/v1/cache", {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  // Stored before any node exists: delivered when a targeted node says hello.
  expect((await put({ key: "tariff", value: "v1", version: 1, target: { levels: [4, 4] } })).status).toBe(
    200,
  );
  await using access = await startAgent({
    data: join(dir.path, "access"),
    nodeId: "access",
    hub: hub.wsUrl,
    joinToken: hub.joinToken,
    args: ["--level", "4"],
  });
  await using device = await startAgent({
    data: join(dir.path, "device"),
    nodeId: "device",
    hub: hub.wsUrl,
    joinToken: hub.joinToken,
    args: ["--level", "5"],
  });
  const read = async (a: { apiUrl: string }) => {
    const r = await fetch(`${a.apiUrl}/v1/cache/tariff`);
    return r.status === 200 ? await r.text() : undefined;
  };
  await waitFor(async () => (await read(access)) === "v1", { what: "the entry on the targeted node" });
  await waitFor(async () => (await device.status()).connected, { what: "the other node connected" });
  expect(await read(device)).toBeUndefined();

  const v2 = await put({ key: "tariff", value: "v2", version: 2, target: { levels: [4, 4] } });
  expect(v2.body.delivered_now).toEqual(["access"]);
  await waitFor(async () => (await read(access)) === "v2", { what: "the newer version" });
  const older = await put({ key: "tariff", value: "v0", version: 1, target: { levels: [4, 4] } });
  expect(older.status).toBe(400);
  expect(older.body.error?.field).toBe("version");
  expect((await put({ key: "x", value: "y", version: 0 })).body.error?.field).toBe("version");
  // A restarted node keeps v2 from its own store, and the hub's resend on hello changes nothing.
  await access.restart();
  await waitFor(async () => (await access.status()).connected, { what: "reconnect" });
  expect(await read(access)).toBe("v2");
}, 60_000);

test("points published to a local MQTT topic reach the hub as series, a bad payload is counted and the next one still arrives", async () => {
  if (!mosquittoBinary()) throw new Error("mosquitto is not installed (.ci/run installs it)");
  using dir = tempDir();
  await using broker = await startMosquitto(dir.path);
  await using hub = await startHub({ data: join(dir.path, "hub") });
  await using agent = await startAgent({
    data: join(dir.path, "agent"),
    nodeId: "mqtt-sensors",
    hub: hub.wsUrl,
    joinToken: hub.joinToken,
    args: [
      "--batch-interval",
      "1s",
      "--ingest-mqtt",
      JSON.stringify({ url: broker.url, topics: ["sensors/#"] }),
    ],
  });
  await waitFor(async () => (await agent.status()).ingest_mqtt?.connected, {
    what: "the agent to subscribe",
  });
  const client = await MqttClient.connect(broker.url, { clientId: "sensor-app" });
  try {
    await client.publish("sensors/room1.temp", "21.5", { qos: 1 });
    await client.publish("sensors/junk", "{not json", { qos: 1 });
    await client.publish(
      "sensors/batch",
      JSON.stringify({ points: [{ series: "room2.humidity", value: 40 }] }),
      { qos: 1 },
    );
    await waitFor(
      async () => {
        const s = await hub.api<{ series?: string[] }>("/api/v1/nodes/mqtt-sensors/series");
        return s.body.series?.includes("room1.temp") && s.body.series.includes("room2.humidity");
      },
      { what: "the published series at the hub" },
    );
    const stats = (await agent.status()).ingest_mqtt!;
    expect(stats.bad_payloads).toBe(1);
    expect(stats.points).toBe(2);
  } finally {
    await client.end();
  }
}, 60_000);

// Specification of MQTT ingest: points published to a local broker arrive as if POSTed to /v1/ingest.
import { describe, expect, test } from "bun:test";
import { Encoder } from "cbor-x/encode";
import { type AgentConfig, loadAgentConfig } from "../../agent/config/index.ts";
import { type IngestPoint, MqttIngest, parseMqttPayload } from "../../agent/stream/index.ts";
import { ConfigError, RequestError } from "../../shared/errors.ts";
import { createLogger } from "../../shared/log.ts";
import { MqttClient } from "../../shared/mqtt/index.ts";
import { mosquittoBinary, startMosquitto } from "../support/mosquitto.ts";
import { tempDir } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";

const hasMosquitto = mosquittoBinary() !== undefined;
if (!hasMosquitto) console.warn("SKIPPING MQTT ingest broker tests: the mosquitto binary is not installed");

const NOW = 1_718_000_000_000;
const cbor = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });
const utf8 = (s: string) => new TextEncoder().encode(s);

function refused(topic: string, payload: Uint8Array): RequestError {
  try {
    parseMqttPayload(topic, payload, NOW);
  } catch (err) {
    if (err instanceof RequestError) return err;
    throw err;
  }
  throw new Error(`accepted: ${new TextDecoder().decode(payload)}`);
}

describe("mqtt ingest payloads", () => {
  const doc = { points: [{ series: "app.queue_depth", value: 12, t: NOW - 5000 }] };
  const expected = [{ series: "app.queue_depth", t: NOW - 5000, value: 12 }];

  test("a JSON or CBOR /v1/ingest body gives the same points, told apart by the first byte", () => {
    expect(parseMqttPayload("a/b", utf8(JSON.stringify(doc)), NOW)).toEqual(expected);
    expect(parseMqttPayload("a/b", utf8(` \n${JSON.stringify(doc.points)}`), NOW)).toEqual(expected);
    expect(parseMqttPayload("a/b", utf8(`\uFEFF${JSON.stringify(doc)}`), NOW)).toEqual(expected);
    expect(parseMqttPayload("a/b", cbor.encode(doc), NOW)).toEqual(expected);
    expect(parseMqttPayload("a/b", cbor.encode(doc.points), NOW)).toEqual(expected);
  });

  test("a bare number takes its series from the topic's last level and the time from the clock", () => {
    expect(parseMqttPayload("sensors/room1.temp", utf8("21.5"), NOW)).toEqual([
      { series: "room1.temp", t: NOW, value: 21.5 },
    ]);
    expect(parseMqttPayload("pressure", utf8(" -1e3\n"), NOW)).toEqual([
      { series: "pressure", t: NOW, value: -1000 },
    ]);
  });

  test("bad payloads are refused naming what is wrong", () => {
    const cases: [string, Uint8Array, string | undefined, RegExp][] = [
      ["a/b", utf8("hello"), "body", /invalid JSON/],
      ["a/b", utf8(""), "body", /invalid JSON/],
      ["a/b", utf8('{"points":[{"series":"x","value":"1.5"}]}'), "points.0.value", /finite number/],
      ["a/b", utf8('{"points":[{"series":"a b","value":1}]}'), "points.0.series", /letters, digits/],
      ["a/b", utf8('{"dots":[]}'), "dots", /unknown field/],
      ["a/b", new Uint8Array([0xa1, 0x66, 0x70, 0xff]), "body", /invalid CBOR/],
      ["a/b", cbor.encode({ points: [{ series: "x", value: "1" }] }), "points.0.value", /finite number/],
      ["a/room temp", utf8("21"), "topic", /last level is a series name/],
      ["a/", utf8("21"), "topic", /last level is a series name/],
      ["a/x", utf8("1e999"), "value", /finite number/],
    ];
    for (const [topic, payload, field, message] of cases) {
      const err = refused(topic, payload);
      expect(err.field).toBe(field);
      expect(err.message).toMatch(message);
    }
  });
});

/** A running MqttIngest collecting its points and log lines, stopped when the test's scope ends. */
function ingestFrom(url: string, topics: string[], extra: { logEveryMs?: number } = {}) {
  const points: IngestPoint[] = [];
  const logs: string[] = [];
  const ingest = new MqttIngest({
    url,
    topics,
    clientId: `ingest-${crypto.randomUUID().slice(0, 8)}`,
    log: createLogger("ingest", { write: (l) => logs.push(l), journald: false }),
    ingest: (p) => points.push(...p),
    backoff: { baseMs: 50, capMs: 200 },
    ...extra,
  });
  ingest.start();
  return { ingest, points, logs, [Symbol.asyncDispose]: () => ingest.stop() };
}

async function publisher(url: string): Promise<MqttClient & AsyncDisposable> {
  const client = await MqttClient.connect(url, { clientId: `pub-${crypto.randomUUID().slice(0, 8)}` });
  return Object.assign(client, { [Symbol.asyncDispose]: () => client.end() });
}

describe.skipIf(!hasMosquitto)("mqtt ingest against mosquitto", () => {
  test("JSON, CBOR and bare-number messages on the subscribed filters arrive as points; other topics do not", async () => {
    using dir = tempDir();
    await using broker = await startMosquitto(dir.path);
    await using sub = ingestFrom(broker.url, ["sensors/#", "apps/+/points"]);
    await waitFor(() => sub.ingest.stats().connected, { timeoutMs: 5000, what: "subscribed" });
    await using pub = await publisher(broker.url);
    const t = Date.now();
    await pub.publish("apps/billing/points", JSON.stringify({ points: [{ series: "app.a", value: 1, t }] }), {
      qos: 1,
    });
    await pub.publish("apps/billing/points", cbor.encode([{ series: "app.b{k=v}", value: 2.5, t }]), {
      qos: 1,
    });
    await pub.publish("other/x", JSON.stringify([{ series: "app.ignored", value: 9 }]), { qos: 1 });
    await pub.publish("sensors/hall/room1.temp", "21.5", { qos: 0 });
    await waitFor(() => sub.points.length >= 3, { timeoutMs: 5000, what: "three points" });
    expect(sub.points.slice(0, 2)).toEqual([
      { series: "app.a", t, value: 1 },
      { series: "app.b{k=v}", t, value: 2.5 },
    ]);
    expect(sub.points[2]).toMatchObject({ series: "room1.temp", value: 21.5 });
    expect(sub.points).toHaveLength(3);
    expect(sub.ingest.stats()).toMatchObject({ connected: true, messages: 3, points: 3, bad_payloads: 0 });
  });

  test("bad payloads are counted and logged once per interval naming the field; the next good message still arrives", async () => {
    using dir = tempDir();
    await using broker = await startMosquitto(dir.path);
    await using sub = ingestFrom(broker.url, ["in/#"], { logEveryMs: 60_000 });
    await waitFor(() => sub.ingest.stats().connected, { timeoutMs: 5000, what: "subscribed" });
    await using pub = await publisher(broker.url);
    await pub.publish("in/a", '{"points":[{"series":"x","value":"1.5"}]}', { qos: 1 });
    await pub.publish("in/a", "garbage", { qos: 1 });
    await pub.publish("in/a", new Uint8Array([0xa1, 0x66, 0xff]), { qos: 1 });
    await pub.publish("in/a", JSON.stringify([{ series: "good", value: 7 }]), { qos: 1 });
    await waitFor(() => sub.points.length === 1, { timeoutMs: 5000, what: "the good point" });
    expect(sub.points[0]).toMatchObject({ series: "good", value: 7 });
    expect(sub.ingest.stats()).toMatchObject({ connected: true, messages: 4, points: 1, bad_payloads: 3 });
    const warnings = sub.logs.filter((l) => l.includes("bad payload"));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("topic=in/a");
    expect(warnings[0]).toContain("field=points.0.value");
    expect(warnings[0]).toContain("finite number");
  });

  test("retained messages the broker replays on subscribe are skipped, not ingested with a new time", async () => {
    using dir = tempDir();
    await using broker = await startMosquitto(dir.path);
    await using pub = await publisher(broker.url);
    await pub.publish("sensors/old", "1", { qos: 1, retain: true });
    await using sub = ingestFrom(broker.url, ["sensors/#"]);
    await waitFor(() => sub.ingest.stats().connected, { timeoutMs: 5000, what: "subscribed" });
    await pub.publish("sensors/new", "2", { qos: 1 });
    await waitFor(() => sub.points.length === 1, { timeoutMs: 5000, what: "the live point" });
    expect(sub.points.map((p) => p.series)).toEqual(["new"]);
    expect(sub.ingest.stats()).toMatchObject({ messages: 2, retained_skipped: 1 });
  });

  test("reconnects and subscribes again after the broker restarts, and receives again", async () => {
    using dir = tempDir();
    await using broker = await startMosquitto(dir.path);
    await using sub = ingestFrom(broker.url, ["sensors/#"]);
    await waitFor(() => sub.ingest.stats().connected, { timeoutMs: 5000, what: "subscribed" });
    await broker.restart(300);
    await waitFor(() => sub.ingest.stats().connects === 2 && sub.ingest.stats().connected, {
      timeoutMs: 5000,
      what: "a second subscription",
    });
    expect(sub.logs.some((l) => l.includes("MQTT ingest connection lost"))).toBe(true);
    await using pub = await publisher(broker.url);
    await pub.publish("sensors/after", "3", { qos: 1 });
    await waitFor(() => sub.points.length === 1, { timeoutMs: 5000, what: "a point after the restart" });
    expect(sub.points[0]).toMatchObject({ series: "after", value: 3 });
  });

  test("stop() ends a loop that never reached the broker, and is safe before start() and twice", async () => {
    const never = new MqttIngest({
      url: "mqtt://127.0.0.1:1",
      topics: ["x"],
      clientId: "c",
      log: createLogger("ingest", { write: () => {} }),
      ingest: () => {},
    });
    await never.stop();
    const retrying = ingestFrom("mqtt://127.0.0.1:1", ["x"]);
    await waitFor(() => retrying.logs.some((l) => l.includes("cannot reach MQTT broker")), {
      timeoutMs: 5000,
      what: "a failed attempt",
    });
    await retrying.ingest.stop();
    await retrying.ingest.stop();
    expect(retrying.ingest.stats().connected).toBe(false);
  });
});

describe("ingest_mqtt config", () => {
  function run(env: Record<string, string>): AgentConfig {
    const loaded = loadAgentConfig(["--config", ""], env);
    if (loaded.action !== "run") throw new Error(`unexpected action ${loaded.action}`);
    return loaded.config;
  }

  function configError(value: unknown): ConfigError {
    try {
      run({ NOVACRON_INGEST_MQTT: JSON.stringify(value) });
    } catch (err) {
      if (err instanceof ConfigError) return err;
      throw err;
    }
    throw new Error(`accepted: ${JSON.stringify(value)}`);
  }

  test("absent is off; a URL with topic filters is accepted from the environment or a flag", () => {
    expect(run({}).ingest_mqtt).toEqual({ url: "", topics: [] });
    const on = { url: "mqtt://127.0.0.1:1883", topics: ["sensors/#", "apps/+/points"] };
    expect(run({ NOVACRON_INGEST_MQTT: JSON.stringify(on) }).ingest_mqtt).toEqual(on);
    const loaded = loadAgentConfig(["--config", "", "--ingest-mqtt", JSON.stringify(on)], {});
    expect(loaded.action === "run" && loaded.config.ingest_mqtt).toEqual(on);
  });

  test("a bad value is refused naming the field and where it came from", () => {
    const cases: [unknown, string, RegExp][] = [
      ["mqtt://127.0.0.1:1883", "ingest_mqtt", /must be a map/],
      [{ url: "mqtt://h", topics: ["a"], qos: 1 }, "ingest_mqtt.qos", /unknown key/],
      [{ url: "http://h:1883", topics: ["a"] }, "ingest_mqtt.url", /mqtt:\/\/ or mqtts:\/\//],
      [{ url: 1883, topics: ["a"] }, "ingest_mqtt.url", /string/],
      [{ topics: ["a"] }, "ingest_mqtt.url", /required/],
      [{ url: "mqtt://h" }, "ingest_mqtt.topics", /at least one/],
      [{ url: "mqtt://h", topics: "a/#" }, "ingest_mqtt.topics", /list/],
      [{ url: "mqtt://h", topics: ["a", ""] }, "ingest_mqtt.topics.1", /non-empty/],
      [{ url: "mqtt://h", topics: ["a/#/b"] }, "ingest_mqtt.topics.0", /'#' must be the whole last level/],
      [{ url: "mqtt://h", topics: ["a/b#"] }, "ingest_mqtt.topics.0", /'#'/],
      [{ url: "mqtt://h", topics: ["a/x+/b"] }, "ingest_mqtt.topics.0", /'\+' must be a whole level/],
    ];
    for (const [value, field, message] of cases) {
      const err = configError(value);
      expect(err.field).toBe(field);
      expect(err.message).toStartWith(`${field}: `);
      expect(err.message).toMatch(message);
      expect(err.message).toContain("NOVACRON_INGEST_MQTT");
    }
  });

  test("a URL's password is not echoed in the error", () => {
    const err = configError({ url: "http://user:s3cret@h", topics: ["a"] });
    expect(err.message).not.toContain("s3cret");
  });
});

// Specification of the MQTT 3.1.1 client against a real Mosquitto, and of its packet reader against hostile bytes.
import { describe, expect, test } from "bun:test";
import { MqttClient, MqttProtocolError } from "../../shared/mqtt/index.ts";
import { PacketReader, PacketType, publishPacket } from "../../shared/mqtt/packets.ts";
import { mosquittoBinary, startMosquitto } from "../support/mosquitto.ts";
import { freePort } from "../support/ports.ts";
import { tempDir } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";

const hasMosquitto = mosquittoBinary() !== undefined;
if (!hasMosquitto) console.warn("SKIPPING MQTT client tests: the mosquitto binary is not installed");
const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe("mqtt packet reader", () => {
  test("reassembles packets fed one byte at a time", () => {
    const reader = new PacketReader(1 << 20);
    const bytes = publishPacket("a/b", new Uint8Array(300).fill(7), { qos: 1, retain: true, id: 42 });
    const got = [];
    for (const b of bytes) got.push(...reader.push(new Uint8Array([b])));
    expect(got).toHaveLength(1);
    const p = got[0]!;
    expect(p.type).toBe(PacketType.Publish);
    if (p.type !== PacketType.Publish) return;
    expect(p).toMatchObject({ topic: "a/b", qos: 1, retain: true, id: 42 });
    expect(p.payload).toEqual(new Uint8Array(300).fill(7));
  });

  test("refuses a remaining length of more than four bytes, an oversize packet, QoS 3 and truncated bodies", () => {
    const cases: [number[], RegExp][] = [
      [[0x30, 0xff, 0xff, 0xff, 0xff, 0x01], /longer than 4 bytes/],
      [[0x30, 0xff, 0xff, 0x7f], /exceeds/],
      [[0x36, 0x02, 0x00, 0x00], /QoS 3/],
      [[0x20, 0x01, 0x00], /CONNACK is truncated/],
      [[0x30, 0x03, 0x00, 0x05, 0x61], /PUBLISH is truncated/],
      [[0xf0, 0x00], /unexpected packet type 15/],
    ];
    for (const [bytes, message] of cases) {
      const reader = new PacketReader(1 << 20);
      expect(() => reader.push(new Uint8Array(bytes))).toThrow(MqttProtocolError);
      expect(() => new PacketReader(1 << 20).push(new Uint8Array(bytes))).toThrow(message);
    }
  });
});

describe.skipIf(!hasMosquitto)("mqtt client against mosquitto", () => {
  test("publishes and receives at QoS 0 and 1, byte for byte, up to 1 MiB", async () => {
    using dir = tempDir();
    await using broker = await startMosquitto(dir.path);
    const sub = await MqttClient.connect(broker.url, { clientId: "sub" });
    const got: { topic: string; payload: Uint8Array; qos: number }[] = [];
    sub.onMessage((m) => got.push(m));
    expect(await sub.subscribe([{ topic: "t/#", qos: 1 }])).toEqual([1]);
    const pub = await MqttClient.connect(broker.url, { clientId: "pub" });
    const big = new Uint8Array(1024 * 1024).map((_, i) => i % 251);
    await pub.publish("t/zero", "q0", { qos: 0 });
    await pub.publish("t/one", "q1", { qos: 1 });
    await pub.publish("t/big", big, { qos: 1 });
    await waitFor(() => got.length === 3, { what: "three messages" });
    expect(got.map((m) => m.topic)).toEqual(["t/zero", "t/one", "t/big"]);
    expect(text(got[1]!.payload)).toBe("q1");
    expect(got[2]!.payload).toEqual(big);
    expect(pub.inflight).toBe(0);
    await pub.end();
    await sub.end();
  });

  test("a retained message reaches a later subscriber, flagged as retained", async () => {
    using dir = tempDir();
    await using broker = await startMosquitto(dir.path);
    const pub = await MqttClient.connect(broker.url, { clientId: "pub" });
    await pub.publish("state/x", "kept", { qos: 1, retain: true });
    const sub = await MqttClient.connect(broker.url, { clientId: "late" });
    const got: { retain: boolean; payload: Uint8Array }[] = [];
    sub.onMessage((m) => got.push(m));
    await sub.subscribe([{ topic: "state/x", qos: 1 }]);
    await waitFor(() => got.length === 1, { what: "the retained message" });
    expect(got[0]!.retain).toBe(true);
    expect(text(got[0]!.payload)).toBe("kept");
    await pub.end();
    await sub.end();
  });

  test("the Will is published when the connection drops, and not after a clean end", async () => {
    using dir = tempDir();
    await using broker = await startMosquitto(dir.path);
    const watcher = await MqttClient.connect(broker.url, { clientId: "watcher" });
    const wills: string[] = [];
    watcher.onMessage((m) => wills.push(`${m.topic}=${text(m.payload)}`));
    await watcher.subscribe([{ topic: "will/#", qos: 1 }]);
    const clean = await MqttClient.connect(broker.url, {
      clientId: "clean",
      will: { topic: "will/clean", payload: "gone", qos: 1, retain: false },
    });
    await clean.end();
    const crashed = await MqttClient.connect(broker.url, {
      clientId: "crashed",
      will: { topic: "will/crashed", payload: "gone", qos: 1, retain: false },
    });
    crashed.destroy();
    await waitFor(() => wills.includes("will/crashed=gone"), { what: "the Will of the dropped client" });
    expect(wills).toEqual(["will/crashed=gone"]);
    await watcher.end();
  });

  test("keepalive pings hold an idle connection open past the keepalive period", async () => {
    using dir = tempDir();
    await using broker = await startMosquitto(dir.path);
    const client = await MqttClient.connect(broker.url, { clientId: "idle", keepaliveSec: 1 });
    let closed: string | undefined;
    client.onClose((r) => {
      closed = r;
    });
    await Bun.sleep(3500);
    expect(closed).toBeUndefined();
    expect(client.connected).toBe(true);
    await client.end();
  });

  test("a broker that dies ends the connection and fails publishes waiting for PUBACK", async () => {
    using dir = tempDir();
    const broker = await startMosquitto(dir.path);
    const client = await MqttClient.connect(broker.url, { clientId: "victim" });
    const reasons: string[] = [];
    client.onClose((r) => reasons.push(r));
    await broker.stop();
    await waitFor(() => reasons.length === 1, { what: "the close to be reported" });
    expect(client.connected).toBe(false);
    expect(client.publish("x", "y", { qos: 1 })).rejects.toThrow(/closed/);
  });

  test("connect fails clearly: nothing listening, or not an MQTT URL", async () => {
    await expect(MqttClient.connect(`mqtt://127.0.0.1:${freePort()}`, { clientId: "x" })).rejects.toThrow();
    await expect(MqttClient.connect("http://127.0.0.1:1", { clientId: "x" })).rejects.toThrow(
      /not an MQTT URL/,
    );
  });

  test("a shared subscription splits messages between 3.1.1 clients in the same group", async () => {
    using dir = tempDir();
    await using broker = await startMosquitto(dir.path);
    const counts = [0, 0];
    const members = await Promise.all(
      [0, 1].map(async (i) => {
        const c = await MqttClient.connect(broker.url, { clientId: `member-${i}` });
        c.onMessage(() => {
          counts[i] = (counts[i] ?? 0) + 1;
        });
        await c.subscribe([{ topic: "$share/hubs/up/#", qos: 1 }]);
        return c;
      }),
    );
    const pub = await MqttClient.connect(broker.url, { clientId: "pub" });
    for (let i = 0; i < 40; i++) await pub.publish(`up/n${i}`, "x", { qos: 1 });
    await waitFor(() => counts[0]! + counts[1]! === 40, { what: "all 40 messages, once each" });
    expect(counts[0]).toBeGreaterThan(0);
    expect(counts[1]).toBeGreaterThan(0);
    await pub.end();
    for (const m of members) await m.end();
  });
});

// End to end: bad frames, strangers and bad join tokens are refused, counted and logged, and nobody else notices.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { MqttClient } from "../../shared/mqtt/index.ts";
import {
  decodeCbor,
  encodeCbor,
  encodeFrame,
  envelope,
  PROTOCOL_VERSION,
} from "../../shared/protocol/index.ts";
import { mosquittoBinary, startMosquitto } from "../support/mosquitto.ts";
import { type HubHandle, startAgent, startHub, tempDir } from "../support/processes.ts";
import { connectSecure, type SecureClient } from "../support/secure-client.ts";
import { expectNothingLost, quiesce, writeAgentConfig } from "../support/telemetry.ts";
import { waitFor } from "../support/wait.ts";

const BASE = { sample_interval: "1s", batch_interval: "1s", heartbeat_interval: "1s" };

/** A raw WebSocket to the hub that records every frame the hub sends back, undecoded. */
async function rawSocket(hub: HubHandle) {
  const ws = new WebSocket(`${hub.wsUrl}/v1/agent`);
  ws.binaryType = "arraybuffer";
  const frames: Uint8Array[] = [];
  let closed = false;
  ws.onmessage = (ev) => frames.push(new Uint8Array(ev.data as ArrayBuffer));
  ws.onclose = () => {
    closed = true;
  };
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error("raw client could not connect"));
  });
  return {
    ws,
    frames,
    get closed() {
      return closed;
    },
  };
}

/** A hub counter by label value, read from /metrics. */
async function counter(hub: HubHandle, family: string, label: string, value: string): Promise<number> {
  const text = await (await fetch(`${hub.url}/metrics`)).text();
  const m = new RegExp(`${family}\\{${label}="${value}"\\} (\\d+)`).exec(text);
  return m ? Number(m[1]) : 0;
}

const rejected = (hub: HubHandle, reason: string) =>
  counter(hub, "novacron_hub_frames_rejected_total", "reason", reason);
const unauthenticated = (hub: HubHandle, reason: string) =>
  counter(hub, "novacron_hub_frames_unauthenticated_total", "reason", reason);

const hello = (node: string, extra: Record<string, unknown> = {}) =>
  envelope("hello", node, {
    node_id: node,
    level: 4,
    labels: {},
    capabilities: [],
    resources: {},
    version: "test",
    boot_id: "b",
    last_acked: 0,
    ...extra,
  } as never);

/** Waits for the next error message a session client receives after `before`. */
async function nextError(
  c: SecureClient,
  before: number,
): Promise<{ code: string; message: string; ref?: number }> {
  const m = await waitFor(() => c.received.slice(before).find((x) => x.t === "error"), {
    what: "an error reply",
  });
  if (m.t !== "error") throw new Error("unreachable");
  return m.b;
}

describe("malformed input", () => {
  test("garbage before a session closes the socket; inside a session bad CBOR, bad bodies and unknown kinds are refused with their reason; a wrong join token is refused; a good agent's data stays complete", async () => {
    using dir = tempDir();
    await using hub = await startHub({ data: join(dir.path, "hub") });
    const config = join(dir.path, "good.yaml");
    writeAgentConfig(config, BASE);
    await using good = await startAgent({
      data: join(dir.path, "good"),
      nodeId: "good",
      hub: hub.wsUrl,
      joinToken: hub.joinToken,
      args: ["--config", config],
    });
    await waitFor(async () => (await good.status()).connected, { what: "good agent connected" });

    // Before a session, garbage costs the sender its socket after a few frames, and is counted.
    const stranger = await rawSocket(hub);
    for (let i = 0; i < 3; i++) stranger.ws.send(new Uint8Array([0xff, 0x00, 0x13, i]));
    await waitFor(() => stranger.closed, { what: "the hub to close a socket sending garbage" });
    expect(await unauthenticated(hub, "unexpected")).toBeGreaterThanOrEqual(3);
    // An oversized frame before a session closes the socket at once (a stranger cannot make the hub buffer it).
    const big = await rawSocket(hub);
    big.ws.send(new Uint8Array(64 * 1024).fill(0x21));
    await waitFor(() => big.closed, {
      what: "the hub to close a socket sending a huge frame before a session",
    });

    // Inside an authenticated session: the same refusals as before, sealed, with the reason named.
    await using bad = await connectSecure(hub.wsUrl, { nodeId: "bad", joinToken: hub.joinToken });
    let at = bad.received.length;
    bad.send(hello("bad", { level: 9 }));
    expect((await nextError(bad, at)).message).toMatch(/field level/);
    at = bad.received.length;
    bad.transport.send(new Uint8Array([0xff, 0x00, 0x13, 0x37]), "event");
    expect((await nextError(bad, at)).code).toBe("bad_cbor");
    at = bad.received.length;
    bad.transport.send(encodeCbor({ v: PROTOCOL_VERSION, t: "teleport", s: "bad", ts: 1, b: {} }), "event");
    expect((await nextError(bad, at)).code).toBe("unknown_type");
    at = bad.received.length;
    bad.transport.send(encodeFrame(envelope("heartbeat", "bad", { pending: 0 })), "heartbeat");
    expect((await nextError(bad, at)).code).toBe("hello_required");
    expect(bad.transport.closed).toBe(false);
    // A wrong join token is refused inside the session, counted, and the connection closed.
    await using intruder = await connectSecure(hub.wsUrl, {
      nodeId: "intruder",
      joinToken: "wrong",
      hubKeys: [bad.transport.hub!.key],
    });
    at = intruder.received.length;
    intruder.send(hello("intruder"));
    const refusal = await nextError(intruder, at);
    expect(refusal.code).toBe("auth_failed");
    expect(refusal.message).toMatch(/join token/);
    await waitFor(() => intruder.transport.closed, { what: "the hub to close the refused session" });

    for (const reason of ["bad_cbor", "bad_body", "unknown_type"]) {
      expect(await rejected(hub, reason)).toBeGreaterThan(0);
    }
    const metrics = await (await fetch(`${hub.url}/metrics`)).text();
    expect(metrics).toMatch(/novacron_hub_auth_failures_total\{transport="ws"\} 1/);
    expect(hub.proc.lines.some((l) => /agent refused .*join token is not valid/.test(l))).toBe(true);
    // The intruder is not registered; the good agent is, and lost nothing.
    expect((await hub.api("/api/v1/nodes/intruder")).status).toBe(404);
    expectNothingLost(await quiesce(good, hub, config, BASE));
  }, 60_000);

  test("an agent pinned to another hub key, or holding a wrong join token with no pin, never talks to the hub and says why", async () => {
    using dir = tempDir();
    await using hub = await startHub({ data: join(dir.path, "hub") });
    const otherKey = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
    await using pinned = await startAgent({
      data: join(dir.path, "pinned"),
      nodeId: "pinned",
      hub: hub.wsUrl,
      joinToken: hub.joinToken,
      args: ["--hub-key", otherKey],
    });
    await using tokenless = await startAgent({
      data: join(dir.path, "tokenless"),
      nodeId: "tokenless",
      hub: hub.wsUrl,
      joinToken: "not-the-token",
    });
    await waitFor(
      () => pinned.proc.lines.some((l) => /which this node does not trust \(check --hub-key\)/.test(l)),
      {
        what: "the pinned agent to refuse the hub's key",
      },
    );
    await waitFor(
      () => tokenless.proc.lines.some((l) => /did not prove it knows this node's join token/.test(l)),
      {
        what: "the agent with a wrong token to refuse the unproven hub",
      },
    );
    expect((await pinned.status()).connected).toBe(false);
    expect((await tokenless.status()).connected).toBe(false);
    expect((await hub.api("/api/v1/nodes/pinned")).status).toBe(404);
    expect((await hub.api("/api/v1/nodes/tokenless")).status).toBe(404);
  }, 60_000);

  test("an agent of protocol 1 gets a refusal in its own framing that names both versions, over WebSocket and MQTT", async () => {
    using dir = tempDir();
    await using broker = await startMosquitto(dir.path);
    await using hub = await startHub({ data: join(dir.path, "hub"), mqtt: broker.url });
    const old = encodeCbor({
      v: 1,
      t: "hello",
      s: "old",
      ts: Date.now(),
      b: { node_id: "old", join_token: "x" },
    });
    const ws = await rawSocket(hub);
    ws.ws.send(old);
    await waitFor(() => ws.frames.length > 0 && ws.closed, { what: "a refusal, then the socket closed" });
    const reply = decodeCbor(ws.frames[0]!) as { v: number; t: string; b: { code: string; message: string } };
    expect(reply).toMatchObject({ v: 1, t: "error", b: { code: "unsupported_version" } });
    expect(reply.b.message).toMatch(/version 1 is no longer supported.*protocol 2/);
    const client = await MqttClient.connect(broker.url, { clientId: "old-agent" });
    const replies: Uint8Array[] = [];
    client.onMessage((m) => replies.push(m.payload));
    await client.subscribe([{ topic: "novacron/v1/down/old/+", qos: 1 }]);
    await client.publish("novacron/v1/up/old/hello", old, { qos: 1 });
    await waitFor(() => replies.length > 0, { what: "a refusal on the old agent's downlink" });
    expect(decodeCbor(replies[0]!)).toMatchObject({ v: 1, t: "error", b: { code: "unsupported_version" } });
    await client.end();
    expect(await unauthenticated(hub, "protocol_1")).toBe(2);
  }, 60_000);

  test.skipIf(mosquittoBinary() === undefined)(
    "garbage published on an agent's MQTT topic is refused and counted; the MQTT agent carries on",
    async () => {
      using dir = tempDir();
      await using broker = await startMosquitto(dir.path);
      await using hub = await startHub({ data: join(dir.path, "hub"), mqtt: broker.url });
      const config = join(dir.path, "m.yaml");
      writeAgentConfig(config, BASE);
      await using agent = await startAgent({
        data: join(dir.path, "m"),
        nodeId: "m1",
        hub: broker.url,
        joinToken: hub.joinToken,
        args: ["--config", config],
      });
      await waitFor(async () => (await agent.status()).connected, { what: "MQTT agent connected" });
      // Garbage and a sealed-looking frame from a stranger: neither opens under m1's session.
      const client = await MqttClient.connect(broker.url, { clientId: "forger" });
      await client.publish("novacron/v1/up/m1/metrics_batch", Buffer.from([0xde, 0xad, 0xbe, 0xef]));
      // A counter the session has not seen, so it is judged by its tag (a seen one would count as replayed).
      await client.publish(
        "novacron/v1/up/m1/metrics_batch",
        Buffer.from([0x24, 0, 0, 1, ...new Uint8Array(40)]),
      );
      await client.end();
      await waitFor(
        async () =>
          (await unauthenticated(hub, "unexpected")) >= 1 && (await unauthenticated(hub, "forged")) >= 1,
        { what: "the hub to count the bad MQTT frames" },
      );
      expectNothingLost(await quiesce(agent, hub, config, BASE));
    },
    60_000,
  );
});

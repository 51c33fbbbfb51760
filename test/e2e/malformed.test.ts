// End to end: bad frames and bad credentials are refused, counted and logged, and nobody else notices.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { MqttClient } from "../../shared/mqtt/index.ts";
import { decodeFrame, encodeCbor, encodeFrame, envelope, type Message } from "../../shared/protocol/index.ts";
import { mosquittoBinary, startMosquitto } from "../support/mosquitto.ts";
import { type HubHandle, startAgent, startHub, tempDir } from "../support/processes.ts";
import { expectNothingLost, quiesce, writeAgentConfig } from "../support/telemetry.ts";
import { waitFor } from "../support/wait.ts";

const BASE = { sample_interval: "1s", batch_interval: "1s", heartbeat_interval: "1s" };

/** A raw WebSocket to the hub that records every frame the hub sends back. */
async function rawClient(hub: HubHandle) {
  const ws = new WebSocket(`${hub.wsUrl}/v1/agent`);
  ws.binaryType = "arraybuffer";
  const received: Message[] = [];
  let closed = false;
  ws.onmessage = (ev) => received.push(decodeFrame(new Uint8Array(ev.data as ArrayBuffer)));
  ws.onclose = () => {
    closed = true;
  };
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error("raw client could not connect"));
  });
  return {
    ws,
    received,
    get closed() {
      return closed;
    },
    /** Sends bytes and waits for the hub's error reply. */
    async expectError(bytes: Uint8Array, code: string): Promise<string> {
      const before = received.length;
      ws.send(bytes);
      const reply = await waitFor(() => received.slice(before).find((m) => m.t === "error"), {
        what: `an error reply with code ${code}`,
      });
      if (reply.t !== "error") throw new Error("unreachable");
      expect(reply.b.code).toBe(code);
      return reply.b.message;
    },
  };
}

async function rejected(hub: HubHandle, reason: string): Promise<number> {
  const text = await (await fetch(`${hub.url}/metrics`)).text();
  const m = new RegExp(`novacron_hub_frames_rejected_total\\{reason="${reason}"\\} (\\d+)`).exec(text);
  return m ? Number(m[1]) : 0;
}

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

describe("malformed input", () => {
  test("garbage, truncated CBOR, oversize frames, wrong bodies and wrong tokens are refused and counted while a good agent's data stays complete", async () => {
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

    const bad = await rawClient(hub);
    // Before any hello, every kind of garbage is answered with what was wrong, and the socket stays open.
    expect(await bad.expectError(new Uint8Array([0xff, 0x00, 0x13, 0x37, 0xde, 0xad]), "bad_cbor")).toMatch(
      /CBOR/,
    );
    const beat = encodeFrame(envelope("heartbeat", "bad", { pending: 0 }));
    expect(await bad.expectError(beat.subarray(0, beat.length - 4), "bad_cbor")).toMatch(/CBOR/);
    const huge = encodeCbor({
      v: 1,
      t: "event",
      s: "bad",
      ts: 1,
      b: { pad: new Uint8Array(1024 * 1024 + 10) },
    });
    expect(await bad.expectError(huge, "frame_too_large")).toMatch(/exceeds the 1048576 byte limit/);
    expect(await bad.expectError(encodeFrame(hello("bad", { level: 9 })), "bad_body")).toMatch(/field level/);
    expect(
      await bad.expectError(
        encodeCbor({ v: 2, t: "heartbeat", s: "bad", ts: 1, b: {} }),
        "unsupported_version",
      ),
    ).toMatch(/version 2/);
    expect(
      await bad.expectError(encodeCbor({ v: 1, t: "teleport", s: "bad", ts: 1, b: {} }), "unknown_type"),
    ).toMatch(/teleport/);
    expect(await bad.expectError(beat, "hello_required")).toMatch(/hello/);
    expect(bad.closed).toBe(false);
    // A wrong join token is refused, counted, and the connection is closed.
    expect(
      await bad.expectError(encodeFrame(hello("intruder", { join_token: "wrong" })), "auth_failed"),
    ).toMatch(/join token/);
    await waitFor(() => bad.closed, { what: "the hub to close the refused connection" });

    for (const reason of ["bad_cbor", "frame_too_large", "bad_body", "unsupported_version", "unknown_type"]) {
      expect(await rejected(hub, reason)).toBeGreaterThan(0);
    }
    const metrics = await (await fetch(`${hub.url}/metrics`)).text();
    expect(metrics).toMatch(/novacron_hub_auth_failures_total\{transport="ws"\} 1/);
    // Logged once per sender per minute, with the reason.
    expect(hub.proc.lines.filter((l) => /frame refused/.test(l)).length).toBe(1);
    expect(hub.proc.lines.some((l) => /agent refused .*join token is not valid/.test(l))).toBe(true);
    // The intruder is not registered; the good agent is, and lost nothing.
    expect((await hub.api("/api/v1/nodes/intruder")).status).toBe(404);
    expectNothingLost(await quiesce(good, hub, config, BASE));
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
      // No sequence numbers: anyone who may publish on a node's topics can impersonate it, which only
      // broker ACLs prevent; this test is about garbage, not about spoofing.
      const client = await MqttClient.connect(broker.url, { clientId: "forger" });
      await client.publish("novacron/v1/up/m1/metrics_batch", Buffer.from([0xde, 0xad, 0xbe, 0xef]));
      await client.publish(
        "novacron/v1/up/m1/metrics_batch",
        Buffer.from(encodeCbor({ v: 1, t: "metrics_batch", s: "m1", ts: 1, b: { start: "x" } })),
      );
      await client.end();
      await waitFor(
        async () => (await rejected(hub, "bad_cbor")) >= 1 && (await rejected(hub, "bad_body")) >= 1,
        {
          what: "the hub to count the bad MQTT frames",
        },
      );
      expectNothingLost(await quiesce(agent, hub, config, BASE));
    },
    60_000,
  );
});

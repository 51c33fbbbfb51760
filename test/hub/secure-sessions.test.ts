// Specification of the hub's session layer on MQTT topics, where anyone may publish: what a stranger can
// and cannot spoil for a real node.
import { describe, expect, test } from "bun:test";
import type { RawPeer } from "../../hub/gateway/index.ts";
import { decodeFrame, encodeCbor, encodeFrame, envelope, type Message } from "../../shared/protocol/index.ts";
import {
  FRAME,
  generateKeyPair,
  HANDSHAKE_ID_BYTES,
  joinTokenKey,
  type KeyPair,
  nodeTokenProof,
  PROLOGUE,
  SESSION_PROTOCOL,
  SecureChannel,
  XXHandshake,
} from "../../shared/secure/index.ts";
import { concat } from "../../shared/secure/noise.ts";
import { settleUntil } from "../support/fake-clock.ts";
import { helloBody, JOIN, openHubCore } from "../support/hub-core.ts";
import { tempDir } from "../support/processes.ts";

type Core = Awaited<Awaited<ReturnType<typeof openHubCore>>>;

/** One node's topics as the hub sees them: frames it publishes up, and what the hub publishes down. */
function topics(core: Core, node: string) {
  const down: Uint8Array[] = [];
  const raw: RawPeer = { via: "mqtt", remote: node, send: (f) => down.push(f), close: () => {} };
  return { down, up: (frame: Uint8Array) => core.secure.onMqttFrame(raw, frame) };
}

/** Runs messages 1 and 2 of a handshake for `node`; `finish()` sends message 3 and returns the session. */
function begin(core: Core, node: string, key: KeyPair = generateKeyPair()) {
  const t = topics(core, node);
  const hs = new XXHandshake("initiator", key, { prologue: PROLOGUE });
  t.up(concat([Uint8Array.of(FRAME.hello1), hs.write(encodeCbor({ v: SESSION_PROTOCOL }))]));
  const m2 = t.down.at(-1)!;
  hs.read(m2.subarray(1 + HANDSHAKE_ID_BYTES));
  const hsid = hs.remoteEphemeral!.subarray(0, HANDSHAKE_ID_BYTES);
  return {
    hsid,
    t,
    finish() {
      t.up(concat([Uint8Array.of(FRAME.hello3), hsid, hs.write(encodeCbor({ node }))]));
      const channel = new SecureChannel(hs.split());
      const received = () =>
        t.down.flatMap((f): Message[] => {
          const p = channel.open(f);
          return p instanceof Uint8Array ? [decodeFrame(p)] : [];
        });
      // Resolves once the hub answered (it admits a hello against its store).
      const hello = async () => {
        const body = helloBody(node, {
          join: { id: "default", proof: nodeTokenProof(joinTokenKey(JOIN), channel.hash) },
        });
        const before = t.down.length;
        t.up(channel.seal(encodeFrame(envelope("hello", node, body))));
        // Counted, not opened: a frame opens once (the channel refuses it again as a replay).
        await settleUntil(() => t.down.length > before, `an answer to the hello of ${node}`);
      };
      return { channel, received, hello };
    },
  };
}

const unauthenticated = (core: Core, reason: string) =>
  core.metrics.value("novacron_hub_frames_unauthenticated_total", { reason });

describe("session layer on MQTT topics", () => {
  test("a junk message 3 for a handshake whose message 2 is public does not spoil the real one", async () => {
    using dir = tempDir();
    using core = await openHubCore(dir.path);
    const real = begin(core, "edge-1");
    // A stranger who read message 2 on the broker answers first, with garbage.
    real.t.up(concat([Uint8Array.of(FRAME.hello3), real.hsid, new Uint8Array(80)]));
    expect(unauthenticated(core, "handshake")).toBe(1);
    const s = real.finish();
    await s.hello();
    expect(s.received().map((m) => m.t)).toContain("welcome");
    expect(core.registry.isConnected("edge-1")).toBe(true);
  });

  test("handshakes that never say hello expire, and at the cap the oldest is evicted: a real node still gets in", async () => {
    using dir = tempDir();
    using core = await openHubCore(dir.path, { secureLimits: { maxPending: 3, handshakeTimeoutMs: 100 } });
    for (let i = 0; i < 5; i++) begin(core, `stranger-${i}`).finish();
    expect(core.metrics.value("novacron_hub_handshakes_pending")).toBe(3);
    const s = begin(core, "edge-1").finish();
    await s.hello();
    expect(s.received().map((m) => m.t)).toContain("welcome");
    await Bun.sleep(150);
    core.secure.sweep();
    expect(core.metrics.value("novacron_hub_handshakes_pending")).toBe(0);
  });

  test("a node's new session is not mistaken for a replay of its old one", async () => {
    using dir = tempDir();
    using core = await openHubCore(dir.path);
    const key = generateKeyPair();
    const first = begin(core, "edge-1", key).finish();
    await first.hello();
    // The old session opens 50 heartbeats: its window would call a new session's counters 0..50 replays.
    const beat = () => encodeFrame(envelope("heartbeat", "edge-1", { pending: 0 }));
    const up = topics(core, "edge-1").up;
    for (let i = 0; i < 50; i++) up(first.channel.seal(beat()));
    const second = begin(core, "edge-1", key).finish();
    await second.hello();
    expect(second.received().map((m) => m.t)).toContain("welcome");
    expect(unauthenticated(core, "replayed")).toBe(0);
  });
});

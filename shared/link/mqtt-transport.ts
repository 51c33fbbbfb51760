// MQTT transport for agents: publishes up/<node>/<type>, listens on down/<node>/+, keeps presence.
import { MqttClient } from "../mqtt/index.ts";
import { type MessageType, RELIABLE_TYPES } from "../protocol/index.ts";
import type { TlsMaterial } from "../tls.ts";
import { downTopic, presenceTopic, routedUpTopic, upTopic } from "./topics.ts";
import type { FrameTopic, Transport } from "./transport.ts";

// Rough size of one QoS 1 publish awaiting its PUBACK, for the link's flow control.
const INFLIGHT_WEIGHT_BYTES = 1024;

/** Connects through an MQTT broker (mqtt:// or mqtts://). Delivery rests on our own acks, not on QoS. */
export class MqttTransport implements Transport {
  readonly url: string;
  readonly #nodeId: string;
  readonly #tls: TlsMaterial | undefined;
  #client: MqttClient | undefined;
  #closed = false;
  #frameHandler: (frame: Uint8Array) => void = () => {};
  #closeHandler: (reason: string) => void = () => {};
  #notified = false;
  /** Fresh per connection; its Last Will says `offline:<secret>`, and only the hub learns it (inside the session). */
  readonly presenceSecret = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64url");
  /** Retained messages on our downlink: stale or planted by someone, never from a live session. */
  retainedIgnored = 0;
  /** The replica that holds this connection's session, once its handshake answer named it. */
  #route: string | undefined;

  /** `tls` applies to mqtts:// only: a CA that verifies the broker (else the public roots), a client certificate and key. */
  constructor(url: string, nodeId: string, opts: { tls?: TlsMaterial } = {}) {
    this.url = url;
    this.#nodeId = nodeId;
    this.#tls = opts.tls;
  }

  get closed(): boolean {
    return this.#closed;
  }

  async connect(): Promise<void> {
    const presence = presenceTopic(this.#nodeId);
    const client = await MqttClient.connect(this.url, {
      // A suffix of our own: a stranger who connects with this node's id must not be able to kick
      // our connection off the broker (MQTT lets a second connection with one client id take over).
      clientId: `novacron-agent-${this.#nodeId}-${this.presenceSecret.slice(0, 8)}`,
      clean: true,
      keepaliveSec: 30,
      connectTimeoutMs: 5000,
      will: { topic: presence, payload: `offline:${this.presenceSecret}`, qos: 1, retain: true },
      tls: this.#tls,
    });
    this.#client = client;
    client.onMessage((m) => {
      if (m.retain) {
        this.retainedIgnored += 1;
        return;
      }
      this.#frameHandler(m.payload);
    });
    client.onClose((reason) => {
      this.#closed = true;
      this.#notifyClosed(`broker connection closed: ${reason}`);
    });
    await client.subscribe([{ topic: downTopic(this.#nodeId, "+" as MessageType), qos: 1 }]);
    await client.publish(presence, "online", { qos: 1, retain: true });
  }

  send(frame: Uint8Array, type: FrameTopic): boolean {
    const client = this.#client;
    if (!client || this.#closed || !client.connected) return false;
    const qos = type === "hs" || RELIABLE_TYPES.has(type) || type === "hello" ? 1 : 0;
    // A lost PUBACK is harmless: the link's own acks and outbox decide what is resent.
    const topic =
      this.#route === undefined
        ? upTopic(this.#nodeId, type)
        : routedUpTopic(this.#route, this.#nodeId, type);
    client.publish(topic, frame, { qos }).catch(() => {});
    return true;
  }

  route(route: string): void {
    this.#route = route;
  }

  bufferedAmount(): number {
    return (this.#client?.inflight ?? 0) * INFLIGHT_WEIGHT_BYTES;
  }

  onFrame(handler: (frame: Uint8Array) => void): void {
    this.#frameHandler = handler;
  }

  onClose(handler: (reason: string) => void): void {
    this.#closeHandler = handler;
  }

  async close(): Promise<void> {
    const client = this.#client;
    if (!this.#closed && client?.connected) {
      this.#closed = true;
      // A clean goodbye: mark offline ourselves, since the Last Will only fires on an unclean drop.
      await Promise.race([
        client.publish(presenceTopic(this.#nodeId), `offline:${this.presenceSecret}`, {
          qos: 1,
          retain: true,
        }),
        Bun.sleep(1000),
      ]).catch(() => {});
      await client.end();
    }
    this.#closed = true;
    this.#notifyClosed("closed locally");
  }

  // The owner hears of the end exactly once, whoever ended it.
  #notifyClosed(reason: string): void {
    if (this.#notified) return;
    this.#notified = true;
    this.#closeHandler(reason);
  }
}

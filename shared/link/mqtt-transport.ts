// MQTT transport for agents: publishes up/<node>/<type>, listens on down/<node>/+, keeps presence.
import type { MqttClient } from "mqtt";
import { type MessageType, RELIABLE_TYPES } from "../protocol/index.ts";
import { downTopic, presenceTopic, upTopic } from "./topics.ts";
import type { Transport } from "./transport.ts";

/** Connects through an MQTT broker (mqtt:// or mqtts://). Delivery rests on our own acks, not on QoS. */
export class MqttTransport implements Transport {
  readonly url: string;
  readonly #nodeId: string;
  #client: MqttClient | undefined;
  #closed = false;
  #frameHandler: (frame: Uint8Array) => void = () => {};
  #closeHandler: (reason: string) => void = () => {};
  #notified = false;

  constructor(url: string, nodeId: string) {
    this.url = url;
    this.#nodeId = nodeId;
  }

  get closed(): boolean {
    return this.#closed;
  }

  async connect(): Promise<void> {
    const presence = presenceTopic(this.#nodeId);
    // Loaded on first use: mqtt.js costs ~19 MB of resident memory, which WebSocket-only agents never pay.
    const { default: mqtt } = await import("mqtt");
    // The link owns reconnecting (one loop for every transport), so mqtt.js must not retry.
    const client = await mqtt.connectAsync(this.url, {
      clientId: `novacron-agent-${this.#nodeId}`,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: 5000,
      keepalive: 30,
      will: { topic: presence, payload: Buffer.from("offline"), qos: 1, retain: true },
    });
    this.#client = client;
    client.on("message", (_topic, payload) => this.#frameHandler(new Uint8Array(payload)));
    const onGone = (reason: string) => {
      if (!this.#closed) {
        this.#closed = true;
        client.end(true);
      }
      this.#notifyClosed(reason);
    };
    client.on("close", () => onGone("broker connection closed"));
    client.on("error", (err) => onGone(`broker error: ${err.message}`));
    await client.subscribeAsync(downTopic(this.#nodeId, "+" as MessageType), { qos: 1 });
    await client.publishAsync(presence, "online", { qos: 1, retain: true });
  }

  send(frame: Uint8Array, type: MessageType): boolean {
    const client = this.#client;
    if (!client || this.#closed || !client.connected) return false;
    const qos = RELIABLE_TYPES.has(type) || type === "hello" ? 1 : 0;
    client.publish(
      upTopic(this.#nodeId, type),
      Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength),
      {
        qos,
      },
    );
    return true;
  }

  bufferedAmount(): number {
    // mqtt.js queues outgoing QoS 1 packets until PUBACK; count them as buffered.
    const client = this.#client as (MqttClient & { outgoing?: Record<string, unknown> }) | undefined;
    return client?.outgoing ? Object.keys(client.outgoing).length * 1024 : 0;
  }

  onFrame(handler: (frame: Uint8Array) => void): void {
    this.#frameHandler = handler;
  }

  onClose(handler: (reason: string) => void): void {
    this.#closeHandler = handler;
  }

  async close(): Promise<void> {
    const client = this.#client;
    if (!this.#closed && client) {
      this.#closed = true;
      // A clean goodbye: mark offline ourselves, since the Last Will only fires on an unclean drop.
      try {
        await Promise.race([
          client.publishAsync(presenceTopic(this.#nodeId), "offline", { qos: 1, retain: true }),
          Bun.sleep(1000),
        ]);
      } catch {
        // broker already gone: its Last Will covers us
      }
      client.end(true);
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

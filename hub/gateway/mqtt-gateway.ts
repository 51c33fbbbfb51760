// MQTT side of the gateway: one hub client on the broker, a peer per node, presence from Last Wills.
import mqtt, { type MqttClient } from "mqtt";
import { downTopic, PRESENCE_WILDCARD, parseTopic, UP_WILDCARD } from "../../shared/link/index.ts";
import type { Logger } from "../../shared/log.ts";
import type { MessageType } from "../../shared/protocol/index.ts";
import type { Gateway, Peer } from "./gateway.ts";

/** Subscribes to every agent's uplink (shared between hub replicas) and answers on their downlinks. */
export class MqttGateway {
  readonly #gateway: Gateway;
  readonly #log: Logger;
  readonly #url: string;
  readonly #hubId: string;
  readonly #peers = new Map<string, Peer>();
  #client: MqttClient | undefined;

  constructor(opts: { gateway: Gateway; log: Logger; url: string; hubId: string }) {
    this.#gateway = opts.gateway;
    this.#log = opts.log;
    this.#url = opts.url;
    this.#hubId = opts.hubId;
  }

  /** Connects and subscribes; keeps reconnecting in the background if the broker goes away. */
  async start(): Promise<void> {
    const client = mqtt.connect(this.#url, {
      clientId: `novacron-hub-${this.#hubId}-${process.pid}`,
      protocolVersion: 5,
      clean: true,
      reconnectPeriod: 1000,
      connectTimeout: 5000,
    });
    this.#client = client;
    client.on("connect", () => {
      this.#log.info("connected to MQTT broker", { url: this.#url });
      // Shared subscription: hub replicas split the uplink; presence goes to every replica.
      client.subscribe(`$share/novacron-hubs/${UP_WILDCARD}`, { qos: 1 });
      client.subscribe(PRESENCE_WILDCARD, { qos: 1 });
    });
    client.on("close", () => {
      // Every MQTT session is gone with the broker link; agents say hello again when it returns.
      for (const peer of this.#peers.values()) this.#gateway.onClosed(peer);
    });
    client.on("error", (err) => this.#log.warn("MQTT broker error", { url: this.#url, error: err.message }));
    client.on("message", (topic, payload) => this.#onMessage(topic, payload));
  }

  #peer(node: string): Peer {
    let peer = this.#peers.get(node);
    if (!peer) {
      peer = {
        via: "mqtt",
        remote: node,
        node: undefined,
        send: (frame: Uint8Array, type: MessageType) => {
          this.#client?.publish(downTopic(node, type), Buffer.from(frame), { qos: 1 });
        },
        close: () => {
          // Nothing to close: the agent owns its broker connection. Forget the session.
          this.#gateway.onClosed(this.#peers.get(node)!);
        },
      };
      this.#peers.set(node, peer);
    }
    return peer;
  }

  #onMessage(topic: string, payload: Buffer): void {
    const t = parseTopic(topic);
    if (!t) return;
    if (t.dir === "presence") {
      if (payload.toString() === "offline") this.#gateway.onPresenceOffline(t.node);
      return;
    }
    if (t.dir !== "up") return;
    this.#gateway.onFrame(
      this.#peer(t.node),
      new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength),
    );
  }

  async stop(): Promise<void> {
    await this.#client?.endAsync(true);
  }
}

// MQTT side of the gateway: one hub client on the broker, a peer per node, presence from Last Wills.
import {
  backoffDelay,
  downTopic,
  PRESENCE_WILDCARD,
  parseTopic,
  UP_WILDCARD,
} from "../../shared/link/index.ts";
import type { Logger } from "../../shared/log.ts";
import { MqttClient } from "../../shared/mqtt/index.ts";
import type { MessageType } from "../../shared/protocol/index.ts";
import type { TlsMaterial } from "../../shared/tls.ts";
import type { Gateway, Peer } from "./gateway.ts";

/** Subscribes to every agent's uplink (shared between hub replicas) and answers on their downlinks. */
export class MqttGateway {
  readonly #gateway: Gateway;
  readonly #log: Logger;
  readonly #url: string;
  readonly #hubId: string;
  readonly #tls: TlsMaterial | undefined;
  readonly #peers = new Map<string, Peer>();
  #client: MqttClient | undefined;
  #stopped = false;
  #loop: Promise<void> | undefined;
  #connected: (() => void) | undefined;

  /** `tls`: for an mqtts:// broker, the CA that verifies it (else the public roots), a client certificate and key. */
  constructor(opts: { gateway: Gateway; log: Logger; url: string; hubId: string; tls?: TlsMaterial }) {
    this.#gateway = opts.gateway;
    this.#log = opts.log;
    this.#url = opts.url;
    this.#hubId = opts.hubId;
    this.#tls = opts.tls;
  }

  /** Starts the connect loop; resolves after the first successful subscription (or in the background on failure). */
  async start(): Promise<void> {
    const first = new Promise<void>((resolve) => {
      this.#connected = resolve;
    });
    this.#loop = this.#run();
    // The hub serves HTTP and WebSocket agents even while the broker is away.
    await Promise.race([first, Bun.sleep(5000)]);
  }

  async #run(): Promise<void> {
    let attempt = 0;
    while (!this.#stopped) {
      try {
        const client = await MqttClient.connect(this.#url, {
          clientId: `novacron-hub-${this.#hubId}-${process.pid}`,
          clean: true,
          keepaliveSec: 30,
          tls: this.#tls,
        });
        this.#client = client;
        const ended = new Promise<string>((resolve) => client.onClose(resolve));
        client.onMessage((m) => this.#onMessage(m.topic, m.payload));
        // Shared subscription: hub replicas split the uplink; presence goes to every replica.
        await client.subscribe([
          { topic: `$share/novacron-hubs/${UP_WILDCARD}`, qos: 1 },
          { topic: PRESENCE_WILDCARD, qos: 1 },
        ]);
        this.#log.info("connected to MQTT broker", { url: this.#url });
        attempt = 0;
        this.#connected?.();
        const reason = await ended;
        // Every MQTT session is gone with the broker link; agents say hello again when it returns.
        for (const peer of this.#peers.values()) this.#gateway.onClosed(peer);
        if (!this.#stopped) this.#log.warn("MQTT broker connection lost", { url: this.#url, reason });
      } catch (err) {
        if (!this.#stopped)
          this.#log.warn("cannot reach MQTT broker", { url: this.#url, error: (err as Error).message });
      }
      if (this.#stopped) return;
      await Bun.sleep(backoffDelay(attempt++, { baseMs: 200, capMs: 3000 }));
    }
  }

  #peer(node: string): Peer {
    let peer = this.#peers.get(node);
    if (!peer) {
      peer = {
        via: "mqtt",
        remote: node,
        node: undefined,
        send: (frame: Uint8Array, type: MessageType) => {
          this.#client?.publish(downTopic(node, type), frame, { qos: 1 }).catch(() => {});
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

  #onMessage(topic: string, payload: Uint8Array): void {
    const t = parseTopic(topic);
    if (!t) return;
    if (t.dir === "presence") {
      if (new TextDecoder().decode(payload) === "offline") this.#gateway.onPresenceOffline(t.node);
      return;
    }
    if (t.dir !== "up") return;
    this.#gateway.onFrame(this.#peer(t.node), payload);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#client?.end();
    await this.#loop;
  }
}

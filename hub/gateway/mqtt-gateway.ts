// MQTT side of the gateway: one hub client on the broker, a peer per node, presence from Last Wills.
import { redactUrl } from "../../shared/config/index.ts";
import {
  backoffDelay,
  downTopic,
  PRESENCE_WILDCARD,
  parseTopic,
  routedWildcard,
  UP_WILDCARD,
} from "../../shared/link/index.ts";
import type { Logger } from "../../shared/log.ts";
import { MqttClient } from "../../shared/mqtt/index.ts";
import type { TlsMaterial } from "../../shared/tls.ts";
import type { RawPeer, SecureSessions } from "./secure-sessions.ts";

/** Subscribes to every agent's uplink (shared between hub replicas) and answers on their downlinks. */
export class MqttGateway {
  readonly #sessions: SecureSessions;
  readonly #log: Logger;
  readonly #url: string;
  readonly #hubId: string;
  readonly #tls: TlsMaterial | undefined;
  readonly #route: string | undefined;
  #client: MqttClient | undefined;
  #stopped = false;
  #loop: Promise<void> | undefined;
  #connected: (() => void) | undefined;

  /** `tls`: for an mqtts:// broker, the CA that verifies it (else the public roots), a client certificate and key. */
  constructor(opts: {
    sessions: SecureSessions;
    log: Logger;
    url: string;
    hubId: string;
    tls?: TlsMaterial;
    /** Replicas: this replica's own uplink route (hub/replicas), where its sessions' frames arrive. */
    route?: string;
  }) {
    this.#route = opts.route;
    this.#sessions = opts.sessions;
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
          // Replicas share a hub id (and in containers often a pid): the route tells them apart.
          clientId: `novacron-hub-${this.#route ?? this.#hubId}-${process.pid}`,
          clean: true,
          keepaliveSec: 30,
          tls: this.#tls,
        });
        this.#client = client;
        const ended = new Promise<string>((resolve) => client.onClose(resolve));
        client.onMessage((m) => this.#onMessage(m.topic, m.payload, m.retain));
        // Shared subscription: hub replicas split the uplink (first handshake messages); presence goes
        // to every replica; a replica's own route carries the rest of the sessions it answered.
        await client.subscribe([
          { topic: `$share/novacron-hubs/${UP_WILDCARD}`, qos: 1 },
          { topic: PRESENCE_WILDCARD, qos: 1 },
          ...(this.#route ? [{ topic: routedWildcard(this.#route), qos: 1 as const }] : []),
        ]);
        this.#log.info("connected to MQTT broker", { url: redactUrl(this.#url) });
        attempt = 0;
        this.#connected?.();
        const reason = await ended;
        // Every MQTT session is gone with the broker link; agents say hello again when it returns.
        this.#sessions.mqttLost();
        if (!this.#stopped)
          this.#log.warn("MQTT broker connection lost", { url: redactUrl(this.#url), reason });
      } catch (err) {
        if (!this.#stopped)
          this.#log.warn("cannot reach MQTT broker", {
            url: redactUrl(this.#url),
            error: (err as Error).message,
          });
      }
      if (this.#stopped) return;
      await Bun.sleep(backoffDelay(attempt++, { baseMs: 200, capMs: 3000 }));
    }
  }

  // No state per topic: a RawPeer is a pair of closures, made per frame, kept only inside a session.
  #raw(node: string): RawPeer {
    return {
      via: "mqtt",
      remote: node,
      send: (frame, topic) => {
        this.#client?.publish(downTopic(node, topic), frame, { qos: 1 }).catch(() => {});
      },
      // Nothing to close: the agent owns its broker connection; the session layer forgets the session.
      close: () => {},
    };
  }

  #onMessage(topic: string, payload: Uint8Array, retain: boolean): void {
    const t = parseTopic(topic);
    if (!t) return;
    if (t.dir === "presence") {
      // A retained presence is history (or planted); only a live Last Will or goodbye counts.
      if (!retain) this.#sessions.onMqttPresence(t.node, new TextDecoder().decode(payload.subarray(0, 128)));
      return;
    }
    if (t.dir !== "up" || (t.route !== undefined && t.route !== this.#route)) return;
    // A retained uplink frame is planted, never a live node's: answering it on every resubscription
    // would spend the handshake budget exactly when the fleet reconnects.
    if (retain) {
      this.#sessions.countRetained();
      return;
    }
    this.#sessions.onMqttFrame(this.#raw(t.node), payload);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#client?.end();
    await this.#loop;
  }
}

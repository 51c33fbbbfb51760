// A small MQTT 3.1.1 client over Bun's TCP/TLS sockets: connect with a Will, publish, subscribe, keepalive.
import type { Socket } from "bun";
import {
  ackPacket,
  CONNACK_REASONS,
  type ConnectOptions,
  connectPacket,
  DISCONNECT,
  MqttProtocolError,
  type Packet,
  PacketReader,
  PacketType,
  PINGREQ,
  publishPacket,
  pubrelPacket,
  subscribePacket,
} from "./packets.ts";
import { clientTlsOptions, describeTlsError, isTlsError, type TlsMaterial } from "../tls.ts";

export interface MqttConnectOptions {
  clientId: string;
  clean?: boolean;
  keepaliveSec?: number;
  connectTimeoutMs?: number;
  will?: { topic: string; payload: Uint8Array | string; qos: 0 | 1; retain: boolean };
  /** Largest packet accepted from the broker. */
  maxPacketBytes?: number;
  /** For mqtts://: CA that verifies the broker (else the public roots), client certificate and key. */
  tls?: TlsMaterial;
}

export interface IncomingMessage {
  topic: string;
  payload: Uint8Array;
  retain: boolean;
  qos: 0 | 1 | 2;
}

/** Broker address parsed from mqtt:// or mqtts:// (user:password@ allowed). */
export function parseBrokerUrl(url: string): {
  host: string;
  port: number;
  tls: boolean;
  username?: string;
  password?: string;
} {
  const u = new URL(url);
  const tls = u.protocol === "mqtts:";
  if (!tls && u.protocol !== "mqtt:") throw new Error(`not an MQTT URL: ${url} (use mqtt:// or mqtts://)`);
  const out: { host: string; port: number; tls: boolean; username?: string; password?: string } = {
    host: u.hostname.replace(/^\[|\]$/g, ""),
    port: u.port ? Number(u.port) : tls ? 8883 : 1883,
    tls,
  };
  if (u.username) out.username = decodeURIComponent(u.username);
  if (u.password) out.password = decodeURIComponent(u.password);
  return out;
}

type Pending = { resolve: (p: Packet) => void; reject: (e: Error) => void };

/** One connection to a broker. It never reconnects by itself: the owner decides (one loop, one place). */
export class MqttClient {
  readonly #socket: Socket<undefined>;
  readonly #keepaliveMs: number;
  #closed = false;
  #nextId = 1;
  readonly #pending = new Map<number, Pending>();
  #queue: Uint8Array[] = [];
  #lastSent = Date.now();
  #lastHeard = Date.now();
  #pingTimer: ReturnType<typeof setInterval> | undefined;
  #onMessage: (m: IncomingMessage) => void = () => {};
  #onClose: (reason: string) => void = () => {};
  #closeReason: string | undefined;

  private constructor(socket: Socket<undefined>, keepaliveMs: number) {
    this.#socket = socket;
    this.#keepaliveMs = keepaliveMs;
  }

  /** Connects and waits for CONNACK; rejects with the broker's reason, a TLS or socket error, or a timeout. */
  static async connect(url: string, opts: MqttConnectOptions): Promise<MqttClient> {
    const broker = parseBrokerUrl(url);
    const where = `${broker.tls ? "mqtts" : "mqtt"}://${broker.host}:${broker.port}`;
    const keepaliveSec = opts.keepaliveSec ?? 30;
    const reader = new PacketReader(opts.maxPacketBytes ?? 16 * 1024 * 1024);
    let client: MqttClient | undefined;
    let connack: Pending | undefined;
    // A failure before anyone waits (a refused handshake can beat Bun.connect's promise) is kept for the wait.
    let early: Error | undefined;
    const earlyPackets: Packet[] = [];
    // CONNECT may go out once the socket is secure: at once over TCP, after the handshake over TLS.
    let secured = !broker.tls;
    let sendConnect: (() => void) | undefined;
    const fail = (err: Error) => {
      const reason =
        broker.tls && isTlsError(err) ? new Error(`TLS with ${where} failed: ${describeTlsError(err)}`) : err;
      if (connack) connack.reject(reason);
      else if (client) client.#shutdown(reason.message);
      else early ??= reason;
    };
    const socket = await Bun.connect<undefined>({
      hostname: broker.host,
      port: broker.port,
      tls: broker.tls ? clientTlsOptions(opts.tls) : false,
      socket: {
        data(_s, chunk) {
          let packets: Packet[];
          try {
            packets = reader.push(new Uint8Array(chunk));
          } catch (err) {
            fail(err as Error);
            return;
          }
          for (const p of packets) {
            if (connack && p.type === PacketType.Connack) connack.resolve(p);
            else if (client && !connack) client.#handle(p);
            else earlyPackets.push(p);
          }
        },
        drain() {
          if (client) client.#flush();
        },
        // Bun closes the socket itself after a failed verification; the reason is only told here.
        handshake(s, _authorized, authorizationError) {
          if (authorizationError) {
            fail(authorizationError);
            s.terminate();
            return;
          }
          secured = true;
          sendConnect?.();
        },
        close() {
          fail(new Error("connection closed by the broker"));
        },
        error(_s, err) {
          fail(err);
        },
      },
    });
    client = new MqttClient(socket, keepaliveSec * 1000);
    const connectOpts: ConnectOptions = { clientId: opts.clientId, clean: opts.clean ?? true, keepaliveSec };
    if (opts.will) {
      const payload =
        typeof opts.will.payload === "string"
          ? new TextEncoder().encode(opts.will.payload)
          : opts.will.payload;
      connectOpts.will = { ...opts.will, payload };
    }
    if (broker.username !== undefined) connectOpts.username = broker.username;
    if (broker.password !== undefined) connectOpts.password = broker.password;
    const ack = await new Promise<Packet>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${secured ? "no CONNACK" : "no TLS handshake"} from ${where} in time`)),
        opts.connectTimeoutMs ?? 5000,
      );
      connack = {
        resolve: (p) => {
          clearTimeout(timer);
          resolve(p);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      if (early) {
        connack.reject(early);
        return;
      }
      sendConnect = () => client!.#write(connectPacket(connectOpts));
      if (secured) sendConnect();
    }).catch((err: Error) => {
      socket.end();
      throw err;
    });
    connack = undefined;
    if (ack.type !== PacketType.Connack) {
      socket.end();
      throw new MqttProtocolError("broker answered CONNECT with something other than CONNACK");
    }
    if (ack.returnCode !== 0) {
      socket.end();
      throw new Error(
        `broker refused the connection: ${CONNACK_REASONS[ack.returnCode] ?? `code ${ack.returnCode}`}`,
      );
    }
    for (const p of earlyPackets) client.#handle(p);
    client.#startKeepalive();
    return client;
  }

  get connected(): boolean {
    return !this.#closed;
  }

  /** QoS 1 publishes sent but not yet acknowledged. */
  get inflight(): number {
    return this.#pending.size;
  }

  onMessage(handler: (m: IncomingMessage) => void): void {
    this.#onMessage = handler;
  }

  /** Called once when the connection ends, for whatever reason. */
  onClose(handler: (reason: string) => void): void {
    this.#onClose = handler;
    if (this.#closeReason !== undefined) handler(this.#closeReason);
  }

  /** Publishes; QoS 1 resolves on PUBACK, QoS 0 once written. Rejects if the connection ends first. */
  publish(
    topic: string,
    payload: Uint8Array | string,
    opts: { qos: 0 | 1; retain?: boolean } = { qos: 0 },
  ): Promise<void> {
    const bytes = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
    if (this.#closed) return Promise.reject(new Error("MQTT connection is closed"));
    if (opts.qos === 0) {
      this.#write(publishPacket(topic, bytes, { qos: 0, retain: opts.retain ?? false }));
      return Promise.resolve();
    }
    const id = this.#allocateId();
    const done = this.#expect(id);
    this.#write(publishPacket(topic, bytes, { qos: 1, retain: opts.retain ?? false, id }));
    return done.then(() => undefined);
  }

  /** Subscribes; resolves with the granted QoS per filter (0x80 = refused). */
  async subscribe(filters: { topic: string; qos: 0 | 1 }[]): Promise<number[]> {
    if (this.#closed) throw new Error("MQTT connection is closed");
    const id = this.#allocateId();
    const done = this.#expect(id);
    this.#write(subscribePacket(id, filters));
    const ack = await done;
    if (ack.type !== PacketType.Suback)
      throw new MqttProtocolError("SUBSCRIBE answered with something other than SUBACK");
    return ack.granted;
  }

  /** Says goodbye (DISCONNECT: the broker discards the Will) and closes. */
  async end(): Promise<void> {
    if (this.#closed) return;
    this.#write(DISCONNECT);
    // DISCONNECT must reach the broker behind whatever is still queued, or the Will fires.
    for (let i = 0; i < 100 && this.#queue.length > 0; i++) await Bun.sleep(10);
    this.#socket.end();
    this.#shutdown("closed by this client");
  }

  /** Drops the connection without DISCONNECT, as a crash would: the broker publishes the Will. */
  destroy(): void {
    if (this.#closed) return;
    this.#socket.terminate();
    this.#shutdown("destroyed by this client");
  }

  #allocateId(): number {
    for (let tries = 0; tries < 65535; tries++) {
      const id = this.#nextId;
      this.#nextId = this.#nextId === 65535 ? 1 : this.#nextId + 1;
      if (!this.#pending.has(id)) return id;
    }
    throw new Error("no free MQTT packet id: 65535 messages in flight");
  }

  #expect(id: number): Promise<Packet> {
    return new Promise((resolve, reject) => this.#pending.set(id, { resolve, reject }));
  }

  #handle(p: Packet): void {
    this.#lastHeard = Date.now();
    switch (p.type) {
      case PacketType.Publish:
        if (p.qos === 1 && p.id !== undefined) this.#write(ackPacket(PacketType.Puback, p.id));
        // QoS 2 is never requested; answer it correctly anyway so a broker cannot stall us.
        if (p.qos === 2 && p.id !== undefined) this.#write(ackPacket(PacketType.Pubrec, p.id));
        try {
          this.#onMessage({ topic: p.topic, payload: p.payload, retain: p.retain, qos: p.qos });
        } catch {
          // A failing handler must not cost the packets behind this one in the same read.
        }
        return;
      case PacketType.Pubrel:
        this.#write(ackPacket(PacketType.Pubcomp, p.id));
        return;
      case PacketType.Pubrec:
        this.#write(pubrelPacket(p.id));
        return;
      case PacketType.Puback:
      case PacketType.Pubcomp:
      case PacketType.Suback: {
        const pending = this.#pending.get(p.id);
        this.#pending.delete(p.id);
        pending?.resolve(p);
        return;
      }
      case PacketType.Pingresp:
        return;
      case PacketType.Connack:
      case PacketType.Pingreq:
      case PacketType.Disconnect:
        this.#shutdown(`unexpected packet ${p.type} from the broker`);
        this.#socket.end();
        return;
      default: {
        const never: never = p;
        void never;
      }
    }
  }

  #startKeepalive(): void {
    if (this.#keepaliveMs <= 0) return;
    this.#pingTimer = setInterval(
      () => {
        const now = Date.now();
        // A broker that has said nothing for 1.5 keepalives (not even PINGRESP) is gone.
        if (now - this.#lastHeard > this.#keepaliveMs * 1.5) {
          this.#socket.terminate();
          this.#shutdown("broker silent past the keepalive");
          return;
        }
        if (now - this.#lastSent >= this.#keepaliveMs / 2 || now - this.#lastHeard >= this.#keepaliveMs / 2) {
          this.#write(PINGREQ);
        }
      },
      Math.max(250, this.#keepaliveMs / 4),
    );
  }

  #write(bytes: Uint8Array): void {
    if (this.#closed) return;
    this.#lastSent = Date.now();
    if (this.#queue.length > 0) {
      this.#queue.push(bytes);
      return;
    }
    const n = this.#socket.write(bytes);
    if (n < bytes.length) this.#queue.push(bytes.subarray(Math.max(0, n)));
  }

  // The kernel buffer had room again: write what waited, in order.
  #flush(): void {
    while (this.#queue.length > 0) {
      const head = this.#queue[0]!;
      const n = this.#socket.write(head);
      if (n < head.length) {
        this.#queue[0] = head.subarray(Math.max(0, n));
        return;
      }
      this.#queue.shift();
    }
  }

  #shutdown(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeReason = reason;
    clearInterval(this.#pingTimer);
    const err = new Error(`MQTT connection ended: ${reason}`);
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
    this.#queue = [];
    this.#onClose(reason);
  }
}

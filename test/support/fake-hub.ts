// A recording Transport whose far end plays the hub: welcome, in-order storage and cumulative acks.
import type { Clock } from "../../shared/clock.ts";
import type { Transport, TransportFactory } from "../../shared/link/index.ts";
import {
  type Body,
  decodeFrame,
  encodeFrame,
  envelope,
  type Message,
  type MessageType,
} from "../../shared/protocol/index.ts";

/** One connection a Link opened; records every frame it sent, decoded. */
export class FakeTransport implements Transport {
  readonly url: string;
  readonly sent: Message[] = [];
  #closed = false;
  #onFrame: (frame: Uint8Array) => void = () => {};
  #onClose: (reason: string) => void = () => {};
  readonly #hub: FakeHub;

  constructor(url: string, hub: FakeHub) {
    this.url = url;
    this.#hub = hub;
  }

  get closed(): boolean {
    return this.#closed;
  }

  connect(): Promise<void> {
    this.#hub.connects.push(this.url);
    if (this.#hub.refuse.has(this.url)) {
      this.#closed = true;
      return Promise.reject(new Error(`connection to ${this.url} refused`));
    }
    return Promise.resolve();
  }

  send(frame: Uint8Array, _type: MessageType): boolean {
    if (this.#closed) return false;
    const msg = decodeFrame(frame);
    this.sent.push(msg);
    this.#hub.received.push(msg);
    // A real socket answers later, never inside send().
    queueMicrotask(() => this.#hub.handle(this, msg));
    return true;
  }

  bufferedAmount(): number {
    return 0;
  }

  onFrame(handler: (frame: Uint8Array) => void): void {
    this.#onFrame = handler;
  }

  onClose(handler: (reason: string) => void): void {
    this.#onClose = handler;
  }

  /** Delivers raw bytes to the link as if the hub had sent them. */
  deliver(frame: Uint8Array): void {
    if (!this.#closed) this.#onFrame(frame);
  }

  close(): Promise<void> {
    this.hangUp("closed by the agent");
    return Promise.resolve();
  }

  /** Ends the connection from the hub's side. */
  hangUp(reason = "closed by the hub"): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#onClose(reason);
  }
}

/** Plays the hub behind every FakeTransport it makes: a tiny in-memory version of gateway + ingest. */
export class FakeHub {
  readonly id = "hub-fake";
  readonly #clock: Clock;
  /** Highest sequence number stored in order (what acks and welcomes report); raise it to play a hub that remembers more. */
  committed = 0;
  /** Answer hello with welcome. */
  answerHello = true;
  /** Store and ack reliable messages; false plays a hub that receives them but never commits (a stalled store). */
  acking = true;
  /** Answer heartbeats with an ack that echoes their time. */
  answerHeartbeats = true;
  /** Say nothing at all. */
  silent = false;
  /** How far the hub's clock is ahead of the agent's. */
  skewMs = 0;
  /** Fields added to every welcome (e.g. `restored`, `counters`). */
  welcomeExtra: Partial<Body<"welcome">> = {};
  /** URLs whose connect() fails. */
  readonly refuse = new Set<string>();
  /** Sequence numbers lost in transit, once each. */
  readonly lose = new Set<number>();
  /** URLs in the order connect() was called. */
  readonly connects: string[] = [];
  readonly transports: FakeTransport[] = [];
  /** Every message received, across sessions. */
  readonly received: Message[] = [];
  /** Reliable messages stored, in order, each once. */
  readonly stored: Message[] = [];

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  readonly transportFactory: TransportFactory = (url) => {
    const t = new FakeTransport(url, this);
    this.transports.push(t);
    return t;
  };

  /** The newest connection. */
  get current(): FakeTransport {
    const t = this.transports[this.transports.length - 1];
    if (!t) throw new Error("the link never opened a transport");
    return t;
  }

  /** Reliable sequence numbers received so far, in arrival order (resends included). */
  seqsReceived(): number[] {
    return this.received.filter((m) => m.q !== undefined).map((m) => m.q!);
  }

  /** Sends a message to the link over the newest connection. */
  say<T extends MessageType>(type: T, body: Body<T>, t: FakeTransport = this.current): void {
    t.deliver(encodeFrame(envelope(type, this.id, body, { ts: this.#clock.now() + this.skewMs })));
  }

  handle(t: FakeTransport, msg: Message): void {
    if (this.silent || t.closed) return;
    if (msg.t === "hello") {
      if (!this.answerHello) return;
      this.say(
        "welcome",
        {
          hub_id: this.id,
          server_time: this.#clock.now() + this.skewMs,
          last_acked: this.committed,
          config_rev: 0,
          heartbeat_ms: 1000,
          ...this.welcomeExtra,
        },
        t,
      );
      return;
    }
    if (msg.t === "heartbeat") {
      if (this.answerHeartbeats) this.say("ack", { upto: this.committed, echo: msg.ts }, t);
      return;
    }
    const q = msg.q;
    if (q === undefined || !this.acking) return;
    if (this.lose.delete(q)) return;
    if (q <= this.committed) {
      this.say("ack", { upto: this.committed }, t);
      return;
    }
    if (q !== this.committed + 1 && q !== msg.base) return; // a gap: wait for the resend
    this.stored.push(msg);
    this.committed = q;
    this.say("ack", { upto: this.committed }, t);
  }
}

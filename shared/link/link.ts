// The link to a hub: one reconnect loop, one handshake, one outbox drain; used by agents and child hubs.
import { type Clock, sleep, systemClock } from "../clock.ts";
import { redactUrl } from "../config/index.ts";
import type { Logger } from "../log.ts";
import {
  type Body,
  decodeFrame,
  encodeFrame,
  encodeFrameRawBody,
  envelope,
  type HelloBody,
  type Message,
  type MessageType,
  PROTOCOL_VERSION,
  type WelcomeBody,
} from "../protocol/index.ts";
import { backoffDelay } from "./backoff.ts";
import type { Outbox } from "./outbox.ts";
import type { Transport, TransportFactory } from "./transport.ts";

export interface LinkOptions {
  endpoints: string[];
  nodeId: string;
  outbox: Outbox;
  /** Builds the hello for the session `transport` just established (the link fills in last_acked). */
  hello: (transport: Transport) => Promise<Omit<HelloBody, "last_acked">> | Omit<HelloBody, "last_acked">;
  transports: TransportFactory;
  log: Logger;
  clock?: Clock;
  heartbeatMs: number;
  maxFrameBytes: number;
  /** Most reliable messages in flight without an ack. */
  window?: number;
  /** Resend from the last ack when the oldest message in flight has waited this long. */
  ackTimeoutMs?: number;
  reconnectBaseMs?: number;
  reconnectCapMs?: number;
  /** Consecutive failures on one endpoint before moving to the next. */
  failuresPerEndpoint?: number;
  onWelcome?: (welcome: WelcomeBody, endpoint: string) => void;
  /** Hub-to-node messages other than acks (config, allocs, command). */
  onMessage?: (msg: Message) => void;
  onStateChange?: (connected: boolean) => void;
  /** The hub refused this node (auth_failed, key_revoked): the session ends; the caller may change its identity. */
  onRefused?: (code: string, message: string) => void;
}

export interface LinkStatus {
  connected: boolean;
  endpoint: string | undefined;
  lastAcked: number;
  rttMs: number | undefined;
  /** Largest round trip measured in the current session (heartbeats queue behind a catch-up). */
  rttMaxMs: number | undefined;
  clockOffsetMs: number | undefined;
  reconnects: number;
  badFrames: number;
  /** Acks the hub sent above anything this node ever sent (refused: they would delete unsent data). */
  acksRefused: number;
}

class SessionEnded extends Error {}

/** Keeps one session to the first reachable hub endpoint and drains the outbox through it. */
export class Link {
  readonly #o: Required<Omit<LinkOptions, "onWelcome" | "onMessage" | "onStateChange" | "onRefused">> &
    Pick<LinkOptions, "onWelcome" | "onMessage" | "onStateChange" | "onRefused">;
  readonly #clock: Clock;
  #endpoints: string[];
  #heartbeatMs: number;
  /** The heartbeat period the hub asked for in its welcome (0: none). */
  #hubBeatMs = 0;
  #abort = new AbortController();
  #loop: Promise<void> | undefined;
  #transport: Transport | undefined;
  #connected = false;
  #endpoint: string | undefined;
  #acked = 0;
  #nextSend = 1;
  #inflight: { seq: number; at: number }[] = [];
  #lastRx = 0;
  #rtt: number | undefined;
  #rttMax: number | undefined;
  #offset: number | undefined;
  #reconnects = 0;
  #badFrames = 0;
  #acksRefused = 0;
  /** Highest sequence number that may have reached the hub: what an ack can cover. */
  #highestSent = 0;
  #lastBadLog = 0;
  /** Failed attempts since the last session: the first is logged, then one summary a minute. */
  readonly #failing = { count: 0, since: 0, lastSummary: 0 };
  #wake: (() => void) | undefined;

  constructor(opts: LinkOptions) {
    this.#o = {
      window: 64,
      ackTimeoutMs: 10_000,
      reconnectBaseMs: 200,
      reconnectCapMs: 3_000,
      failuresPerEndpoint: 3,
      clock: systemClock,
      ...opts,
    };
    this.#clock = this.#o.clock;
    this.#endpoints = [...opts.endpoints];
    this.#heartbeatMs = opts.heartbeatMs;
  }

  /** Starts the reconnect loop (returns at once). */
  start(): void {
    if (this.#loop || this.#endpoints.length === 0) return;
    this.#loop = this.#run();
  }

  /** Closes the session and stops reconnecting. Unacked messages stay in the outbox. */
  async stop(): Promise<void> {
    this.#abort.abort();
    this.#wake?.();
    await this.#transport?.close();
    await this.#loop;
    this.#loop = undefined;
  }

  /** Replaces the endpoint list (hot config); the current session is dropped if its endpoint left. */
  setEndpoints(endpoints: string[]): void {
    this.#endpoints = [...endpoints];
    if (this.#endpoint && !endpoints.includes(this.#endpoint)) void this.#transport?.close();
    if (endpoints.length > 0 && !this.#loop && !this.#abort.signal.aborted) this.start();
  }

  /** Ends the current session; the loop reconnects at once with a fresh hello. */
  reconnect(): void {
    void this.#transport?.close();
  }

  setHeartbeat(ms: number): void {
    this.#heartbeatMs = ms;
  }

  /** Tells the link that the outbox has something new to send. */
  notify(): void {
    if (this.#connected) this.#pump();
  }

  /** Sends a best-effort message (not stored, not acked) when connected. */
  sendLive<T extends MessageType>(type: T, body: Body<T>): boolean {
    const t = this.#transport;
    if (!this.#connected || !t) return false;
    return t.send(encodeFrame(envelope(type, this.#o.nodeId, body, { ts: this.#clock.now() })), type);
  }

  status(): LinkStatus {
    return {
      connected: this.#connected,
      endpoint: this.#endpoint,
      lastAcked: this.#acked,
      rttMs: this.#rtt,
      rttMaxMs: this.#rttMax,
      clockOffsetMs: this.#offset,
      reconnects: this.#reconnects,
      badFrames: this.#badFrames,
      acksRefused: this.#acksRefused,
    };
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    let attempt = 0;
    let index = 0;
    let failures = 0;
    while (!signal.aborted) {
      if (this.#endpoints.length === 0) {
        // Nothing to reach; setEndpoints() starts a new loop when the list fills again.
        this.#loop = undefined;
        return;
      }
      const url = this.#endpoints[index % this.#endpoints.length]!;
      let established = false;
      try {
        established = await this.#session(url, () => {
          attempt = 0;
          failures = 0;
          if (this.#failing.count > 1) {
            this.#o.log.info("hub link restored", { failed_attempts: this.#failing.count });
          }
          this.#failing.count = 0;
        });
      } catch (err) {
        if (!signal.aborted) this.#linkFailed(url, (err as Error).message);
      }
      this.#setConnected(false);
      if (signal.aborted) return;
      if (!established) {
        failures += 1;
        if (failures >= this.#o.failuresPerEndpoint && this.#endpoints.length > 1) {
          failures = 0;
          index += 1;
          this.#o.log.info("moving to next hub endpoint", {
            endpoint: redactUrl(this.#endpoints[index % this.#endpoints.length]!),
          });
        }
      }
      const delay = backoffDelay(attempt, { baseMs: this.#o.reconnectBaseMs, capMs: this.#o.reconnectCapMs });
      attempt += 1;
      await sleep(this.#clock, delay, signal);
    }
  }

  // A reconnect loop that keeps failing logs its first failure, then a summary once a minute.
  #linkFailed(url: string, error: string): void {
    const now = this.#clock.now();
    const f = this.#failing;
    f.count += 1;
    if (f.count === 1) {
      f.since = now;
      f.lastSummary = now;
      this.#o.log.warn("hub link failed", { endpoint: redactUrl(url), error });
    } else if (now - f.lastSummary >= 60_000) {
      f.lastSummary = now;
      this.#o.log.warn("hub link still failing", {
        attempts: f.count,
        since_s: Math.round((now - f.since) / 1000),
        endpoint: redactUrl(url),
        error,
      });
    }
  }

  // One connection: handshake, then serve until it closes. Returns whether the handshake succeeded.
  async #session(url: string, onEstablished: () => void): Promise<boolean> {
    const transport = this.#o.transports(url, { nodeId: this.#o.nodeId });
    this.#transport = transport;
    let closedReason: string | undefined;
    let endSession: (reason: string) => void = () => {};
    const ended = new Promise<string>((resolve) => {
      endSession = resolve;
    });
    let welcomeWaiter: ((w: WelcomeBody | Error) => void) | undefined;
    transport.onClose((reason) => {
      closedReason = reason;
      welcomeWaiter?.(new SessionEnded(reason));
      endSession(reason);
    });
    transport.onFrame((frame) => {
      this.#lastRx = this.#clock.now();
      let msg: Message;
      try {
        msg = decodeFrame(frame, this.#o.maxFrameBytes);
      } catch (err) {
        this.#badFrame(err as Error);
        return;
      }
      if (msg.t === "welcome") welcomeWaiter?.(msg.b);
      else if (msg.t === "error") {
        const text = `${msg.b.code}: ${msg.b.message}`;
        welcomeWaiter?.(new SessionEnded(text));
        const refused = msg.b.code === "auth_failed" || msg.b.code === "key_revoked";
        if (refused) this.#o.log.error("hub refused this node", { error: text });
        else this.#o.log.warn("hub reported an error", { error: text });
        if (refused) this.#o.onRefused?.(msg.b.code, msg.b.message);
        // Only these end the session; a refusal of one message leaves the connection as it is.
        if (refused || msg.b.code === "hello_required") {
          void transport.close();
          endSession(text);
        }
      } else if (msg.t === "ack") this.#onAck(msg.b, msg.ts);
      else this.#o.onMessage?.(msg);
    });

    await transport.connect();
    if (this.#abort.signal.aborted) {
      await transport.close();
      return false;
    }
    const hello = { ...(await this.#o.hello(transport)), last_acked: this.#acked };
    const welcome = await new Promise<WelcomeBody | Error>((resolve) => {
      const timer = this.#clock.setTimeout(
        () => resolve(new Error("no welcome from hub within 10 s")),
        10_000,
      );
      welcomeWaiter = (w) => {
        this.#clock.clearTimeout(timer);
        welcomeWaiter = undefined;
        resolve(w);
      };
      transport.send(
        encodeFrame(envelope("hello", this.#o.nodeId, hello, { ts: this.#clock.now() })),
        "hello",
      );
    });
    if (welcome instanceof Error) {
      await transport.close();
      throw welcome;
    }
    this.#startSession(welcome);
    this.#endpoint = url;
    this.#o.onWelcome?.(welcome, url);
    onEstablished();
    this.#reconnects += 1;
    this.#setConnected(true);
    this.#o.log.info("connected to hub", {
      endpoint: redactUrl(url),
      hub: welcome.hub_id,
      last_acked: welcome.last_acked,
    });
    this.#pump();

    const timer = this.#clock.setInterval(() => this.#tick(transport), 1000);
    let lastBeat = 0;
    const beat = () => {
      const now = this.#clock.now();
      if (now - lastBeat < this.#beatEvery()) return;
      lastBeat = now;
      const body: Body<"heartbeat"> = { pending: this.#o.outbox.pending };
      if (this.#rtt !== undefined) body.rtt = this.#rtt;
      transport.send(encodeFrame(envelope("heartbeat", this.#o.nodeId, body, { ts: now })), "heartbeat");
    };
    beat();
    const beatTimer = this.#clock.setInterval(beat, 250);
    // A heartbeat is answered by an ack: the round trip the transport asks for to confirm its session.
    transport.onProbe?.(() => {
      lastBeat = 0;
      beat();
    });
    this.#lastRx = this.#clock.now();
    const reason = closedReason ?? (await ended);
    this.#clock.clearInterval(timer);
    this.#clock.clearInterval(beatTimer);
    if (!transport.closed) await transport.close();
    if (!this.#abort.signal.aborted)
      this.#o.log.warn("disconnected from hub", { endpoint: redactUrl(url), reason });
    return true;
  }

  // The hub's wish wins when it asks for more frequent heartbeats than configured: its timeouts assume it.
  #beatEvery(): number {
    return this.#hubBeatMs > 0 ? Math.min(this.#heartbeatMs, this.#hubBeatMs) : this.#heartbeatMs;
  }

  #startSession(welcome: WelcomeBody): void {
    this.#rttMax = undefined;
    this.#hubBeatMs = welcome.heartbeat_ms;
    const outbox = this.#o.outbox;
    let acked = welcome.last_acked;
    if (welcome.last_acked > outbox.lastSeq()) {
      // The hub remembers more than we ever numbered: our store was reset. What we hold is new to
      // the hub, so it is renumbered above the hub's mark instead of being taken as acked.
      const moved = outbox.renumberAbove(welcome.last_acked);
      if (moved > 0) this.#o.log.warn("local store is behind the hub; renumbered held messages", { moved });
      this.#highestSent = Math.max(this.#highestSent, welcome.last_acked);
    } else if (welcome.last_acked > outbox.sentMark) {
      // The hub cannot hold what never left: taking its word would delete entries it never had.
      acked = outbox.sentMark;
      this.#acksRefused += 1;
      this.#badFrame(
        new Error(`welcome last_acked ${welcome.last_acked} is above the highest sequence sent (${acked})`),
      );
    }
    this.#acked = acked;
    this.#highestSent = Math.max(this.#highestSent, outbox.sentMark);
    outbox.ackUpTo(acked);
    this.#nextSend = Math.max(this.#acked + 1, outbox.lowest() ?? this.#acked + 1);
    this.#inflight = [];
  }

  #onAck(ack: Body<"ack">, hubTime: number): void {
    const now = this.#clock.now();
    if (ack.echo !== undefined) {
      this.#rtt = Math.max(0, now - ack.echo);
      this.#rttMax = Math.max(this.#rttMax ?? 0, this.#rtt);
      this.#offset = Math.round(hubTime - (ack.echo + this.#rtt / 2));
    }
    if (ack.upto > this.#highestSent) {
      // Only what was sent can be stored; an ack above it would delete data the hub never had.
      this.#acksRefused += 1;
      this.#badFrame(
        new Error(`ack up to ${ack.upto} is above the highest sequence sent (${this.#highestSent})`),
      );
      return;
    }
    if (ack.upto > this.#acked) {
      this.#acked = ack.upto;
      this.#o.outbox.ackUpTo(ack.upto);
      while (this.#inflight.length > 0 && this.#inflight[0]!.seq <= ack.upto) this.#inflight.shift();
      if (this.#nextSend <= ack.upto) this.#nextSend = ack.upto + 1;
      this.#pump();
    }
  }

  // Sends stored messages oldest first while the window and the socket buffer allow.
  #pump(): void {
    const t = this.#transport;
    if (!this.#connected || !t) return;
    const outbox = this.#o.outbox;
    // Nothing is acked while pumping, so the lowest entry held stays the same throughout.
    const base = outbox.lowest();
    while (this.#inflight.length < this.#o.window && t.bufferedAmount() < 1 << 20) {
      const room = this.#o.window - this.#inflight.length;
      const entries = outbox.readFrom(this.#nextSend, Math.min(room, 32));
      if (entries.length === 0) return;
      const now = this.#clock.now();
      // Durable before anything leaves: what may have reached a hub is never replaced or renumbered.
      outbox.markSent(entries[entries.length - 1]!.seq);
      for (const e of entries) {
        const head = { v: PROTOCOL_VERSION, t: e.type, s: this.#o.nodeId, q: e.seq, base, ts: e.created };
        if (!t.send(encodeFrameRawBody(head, e.body), e.type)) return;
        if (e.seq > this.#highestSent) this.#highestSent = e.seq;
        this.#inflight.push({ seq: e.seq, at: now });
        this.#nextSend = e.seq + 1;
      }
    }
  }

  #tick(transport: Transport): void {
    const now = this.#clock.now();
    // A hub that went silent (half-open TCP, or a broker up with no hub behind it) ends the session.
    if (now - this.#lastRx > 3 * this.#beatEvery() + 2000) {
      this.#o.log.warn("hub silent, reconnecting", { silent_ms: now - this.#lastRx });
      void transport.close();
      return;
    }
    const oldest = this.#inflight[0];
    if (oldest && now - oldest.at > this.#o.ackTimeoutMs) {
      // Go back N: the hub dropped or never saw something; resend everything after the last ack.
      this.#o.log.warn("no ack in time, resending from last ack", {
        last_acked: this.#acked,
        oldest: oldest.seq,
      });
      this.#inflight = [];
      this.#nextSend = this.#acked + 1;
      this.#pump();
    }
  }

  #setConnected(connected: boolean): void {
    if (this.#connected === connected) return;
    this.#connected = connected;
    if (!connected) this.#endpoint = undefined;
    this.#o.onStateChange?.(connected);
  }

  #badFrame(err: Error): void {
    this.#badFrames += 1;
    const now = this.#clock.now();
    if (now - this.#lastBadLog > 60_000) {
      this.#lastBadLog = now;
      this.#o.log.warn("bad frame from hub", { error: err.message, total: this.#badFrames });
    }
  }
}

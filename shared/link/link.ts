// The link to a hub: one reconnect loop, one handshake, one outbox drain; used by agents and child hubs.
import { type Clock, sleep, systemClock } from "../clock.ts";
import { redactUrl } from "../config/index.ts";
import { LogLimiter, type Logger } from "../log.ts";
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
import type { NumberedEntry, Outbox } from "./outbox.ts";
import type { Transport, TransportFactory } from "./transport.ts";

/** What an operator can do about a refusal, in words (undefined when the node fixes it itself). */
export function refusalHint(error: string): string | undefined {
  if (/join token/.test(error))
    return "check --join-token: the hub's DIR/join.token, or a token minted with POST /api/v1/join-tokens";
  if (/registered with another key/.test(error))
    return "another node has this id: give this agent its own --node-id (the default is the host name), or reset the node's key on the hub (POST /api/v1/nodes/{id}/reset-key) if this is the same node rebuilt";
  return undefined;
}

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
  /**
   * How often a heartbeat carries the store's counters (produced, dropped, held) and epoch (default:
   * every 5 heartbeats, at most a minute apart); the first beat of a session always does.
   */
  countersEveryMs?: number;
  onWelcome?: (welcome: WelcomeBody, endpoint: string) => void;
  /** Hub-to-node messages other than acks (config, allocs, command). */
  onMessage?: (msg: Message) => void;
  onStateChange?: (connected: boolean) => void;
  /** The hub refused this node (auth_failed, key_revoked): the session ends; the caller may change its identity. */
  onRefused?: (code: string, message: string) => void;
  /**
   * A session failed with this error (after it was logged). The store's owner can act on it: a full
   * disk (the outbox's own writes on the drain path) becomes the store's full state, which frees room.
   */
  onSessionError?: (err: unknown) => void;
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
  /** The store's epoch (a new one after the hub recognised a restored or copied store). */
  epoch: string;
  /** When a frame from the hub last arrived (0: never); edge-side fencing counts a silent hub from it. */
  lastRxMs: number;
}

class SessionEnded extends Error {}

/** Keeps one session to the first reachable hub endpoint and drains the outbox through it. */
export class Link {
  readonly #o: Required<
    Omit<LinkOptions, "onWelcome" | "onMessage" | "onStateChange" | "onRefused" | "onSessionError">
  > &
    Pick<LinkOptions, "onWelcome" | "onMessage" | "onStateChange" | "onRefused" | "onSessionError">;
  readonly #clock: Clock;
  // A refusal repeats on every reconnect (a wrong join token does not fix itself), a store that cannot
  // number repeats every second: once a minute is enough for each.
  readonly #refusals: LogLimiter;
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
  #lastBadLog = 0;
  /** Set while the store could not number the next messages (a full disk): the pump tries again each second. */
  #numberingFailed: { since: number } | undefined;
  /** When the next heartbeat carries the counters. */
  #countersDue = 0;
  /** Failed attempts since the last session: the first is logged, then one summary a minute. */
  readonly #failing = { count: 0, since: 0, lastSummary: 0 };
  #wake: (() => void) | undefined;
  /** This session's window: the configured one, or less when the hub's welcome asks. */
  #window = 0;

  constructor(opts: LinkOptions) {
    this.#o = {
      window: 64,
      ackTimeoutMs: 10_000,
      reconnectBaseMs: 200,
      reconnectCapMs: 3_000,
      failuresPerEndpoint: 3,
      countersEveryMs: Math.min(60_000, 5 * opts.heartbeatMs),
      clock: systemClock,
      ...opts,
    };
    this.#clock = this.#o.clock;
    this.#refusals = new LogLimiter(this.#o.log, { now: () => this.#clock.now(), maxKeys: 16 });
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
      epoch: this.#o.outbox.epoch,
      lastRxMs: this.#lastRx,
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
      // A busy hub (admitting a reconnect storm) says when to come back: never sooner than that.
      let retryAfterMs = 0;
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
        retryAfterMs = (err as { retryAfterMs?: number }).retryAfterMs ?? 0;
        if (!signal.aborted) {
          this.#linkFailed(url, (err as Error).message);
          this.#o.onSessionError?.(err);
        }
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
      const delay =
        retryAfterMs +
        backoffDelay(retryAfterMs > 0 ? 0 : attempt, {
          baseMs: this.#o.reconnectBaseMs,
          capMs: this.#o.reconnectCapMs,
        });
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
        if (refused)
          this.#refusals.error(text, "hub refused this node", { error: text, hint: refusalHint(text) });
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
    const outbox = this.#o.outbox;
    const hello: HelloBody = {
      ...(await this.#o.hello(transport)),
      last_acked: this.#acked,
      epoch: outbox.epoch,
      seq_high: outbox.lastSeq(),
    };
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

    const timer = this.#clock.setInterval(() => this.#tick(transport), 1000);
    let lastBeat = 0;
    const beat = () => {
      const now = this.#clock.now();
      if (now - lastBeat < this.#beatEvery()) return;
      lastBeat = now;
      const body: Body<"heartbeat"> = { pending: outbox.pending };
      if (this.#rtt !== undefined) body.rtt = this.#rtt;
      if (now >= this.#countersDue) {
        // Now and then, not every beat: control traffic has a budget (DESIGN §10).
        this.#countersDue = now + this.#o.countersEveryMs;
        const c = outbox.counters();
        body.epoch = outbox.epoch;
        body.produced = c.produced;
        body.dropped = c.dropped;
        // Reasons with nothing dropped are left out: nothing to split in the common case.
        const by = Object.entries(c.droppedBy).filter(([, n]) => n > 0);
        if (by.length > 0) body.dropped_by = Object.fromEntries(by);
        body.held = outbox.held();
      }
      transport.send(encodeFrame(envelope("heartbeat", this.#o.nodeId, body, { ts: now })), "heartbeat");
    };
    // The first beat goes before the backlog: it tells the hub the epoch the messages after it come from.
    beat();
    this.#pump();
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
    this.#countersDue = 0;
    // The hub's share of its in-flight budget for this session, when it names one.
    this.#window = Math.min(this.#o.window, welcome.window ?? this.#o.window);
    const outbox = this.#o.outbox;
    const mark = welcome.last_acked;
    const issued = outbox.lastSeq();
    if (mark > issued) {
      // The hub holds numbers this store never handed out: the store is behind the hub.
      if (welcome.restored) {
        // A restored snapshot or a copy of a store the hub heard from: what it numbered went out under
        // those numbers from the original, and the hub stored it. Its unsent rows may be stored too
        // (the original sent them under other numbers): they go under a new epoch, and the hub keeps
        // each sample once. Its numbers go on above the hub's, so they cannot collide.
        const acked = outbox.ackUpTo(mark);
        const from = outbox.epoch;
        const epoch = outbox.newEpoch();
        this.#o.log.warn("local store was restored from a snapshot or copied; started a new epoch", {
          from,
          epoch,
          store_seq: issued,
          hub_seq: mark,
          acked,
        });
      } else {
        // A store the hub has no record of (a new one for a known node): numbers it handed out were
        // never stored, so its held messages go again, numbered above the hub's mark.
        const moved = outbox.unnumber();
        this.#o.log.warn("local store is behind the hub; held messages numbered above its mark", {
          store_seq: issued,
          hub_seq: mark,
          moved,
        });
      }
      outbox.ensureSeqAbove(mark);
      // What the hub counted for this node beyond this store is carried on: counters never go back.
      if (welcome.counters) outbox.carryOn(welcome.counters);
    }
    this.#acked = mark;
    outbox.ackUpTo(mark);
    this.#nextSend = Math.max(mark + 1, outbox.lowest() ?? mark + 1);
    this.#inflight = [];
  }

  #onAck(ack: Body<"ack">, hubTime: number): void {
    const now = this.#clock.now();
    if (ack.echo !== undefined) {
      this.#rtt = Math.max(0, now - ack.echo);
      this.#rttMax = Math.max(this.#rttMax ?? 0, this.#rtt);
      this.#offset = Math.round(hubTime - (ack.echo + this.#rtt / 2));
    }
    const issued = this.#o.outbox.lastSeq();
    if (ack.upto > issued) {
      // Only what was sent can be stored; an ack above it would delete data the hub never had.
      this.#acksRefused += 1;
      this.#badFrame(new Error(`ack up to ${ack.upto} is above the highest sequence sent (${issued})`));
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

  // Sends stored messages in order (numbered ones again first, then the unsent) while the window and
  // the socket buffer allow.
  #pump(): void {
    const t = this.#transport;
    if (!this.#connected || !t) return;
    const outbox = this.#o.outbox;
    while (this.#inflight.length < this.#window && t.bufferedAmount() < 1 << 20) {
      const room = this.#window - this.#inflight.length;
      // Numbered durably before anything leaves: a restart resends the same row under the same number.
      let entries: NumberedEntry[];
      try {
        entries = outbox.take(this.#nextSend, Math.min(room, 32));
      } catch (err) {
        // The store cannot write the numbers now (its disk is full): nothing leaves unnumbered, and the
        // session stays up (acks of what went before still free room); the next tick tries again.
        this.#numberingStalled(err as Error);
        return;
      }
      if (this.#numberingFailed) {
        this.#o.log.info("numbering messages again", {
          stalled_s: Math.round((this.#clock.now() - this.#numberingFailed.since) / 1000),
        });
        this.#numberingFailed = undefined;
      }
      if (entries.length === 0) return;
      const now = this.#clock.now();
      // Nothing numbered is ever dropped, so the lowest held number is the oldest the hub may lack.
      const base = outbox.lowest();
      for (const e of entries) {
        const head = { v: PROTOCOL_VERSION, t: e.type, s: this.#o.nodeId, q: e.seq, base, ts: e.created };
        if (!t.send(encodeFrameRawBody(head, e.body), e.type)) return;
        this.#inflight.push({ seq: e.seq, at: now });
        this.#nextSend = e.seq + 1;
      }
    }
  }

  #numberingStalled(err: Error): void {
    const now = this.#clock.now();
    this.#numberingFailed ??= { since: now };
    this.#refusals.warn("numbering", "cannot number messages to send; trying again each second", {
      error: err.message,
      since_s: Math.round((now - this.#numberingFailed.since) / 1000),
    });
  }

  #tick(transport: Transport): void {
    const now = this.#clock.now();
    if (this.#numberingFailed) this.#pump();
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

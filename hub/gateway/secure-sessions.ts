// The hub's side of the secure session layer: answers handshakes, opens and seals every frame, bounds what strangers cost.
import { type Logger, LogLimiter } from "../../shared/log.ts";
import type { MetricsRegistry } from "../../shared/metrics.ts";
import type { FrameTopic } from "../../shared/link/index.ts";
import { decodeCbor, encodeCbor, encodeFrame, envelope, ID_PATTERN } from "../../shared/protocol/index.ts";
import {
  FRAME,
  HANDSHAKE_ID_BYTES,
  type OpenFailure,
  handshakeId,
  hubTokenProof,
  type KeyPair,
  PROLOGUE,
  refuseFrame,
  SESSION_PROTOCOL,
  SecureChannel,
  XXHandshake,
} from "../../shared/secure/index.ts";
import type { Registry } from "../registry/index.ts";
import type { Gateway, Peer } from "./gateway.ts";
import { AdmissionGate } from "./admission.ts";
import { TokenBucket } from "./token-bucket.ts";

/** One connection (a WebSocket) or one node's topics (MQTT), before any session exists. */
export interface RawPeer {
  readonly via: "ws" | "mqtt";
  readonly remote: string;
  send(frame: Uint8Array, topic: FrameTopic): void;
  close(reason: string): void;
}

/** An authenticated session: the channel, and the peer the gateway knows it by. */
interface Session {
  readonly node: string;
  readonly channel: SecureChannel;
  readonly raw: RawPeer;
  readonly inner: Peer;
  admitted: boolean;
  /** No more frames go out or come in. */
  ended: boolean;
  /** The gateway was told it is gone. */
  closed: boolean;
  /** When the handshake completed (a candidate not admitted by handshakeTimeoutMs later expires). */
  readonly at: number;
}

/** What a WebSocket connection holds (kept in its data): its handshake, then its session. */
export interface WsConn {
  readonly raw: RawPeer;
  hs: XXHandshake | undefined;
  session: Session | undefined;
  bad: number;
  readonly opened: number;
}

export interface SecureLimits {
  /** Handshake answers per second, hub-wide (each costs three X25519 operations). */
  handshakesPerSecond: number;
  /**
   * New sessions admitted per second, hub-wide, after `admissionBurst` at once: past it a handshake
   * is answered `busy` with the time to come back (a reconnect storm is let in gradually).
   */
  admissionsPerSecond: number;
  admissionBurst: number;
  /** Clear refusals per second, hub-wide (on MQTT anyone can make the hub publish them). */
  refusalsPerSecond: number;
  /** MQTT handshakes in progress and sessions not yet admitted, hub-wide. */
  maxPending: number;
  /** A WebSocket that has not completed a handshake by then is closed. */
  handshakeTimeoutMs: number;
  /** Largest frame taken before a session exists. */
  preAuthFrameBytes: number;
  /** Unreadable frames before an unauthenticated WebSocket is closed. */
  badFramesBeforeClose: number;
}

export const DEFAULT_SECURE_LIMITS: SecureLimits = {
  handshakesPerSecond: 2000,
  admissionsPerSecond: 500,
  admissionBurst: 250,
  refusalsPerSecond: 20,
  maxPending: 1024,
  handshakeTimeoutMs: 10_000,
  preAuthFrameBytes: 16 * 1024,
  badFramesBeforeClose: 3,
};

type Counter = (by?: number, labels?: Record<string, string>) => void;

/** Authenticates every peer before the gateway sees a single message from it. */
export class SecureSessions {
  readonly #gateway: Gateway;
  readonly #registry: Registry;
  readonly #hubKey: KeyPair;
  readonly #hubId: string;
  readonly #route: string | undefined;
  readonly #now: () => number;
  readonly #limits: SecureLimits;
  readonly #handshakes: TokenBucket;
  readonly #refusals: TokenBucket;
  readonly #admission: AdmissionGate;
  // MQTT: handshakes waiting for message 3 (by the hub's ephemeral id), sessions waiting for their
  // hello to be admitted, and admitted sessions. Only the last grows with the fleet.
  readonly #pending = new Map<string, { hs: XXHandshake; node: string; at: number }>();
  readonly #candidates = new Map<string, Session[]>();
  #candidateCount = 0;
  readonly #sessions = new Map<string, Session>();
  readonly #countRefused: Counter;
  readonly #countHandshakes: Counter;
  // One gate per kind of message, so a flood of one (forged presences, say) cannot hide another.
  readonly #logGate: LogLimiter;

  constructor(o: {
    gateway: Gateway;
    registry: Registry;
    hubKey: KeyPair;
    hubId: string;
    log: Logger;
    metrics: MetricsRegistry;
    now?: () => number;
    limits?: Partial<SecureLimits>;
    /** Replicas: this replica's MQTT uplink route, named in message 2 (shared/link/topics.ts). */
    route?: string;
  }) {
    this.#gateway = o.gateway;
    this.#route = o.route;
    this.#registry = o.registry;
    this.#hubKey = o.hubKey;
    this.#hubId = o.hubId;
    this.#now = o.now ?? Date.now;
    this.#logGate = new LogLimiter(o.log, { now: this.#now });
    this.#limits = { ...DEFAULT_SECURE_LIMITS, ...o.limits };
    this.#handshakes = new TokenBucket(
      this.#limits.handshakesPerSecond,
      this.#limits.handshakesPerSecond,
      this.#now,
    );
    this.#admission = new AdmissionGate({
      perSecond: this.#limits.admissionsPerSecond,
      burst: this.#limits.admissionBurst,
      maxRetryAfterMs: 60_000,
      now: this.#now,
    });
    this.#refusals = new TokenBucket(
      this.#limits.refusalsPerSecond,
      this.#limits.refusalsPerSecond * 3,
      this.#now,
    );
    this.#countRefused = o.metrics.counter(
      "novacron_hub_frames_unauthenticated_total",
      "Frames refused by the session layer (forged, replayed, no session, old protocol, handshake failures, rate limited), by reason",
    );
    this.#countHandshakes = o.metrics.counter(
      "novacron_hub_handshakes_total",
      "Handshakes answered and completed, by stage",
    );
    o.metrics.gauge(
      "novacron_hub_admission_waiting",
      "Agents told the hub is busy and when to come back, not yet admitted (decaying estimate)",
      () => this.#admission.waiting,
    );
    o.metrics.gauge(
      "novacron_hub_handshakes_pending",
      "MQTT handshakes and sessions not yet admitted",
      () => this.#pending.size + this.#candidateCount,
    );
  }

  /** The hub's public key, for agents to pin. */
  get publicKey(): Uint8Array {
    return this.#hubKey.publicKey;
  }

  // --- WebSocket: one connection, one handshake, one session.

  /** A new WebSocket connection; the caller closes it if `expired` says so later. */
  openWs(raw: RawPeer): WsConn {
    return { raw, hs: undefined, session: undefined, bad: 0, opened: this.#now() };
  }

  /** Whether a connection has overstayed its deadline without a session whose hello was admitted. */
  expired(conn: WsConn): boolean {
    return !conn.session?.admitted && this.#now() - conn.opened > this.#limits.handshakeTimeoutMs;
  }

  onWsFrame(conn: WsConn, frame: Uint8Array): void {
    const kind = frame[0];
    if (conn.session) {
      if (kind === FRAME.data) this.#openData(conn.session, frame);
      else this.#stranger(conn, "unexpected");
      return;
    }
    if (frame.byteLength > this.#limits.preAuthFrameBytes) {
      this.#countRefused(1, { reason: "too_large_before_session" });
      conn.raw.close("frame too large before a session");
      return;
    }
    if (kind === FRAME.hello1 && !conn.hs) {
      const hs = this.#answer(conn.raw, frame);
      if (hs === "busy") return;
      conn.hs = hs;
      if (!conn.hs) this.#stranger(conn, "handshake");
      return;
    }
    if (kind === FRAME.hello3 && conn.hs) {
      const hs = conn.hs;
      conn.hs = undefined;
      const session = this.#complete(hs, conn.raw, frame, undefined);
      conn.session = session === "unreadable" ? undefined : session;
      if (!conn.session) conn.raw.close("handshake failed");
      return;
    }
    if (kind !== undefined && kind >= 0xa0 && kind <= 0xbf) {
      this.#oldProtocol(conn.raw, frame);
      conn.raw.close("protocol 1 is not supported");
      return;
    }
    this.#stranger(conn, kind === FRAME.data ? "no_session" : "unexpected");
  }

  onWsClosed(conn: WsConn): void {
    if (conn.session) this.#end(conn.session);
  }

  // --- MQTT: a node's topics; state is made only for handshakes in progress (bounded) and sessions.

  /** A frame published on a node's uplink topic. `raw` answers on its downlink. */
  onMqttFrame(raw: RawPeer, frame: Uint8Array): void {
    const node = raw.remote;
    const kind = frame[0];
    if (kind === FRAME.data) {
      const current = this.#sessions.get(node);
      let replayed = false;
      for (const s of [...(current ? [current] : []), ...(this.#candidates.get(node) ?? [])]) {
        const verdict = this.#tryOpen(s, frame);
        if (verdict === "opened") return;
        if (verdict === "replayed") replayed = true;
      }
      if (!current && !this.#candidates.has(node)) {
        this.#countRefused(1, { reason: "no_session" });
        this.#refuse(raw, "no_session", "this hub has no session for you: start a new handshake");
      } else this.#countRefused(1, { reason: replayed ? "replayed" : "forged" });
      return;
    }
    if (frame.byteLength > this.#limits.preAuthFrameBytes) {
      this.#countRefused(1, { reason: "too_large_before_session" });
      return;
    }
    if (kind === FRAME.hello1) {
      const hs = this.#answer(raw, frame);
      if (!hs || hs === "busy") return;
      if (this.#pending.size >= this.#limits.maxPending) {
        const oldest = this.#pending.keys().next().value as string;
        this.#pending.delete(oldest);
        this.#countRefused(1, { reason: "pending_evicted" });
      }
      this.#pending.set(handshakeId(hs.ephemeral!), { hs, node, at: this.#now() });
      return;
    }
    if (kind === FRAME.hello3 && frame.byteLength > 1 + HANDSHAKE_ID_BYTES) {
      const id = Buffer.from(frame.subarray(1, 1 + HANDSHAKE_ID_BYTES)).toString("hex");
      const p = this.#pending.get(id);
      if (!p || p.node !== node || this.#now() - p.at > this.#limits.handshakeTimeoutMs) {
        this.#countRefused(1, { reason: "handshake" });
        return;
      }
      // Read on a copy: message 2 is public on the broker, so anyone can send a junk message 3 for it,
      // and that must not spoil the real node's handshake.
      const session = this.#complete(p.hs.clone(), raw, frame, node);
      if (session === "unreadable") return;
      this.#pending.delete(id);
      if (!session) return;
      const list = this.#candidates.get(node) ?? [];
      // At most two sessions of one node wait for admission, and the hub-wide cap evicts the oldest:
      // candidates also expire (sweep), so abandoned handshakes never fill it for good.
      if (list.length >= 2) this.#dropCandidate(node, list[0]!);
      if (this.#candidateCount >= this.#limits.maxPending) {
        this.#evictOldestCandidate();
        this.#countRefused(1, { reason: "pending_evicted" });
      }
      this.#candidates.set(node, [...(this.#candidates.get(node) ?? []), session]);
      this.#candidateCount += 1;
      return;
    }
    if (kind !== undefined && kind >= 0xa0 && kind <= 0xbf) this.#oldProtocol(raw, frame);
    else this.#countRefused(1, { reason: "unexpected" });
  }

  /**
   * The broker published a node's presence. Only `offline:<secret>` with the secret the node told
   * this session ends it: a Last Will carries it, a forger does not know it.
   */
  onMqttPresence(node: string, payload: string): void {
    if (!payload.startsWith("offline")) return;
    const session = this.#sessions.get(node);
    if (!session) return;
    const secret = payload.slice("offline:".length);
    if (secret.length > 0 && session.inner.presence === secret) {
      this.#end(session);
      return;
    }
    this.#countRefused(1, { reason: "forged_presence" });
    this.#logOnce("presence refused", { node, error: "an offline presence without this session's secret" });
  }

  /** A retained message on an uplink topic: refused unread. */
  countRetained(): void {
    this.#countRefused(1, { reason: "retained" });
  }

  /** The broker link dropped: every MQTT session is gone with it. */
  mqttLost(): void {
    for (const s of [...this.#sessions.values()]) this.#end(s);
    for (const list of this.#candidates.values()) for (const s of list) this.#forget(s);
    this.#candidates.clear();
    this.#candidateCount = 0;
    this.#pending.clear();
  }

  /** Expires MQTT handshakes that never finished (called every few seconds). */
  sweep(): void {
    const cutoff = this.#now() - this.#limits.handshakeTimeoutMs;
    for (const [id, p] of this.#pending) if (p.at < cutoff) this.#pending.delete(id);
    for (const [node, list] of [...this.#candidates]) {
      for (const c of list) if (c.at < cutoff) this.#dropCandidate(node, c);
    }
  }

  #evictOldestCandidate(): void {
    let oldest: Session | undefined;
    for (const list of this.#candidates.values())
      for (const c of list) if (!oldest || c.at < oldest.at) oldest = c;
    if (oldest) this.#dropCandidate(oldest.node, oldest);
  }

  // --- the handshake

  // Message 1 in, message 2 out. Undefined when the frame is not a handshake we will answer; "busy"
  // when the admission gate asked the peer to come back later.
  #answer(raw: RawPeer, frame: Uint8Array): XXHandshake | undefined | "busy" {
    const admit = this.#admission.take();
    if (!admit.ok) {
      this.#countRefused(1, { reason: "busy" });
      const message = `admitting other agents first: try again in ${admit.retryAfterMs} ms`;
      // A WebSocket answer costs one small frame to its own peer; on a broker anyone can make the
      // hub publish, so there the refusal budget applies (and a node only logs it).
      if (raw.via === "ws" || this.#refusals.take())
        raw.send(refuseFrame("busy", message, admit.retryAfterMs), "hs");
      return "busy";
    }
    if (!this.#handshakes.take()) {
      this.#countRefused(1, { reason: "rate_limited" });
      return undefined;
    }
    const hs = new XXHandshake("responder", this.#hubKey, { prologue: PROLOGUE });
    try {
      const read = hs.read(frame.subarray(1));
      const hello = decodeCbor(read.payload) as { v?: unknown; tok?: unknown } | null;
      if (hello?.v !== SESSION_PROTOCOL) {
        this.#countRefused(1, { reason: "unsupported_version" });
        this.#refuse(raw, "unsupported_version", `this hub speaks session protocol ${SESSION_PROTOCOL}`);
        return undefined;
      }
      // A node that does not know this hub yet asks it to prove the join token (never sent by either side).
      const tokKey =
        typeof hello.tok === "string" && hello.tok.length <= 64
          ? this.#registry.joinTokens.activeKey(hello.tok, this.#now())
          : undefined;
      const m2 = hs.write((h) => {
        const body: Record<string, unknown> = { v: SESSION_PROTOCOL, hub: this.#hubId };
        // A replica among several names its own uplink, so the rest of an MQTT session reaches it.
        if (this.#route !== undefined && raw.via === "mqtt") body.rt = this.#route;
        if (tokKey) body.tp = hubTokenProof(tokKey, h);
        else if (typeof hello.tok === "string") body.te = "this hub has no active join token with that id";
        return encodeCbor(body);
      });
      const out = new Uint8Array(1 + HANDSHAKE_ID_BYTES + m2.byteLength);
      out[0] = FRAME.hello2;
      out.set(hs.remoteEphemeral!.subarray(0, HANDSHAKE_ID_BYTES), 1);
      out.set(m2, 1 + HANDSHAKE_ID_BYTES);
      raw.send(out, "hs");
      this.#countHandshakes(1, { stage: "answered" });
      return hs;
    } catch {
      this.#countRefused(1, { reason: "handshake" });
      return undefined;
    }
  }

  // Message 3 in: the node proved its static key. Undefined when it failed or may not claim the id.
  #complete(
    hs: XXHandshake,
    raw: RawPeer,
    frame: Uint8Array,
    topicNode: string | undefined,
  ): Session | undefined | "unreadable" {
    let node: string;
    let channel: SecureChannel;
    try {
      const read = hs.read(frame.subarray(1 + HANDSHAKE_ID_BYTES));
      const body = decodeCbor(read.payload) as { node?: unknown } | null;
      if (typeof body?.node !== "string" || !ID_PATTERN.test(body.node)) throw new Error("no node id");
      node = body.node;
      channel = new SecureChannel(hs.split());
    } catch {
      this.#countRefused(1, { reason: "handshake" });
      return "unreadable";
    }
    const refuse = (message: string) => {
      // Sealed: the node knows this refusal is the hub's own.
      raw.send(
        channel.seal(
          encodeFrame(envelope("error", this.#hubId, { code: "auth_failed", message }, { ts: this.#now() })),
        ),
        "error",
      );
      this.#countRefused(1, { reason: "auth_failed" });
      this.#logOnce("session refused", { node, remote: raw.remote, error: message });
    };
    if (topicNode !== undefined && node !== topicNode) {
      refuse(`a session for ${node} cannot run on the topics of ${topicNode}`);
      return undefined;
    }
    if (!this.#registry.mayClaim(node, channel.remoteStatic)) {
      refuse(`node ${node} is registered with another key`);
      return undefined;
    }
    this.#countHandshakes(1, { stage: "completed" });
    const session: Session = {
      node,
      channel,
      raw,
      admitted: false,
      ended: false,
      closed: false,
      at: this.#now(),
      inner: {
        via: raw.via,
        remote: raw.remote,
        node: undefined,
        auth: { key: channel.remoteStatic, hash: channel.hash },
        send: (f, type) => {
          if (!session.ended) raw.send(channel.seal(f), type);
        },
        close: (reason) => {
          this.#end(session);
          if (raw.via === "ws") raw.close(reason);
        },
        admitted: () => this.#admitted(session),
      },
    };
    return session;
  }

  #admitted(session: Session): void {
    session.admitted = true;
    if (session.raw.via !== "mqtt") return;
    this.#dropCandidate(session.node, session, false);
    const previous = this.#sessions.get(session.node);
    this.#sessions.set(session.node, session);
    if (previous && previous !== session) previous.ended = true;
  }

  #dropCandidate(node: string, session: Session, end = true): void {
    const list = this.#candidates.get(node);
    if (!list?.includes(session)) return;
    const rest = list.filter((s) => s !== session);
    if (rest.length > 0) this.#candidates.set(node, rest);
    else this.#candidates.delete(node);
    this.#candidateCount -= 1;
    if (end) this.#forget(session);
  }

  // A candidate dropped before it was admitted: the gateway hears its end, so a hello of it still
  // being admitted starts nothing.
  #forget(session: Session): void {
    session.ended = true;
    if (session.closed) return;
    session.closed = true;
    this.#gateway.onClosed(session.inner);
  }

  #end(session: Session): void {
    if (session.closed) return;
    session.closed = true;
    session.ended = true;
    if (this.#sessions.get(session.node) === session) this.#sessions.delete(session.node);
    this.#dropCandidate(session.node, session);
    this.#gateway.onClosed(session.inner);
  }

  // --- data frames

  #openData(session: Session, frame: Uint8Array): void {
    const verdict = this.#tryOpen(session, frame);
    if (verdict !== "opened")
      this.#countRefused(1, { reason: verdict === "replayed" ? "replayed" : "forged" });
  }

  // Opens a data frame of `session` and hands it on. "replayed" is only a verdict of the window, made
  // before the tag is checked: a frame of a newer session of the same node can look replayed to an
  // older one, so the caller tries every session before it counts a replay.
  #tryOpen(session: Session, frame: Uint8Array): "opened" | OpenFailure {
    if (session.ended) return "forged";
    const plain = session.channel.open(frame);
    if (typeof plain === "string") return plain;
    this.#gateway.onFrame(session.inner, plain);
    return "opened";
  }

  #stranger(conn: WsConn, reason: string): void {
    this.#countRefused(1, { reason });
    conn.bad += 1;
    if (!conn.session && conn.bad >= this.#limits.badFramesBeforeClose) {
      conn.raw.close("too many unreadable frames before a session");
    }
  }

  // An agent of protocol 1 gets a refusal it can read: its own framing, naming both versions.
  #oldProtocol(raw: RawPeer, _frame: Uint8Array): void {
    this.#countRefused(1, { reason: "protocol_1" });
    if (!this.#refusals.take()) return;
    const message = `protocol version 1 is no longer supported: this hub speaks protocol ${SESSION_PROTOCOL} (authenticated sessions); upgrade the agent`;
    raw.send(
      encodeCbor({
        v: 1,
        t: "error",
        s: this.#hubId,
        ts: this.#now(),
        b: { code: "unsupported_version", message },
      }),
      "error",
    );
    this.#logOnce("protocol 1 agent refused", { remote: raw.remote });
  }

  #refuse(raw: RawPeer, code: string, message: string): void {
    if (this.#refusals.take()) raw.send(refuseFrame(code, message), "hs");
  }

  // Once a minute per kind, saying how many like it were held back.
  #logOnce(msg: string, fields: Record<string, unknown>): void {
    this.#logGate.warn(msg, msg, fields);
  }
}

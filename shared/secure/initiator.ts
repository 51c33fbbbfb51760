// The node's side of a secure session: a Transport that runs the XX handshake, then seals and opens every frame.
import { type Clock, systemClock } from "../clock.ts";
import type { Logger } from "../log.ts";
import { decodeCbor, encodeCbor, PROTOCOL_VERSION } from "../protocol/index.ts";
import type { FrameTopic, Transport } from "../link/transport.ts";
import { ROUTE_PATTERN } from "../link/topics.ts";
import {
  encodeKey,
  FRAME,
  HANDSHAKE_ID_BYTES,
  handshakeId,
  joinTokenKey,
  keysEqual,
  PROLOGUE,
  parseJoinToken,
  readRefusal,
  SESSION_PROTOCOL,
  SecureChannel,
} from "./channel.ts";
import { concat, hmac, type KeyPair, XXHandshake } from "./noise.ts";

export interface InitiatorOptions {
  nodeId: string;
  /** This node's static key (generated on the node, never sent). */
  staticKey: () => KeyPair;
  /** Hub keys this node trusts. Empty: the first hub that proves it knows the join token is trusted. */
  trustedHubKeys: () => Uint8Array[];
  joinToken?: string;
  /** A hub key learned on first contact, for the caller to pin. */
  onHubKey?: (key: Uint8Array, hubId: string) => void;
  log: Logger;
  clock?: Clock;
  handshakeTimeoutMs?: number;
  /** Counts frames refused on this link, by reason (forged, replayed, retained, ...). */
  onRefused?: (reason: string) => void;
}

/** Counter labels of frames a node refuses. */
export type RefusedReason = "forged" | "replayed" | "short" | "handshake" | "untrusted_hub" | "unexpected";

const PROOF_LABEL_HUB = new TextEncoder().encode("novacron hub proves join token\0");
const PROOF_LABEL_NODE = new TextEncoder().encode("novacron node proves join token\0");
const PROOF_LABEL_LEGACY = new TextEncoder().encode("novacron node proves protocol 1 credential\0");

/** Proof that the hub knows a join token, bound to one handshake. */
export const hubTokenProof = (tokenKey: Uint8Array, hash: Uint8Array) =>
  hmac(tokenKey, PROOF_LABEL_HUB, hash);
/** Proof that the node knows a join token, bound to one session. */
export const nodeTokenProof = (tokenKey: Uint8Array, hash: Uint8Array) =>
  hmac(tokenKey, PROOF_LABEL_NODE, hash);
/** Proof that the node holds a credential issued under protocol 1 (keyed with its stored hash). */
export const legacyProof = (credHash: string, hash: Uint8Array) =>
  hmac(new TextEncoder().encode(credHash), PROOF_LABEL_LEGACY, hash);

/** Wraps a transport: connect() returns once the hub proved its key and the session keys are set. */
/** The hub is admitting other agents first and says when to try again (a WebSocket's answer only). */
export class HubBusyError extends Error {
  readonly code = "busy";
  readonly retryAfterMs: number;
  constructor(message: string, retryAfterMs: number) {
    super(message);
    this.name = "HubBusyError";
    this.retryAfterMs = retryAfterMs;
  }
}

export class SecureTransport implements Transport {
  readonly #inner: Transport;
  readonly #o: InitiatorOptions;
  readonly #clock: Clock;
  #channel: SecureChannel | undefined;
  #frameHandler: (frame: Uint8Array) => void = () => {};
  #probeHandler: () => void = () => {};
  #onHello2: ((frame: Uint8Array) => void) | undefined;
  #hubKey: Uint8Array | undefined;
  #hubId: string | undefined;
  #lastAuthentic = 0;
  #probeTimer: ReturnType<Clock["setTimeout"]> | undefined;
  #lastRefusalLog = 0;
  #closeHandler: (reason: string) => void = () => {};
  #onHandshakeClose: ((reason: string) => void) | undefined;

  constructor(inner: Transport, opts: InitiatorOptions) {
    this.#inner = inner;
    this.#o = opts;
    this.#clock = opts.clock ?? systemClock;
    inner.onFrame((frame) => this.#receive(frame));
    inner.onClose((reason) => {
      this.#clock.clearTimeout(this.#probeTimer);
      this.#onHandshakeClose?.(reason);
      this.#closeHandler(reason);
    });
  }

  get url(): string {
    return this.#inner.url;
  }

  get closed(): boolean {
    return this.#inner.closed;
  }

  get presenceSecret(): string | undefined {
    return this.#inner.presenceSecret;
  }

  /** The handshake hash: proofs in the hello are bound to it. */
  get handshakeHash(): Uint8Array | undefined {
    return this.#channel?.hash;
  }

  /** The hub's proven static key and id, once connected. */
  get hub(): { key: Uint8Array; id: string } | undefined {
    return this.#hubKey && this.#hubId ? { key: this.#hubKey, id: this.#hubId } : undefined;
  }

  async connect(): Promise<void> {
    await this.#inner.connect();
    await this.#handshake();
  }

  send(frame: Uint8Array, type: FrameTopic): boolean {
    const ch = this.#channel;
    if (!ch || this.#inner.closed) return false;
    return this.#inner.send(ch.seal(frame), type);
  }

  bufferedAmount(): number {
    return this.#inner.bufferedAmount();
  }

  onFrame(handler: (frame: Uint8Array) => void): void {
    this.#frameHandler = handler;
  }

  onClose(handler: (reason: string) => void): void {
    this.#closeHandler = handler;
  }

  onProbe(handler: () => void): void {
    this.#probeHandler = handler;
  }

  close(): Promise<void> {
    this.#clock.clearTimeout(this.#probeTimer);
    return this.#inner.close();
  }

  async #handshake(): Promise<void> {
    const o = this.#o;
    const trusted = o.trustedHubKeys();
    const token = o.joinToken ? parseJoinToken(o.joinToken) : undefined;
    if (trusted.length === 0 && !token) {
      throw new Error(
        "no hub key is trusted and no join token is set: cannot tell the real hub from a forger",
      );
    }
    const hs = new XXHandshake("initiator", o.staticKey(), { prologue: PROLOGUE });
    // Message 1 is in clear: it names the join token's id (not its secret) only when the hub must prove it.
    const first: Record<string, unknown> = { v: SESSION_PROTOCOL };
    if (trusted.length === 0 && token) first.tok = token.id;
    const m1 = hs.write(encodeCbor(first));
    const myId = handshakeId(hs.ephemeral!);
    const timeoutMs = o.handshakeTimeoutMs ?? 10_000;
    const accepted = await new Promise<XXHandshake | Error>((resolve) => {
      const timer = this.#clock.setTimeout(
        () => resolve(new Error(`no valid handshake answer from ${this.url} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const done = (r: XXHandshake | Error) => {
        this.#clock.clearTimeout(timer);
        this.#onHello2 = undefined;
        this.#onHandshakeClose = undefined;
        resolve(r);
      };
      this.#onHandshakeClose = (reason) =>
        done(new Error(`connection closed during the handshake: ${reason}`));
      this.#onHello2 = (frame) => {
        if (frame[0] === FRAME.refuse) {
          const r = readRefusal(frame);
          // In clear, so only a hint; a WebSocket is point to point, a broker topic is anyone's.
          if (r && this.#pointToPoint()) {
            const text = `hub refused the handshake: ${r.code}: ${r.message}`;
            done(
              r.code === "busy" && r.retryAfterMs !== undefined
                ? new HubBusyError(text, r.retryAfterMs)
                : new Error(text),
            );
          } else if (r) this.#logRefusal(r);
          return;
        }
        if (frame[0] !== undefined && frame[0] >= 0xa0 && frame[0] <= 0xbf) {
          const text = `the hub at ${this.url} speaks protocol 1; this agent speaks protocol ${PROTOCOL_VERSION}: upgrade the hub`;
          if (this.#pointToPoint()) done(new Error(text));
          return;
        }
        if (frame[0] !== FRAME.hello2 || frame.byteLength < 1 + HANDSHAKE_ID_BYTES) return;
        if (Buffer.from(frame.subarray(1, 1 + HANDSHAKE_ID_BYTES)).toString("hex") !== myId) return;
        // Try it on a copy: on a broker anyone may answer, and only the real hub's answer may count.
        const attempt = hs.clone();
        try {
          const read = attempt.read(frame.subarray(1 + HANDSHAKE_ID_BYTES));
          const hubKey = attempt.remoteStatic!;
          const body = decodeCbor(read.payload) as {
            v?: unknown;
            hub?: unknown;
            tp?: unknown;
            te?: unknown;
            rt?: unknown;
          };
          if (body?.v !== SESSION_PROTOCOL || typeof body.hub !== "string") throw new Error("bad answer");
          if (trusted.length > 0) {
            if (!trusted.some((k) => keysEqual(k, hubKey))) {
              this.#o.onRefused?.("untrusted_hub");
              const message = `the hub answered with key ${encodeKey(hubKey)}, which this node does not trust (check --hub-key)`;
              // A WebSocket is this hub's alone: say so now. On a broker anyone may have answered: wait on.
              if (this.#pointToPoint()) done(new Error(message));
              else this.#logRefusal({ code: "untrusted_hub", message });
              return;
            }
          } else {
            const proof = body.tp instanceof Uint8Array ? body.tp : undefined;
            if (
              !proof ||
              !keysEqual(proof, hubTokenProof(joinTokenKey(token!.secret), read.hashBeforePayload))
            ) {
              this.#o.onRefused?.("untrusted_hub");
              const why = typeof body.te === "string" ? body.te.slice(0, 200) : "it gave no proof";
              const message = `the hub did not prove it knows this node's join token (${why}); check --join-token, or pin the hub with --hub-key`;
              if (this.#pointToPoint()) done(new Error(message));
              else this.#logRefusal({ code: "untrusted_hub", message });
              return;
            }
          }
          this.#hubKey = hubKey;
          this.#hubId = body.hub;
          // One replica of several answered through a shared subscription: the rest of the session
          // (message 3 on) goes to it alone. Authenticated with the rest of message 2.
          if (typeof body.rt === "string" && ROUTE_PATTERN.test(body.rt)) this.#inner.route?.(body.rt);
          done(attempt);
        } catch {
          this.#o.onRefused?.("handshake");
        }
      };
      this.#inner.send(concat([Uint8Array.of(FRAME.hello1), m1]), "hs");
    });
    if (accepted instanceof Error) {
      await this.#inner.close();
      throw accepted;
    }
    const hubEphemeral = accepted.remoteEphemeral!;
    const m3 = accepted.write(encodeCbor({ node: o.nodeId }));
    this.#channel = new SecureChannel(accepted.split());
    this.#lastAuthentic = this.#clock.now();
    if (trusted.length === 0) o.onHubKey?.(this.#hubKey!, this.#hubId!);
    this.#inner.send(
      concat([Uint8Array.of(FRAME.hello3), hubEphemeral.subarray(0, HANDSHAKE_ID_BYTES), m3]),
      "hs",
    );
  }

  #pointToPoint(): boolean {
    return this.url.startsWith("ws");
  }

  #receive(frame: Uint8Array): void {
    const kind = frame[0];
    if (kind === FRAME.data) {
      const ch = this.#channel;
      const plain = ch ? ch.open(frame) : "unexpected";
      if (typeof plain === "string") {
        this.#o.onRefused?.(plain);
        return;
      }
      this.#lastAuthentic = this.#clock.now();
      this.#clock.clearTimeout(this.#probeTimer);
      this.#probeTimer = undefined;
      this.#frameHandler(plain);
      return;
    }
    if (!this.#channel) {
      this.#onHello2?.(frame);
      return;
    }
    if (kind === FRAME.refuse) {
      const r = readRefusal(frame);
      if (r?.code === "no_session") this.#probe();
      else if (r) this.#logRefusal(r);
      return;
    }
    // A second answer to our handshake (a replayed message 1 made the hub answer twice), or noise.
    if (kind !== FRAME.hello2) this.#o.onRefused?.("unexpected");
  }

  // The hub may have lost this session (it restarted): a round trip tells a real loss from a forged hint.
  #probe(): void {
    if (this.#probeTimer !== undefined) return;
    const asked = this.#clock.now();
    this.#probeHandler();
    this.#probeTimer = this.#clock.setTimeout(() => {
      this.#probeTimer = undefined;
      if (this.#lastAuthentic < asked) {
        this.#o.log.warn("hub no longer knows this session; starting a new one", { endpoint: this.url });
        void this.#inner.close();
      }
    }, 3000);
  }

  #logRefusal(r: { code: string; message: string }): void {
    const now = this.#clock.now();
    if (now - this.#lastRefusalLog < 60_000) return;
    this.#lastRefusalLog = now;
    this.#o.log.warn("hub link refusal", { endpoint: this.url, code: r.code, error: r.message });
  }
}

// A node's side of the hub link (an agent, or a child hub): its key, the hubs it trusts, the hello it proves itself with, key rotation.
import type { Clock } from "../clock.ts";
import type { Logger } from "../log.ts";
import type { HelloBody, Message, WelcomeBody } from "../protocol/index.ts";
import {
  decodeKey,
  encodeKey,
  generateKeyPair,
  joinTokenKey,
  type KeyPair,
  keyPairFromSecret,
  keysEqual,
  legacyProof,
  nodeTokenProof,
  parseJoinToken,
  SecureTransport,
} from "../secure/index.ts";
import type { TlsMaterial } from "../tls.ts";
import { Link } from "./link.ts";
import type { Outbox } from "./outbox.ts";
import type { TransportFactory } from "./transport.ts";
import { defaultTransports } from "./transports.ts";

/** What the link keeps on the node: the outbox, and small named state (keys, pinned hub keys). */
export interface LinkStore {
  readonly outbox: Outbox;
  getState(key: string): string | undefined;
  setState(key: string, value: string): void;
  /** A full disk met on the drain path (the agent's store frees room); optional. */
  readonly disk?: { hit(err: unknown): unknown };
}

export interface Identity {
  nodeId: string;
  level: number;
  labels: Record<string, string>;
  capabilities: string[];
  /** Named caches held, with their replication scope (told to the hub in every hello). */
  caches?: { name: string; replicate: "none" | "site" | "region" | "level" | "fleet"; prefetch?: number }[];
  joinToken: string;
  /** Hub keys from the config; when set, only these hubs are trusted. */
  hubKeys: string[];
  /** `hub` for a child hub that stands for its subtree; absent for an agent. */
  kind?: "hub";
  resources: HelloBody["resources"];
  version: string;
}

/** Counters of what the link refused from the far side, by reason. */
export type RefusedCounts = Map<string, number>;

/** Connects the agent's outbox to its hubs through authenticated sessions; keeps and rotates the node key. */
export class HubLink {
  readonly link: Link;
  // The global Web Crypto one: importing node:crypto for a UUID alone is not worth it.
  readonly bootId = crypto.randomUUID();
  /** Frames refused on the hub link (forged, replayed, untrusted hub, retained, ...). */
  readonly refused: RefusedCounts = new Map();
  #identity: Identity;
  readonly #store: LinkStore;
  readonly #log: Logger;
  readonly #allocGeneration: (() => number) | undefined;
  #key: KeyPair | undefined;
  #rotating = false;

  constructor(opts: {
    endpoints: string[];
    identity: Identity;
    store: LinkStore;
    log: Logger;
    clock?: Clock;
    heartbeatMs: number;
    maxFrameBytes: number;
    transports?: TransportFactory;
    /** CA, client certificate and key (PEM) for every wss:// and mqtts:// endpoint. */
    tls?: TlsMaterial;
    onMessage?: (msg: Message) => void;
    /** The desired-set generation applied locally, told to the hub in every hello. */
    allocGeneration?: () => number;
    /** The session came up (after the welcome) or went down. */
    onStateChange?: (connected: boolean) => void;
    /** The hub's welcome of each session, as it came (before the session counts as up). */
    onWelcome?: (welcome: WelcomeBody) => void;
  }) {
    this.#allocGeneration = opts.allocGeneration;
    this.#identity = opts.identity;
    this.#store = opts.store;
    this.#log = opts.log;
    const tls = opts.tls;
    const given = opts.transports ?? defaultTransports;
    const raw: TransportFactory = tls ? (url, ctx) => given(url, { ...ctx, tls }) : given;
    const count = (reason: string) => this.refused.set(reason, (this.refused.get(reason) ?? 0) + 1);
    const transports: TransportFactory = (url, ctx) =>
      new SecureTransport(raw(url, ctx), {
        nodeId: ctx.nodeId,
        staticKey: () => this.#nodeKey(),
        trustedHubKeys: () => this.#trustedHubKeys(),
        joinToken: this.#identity.joinToken,
        onHubKey: (key, hubId) => this.#pinHub(key, hubId),
        log: opts.log,
        ...(opts.clock ? { clock: opts.clock } : {}),
        onRefused: count,
      });
    this.link = new Link({
      endpoints: opts.endpoints,
      nodeId: opts.identity.nodeId,
      outbox: opts.store.outbox,
      transports,
      log: opts.log,
      ...(opts.clock ? { clock: opts.clock } : {}),
      heartbeatMs: opts.heartbeatMs,
      // Resend well before the hub would be declared silent (3 heartbeats), so a stalled link recovers in-session.
      ackTimeoutMs: Math.min(10_000, opts.heartbeatMs + 1000),
      maxFrameBytes: opts.maxFrameBytes,
      hello: (t) => this.#hello(t),
      ...(opts.onStateChange ? { onStateChange: opts.onStateChange } : {}),
      onWelcome: (w) => {
        opts.onWelcome?.(w);
        // The hub accepted our key: a protocol 1 credential has done its work.
        if (this.#store.getState("credential")) this.#store.setState("credential", "");
        // After the link marks itself connected (it does so right after this returns), so the offer can go out.
        if (w.rotate_key) queueMicrotask(() => this.rotateKey("the hub asked for it"));
      },
      // The outbox's writes on the drain path (numbering, acks) met a full disk: the store goes into its
      // full state, which releases its ballast, so the next session has room to drain.
      onSessionError: (err) => void this.#store.disk?.hit(err),
      onRefused: (code) => {
        // An operator revoked our key (it may have been stolen): a new one, joined with the token.
        if (code === "key_revoked") this.#newKey();
      },
      onMessage: (msg) => {
        if (msg.t === "rekeyed") this.#onRekeyed(msg.b.key, msg.b.expires);
        else if (msg.t === "command" && msg.b.kind === "rotate_key")
          this.rotateKey("an operator asked for it");
        else opts.onMessage?.(msg);
      },
    });
  }

  /** This node's public key (what the hub registers). */
  get publicKey(): string {
    return encodeKey(this.#nodeKey().publicKey);
  }

  // The node's static key: made on the node at first start, kept in its store, never sent.
  #nodeKey(): KeyPair {
    if (this.#key) return this.#key;
    const stored = this.#store.getState("node_key");
    const secret = stored ? decodeKey(stored) : undefined;
    if (secret) this.#key = keyPairFromSecret(secret);
    else {
      this.#key = generateKeyPair();
      this.#store.setState("node_key", encodeKey(this.#key.secret));
      this.#log.info("generated this node's key", { public_key: encodeKey(this.#key.publicKey) });
    }
    return this.#key;
  }

  #newKey(): void {
    this.#key = generateKeyPair();
    this.#store.setState("node_key", encodeKey(this.#key.secret));
    this.#store.setState("node_key_next", "");
    this.#rotating = false;
    this.#log.warn("the hub revoked this node's key; made a new one to join with", {
      public_key: encodeKey(this.#key.publicKey),
    });
  }

  #trustedHubKeys(): Uint8Array[] {
    const decode = (keys: string[]) => keys.flatMap((k) => decodeKey(k) ?? []);
    const configured = decode(this.#identity.hubKeys);
    if (configured.length > 0) return configured;
    return decode(JSON.parse(this.#store.getState("hub_keys") || "[]") as string[]);
  }

  #pinHub(key: Uint8Array, hubId: string): void {
    const learned = new Set<string>(JSON.parse(this.#store.getState("hub_keys") || "[]") as string[]);
    learned.add(encodeKey(key));
    this.#store.setState("hub_keys", JSON.stringify([...learned]));
    this.#log.info("trusting the hub's key from now on (it proved it knows the join token)", {
      hub: hubId,
      hub_key: encodeKey(key),
    });
  }

  #hello(t: unknown): Omit<HelloBody, "last_acked"> {
    const id = this.#identity;
    const hello: Omit<HelloBody, "last_acked"> = {
      node_id: id.nodeId,
      level: id.level,
      labels: id.labels,
      capabilities: id.capabilities,
      resources: id.resources,
      version: id.version,
      boot_id: this.bootId,
    };
    if (id.kind) hello.kind = id.kind;
    if (id.caches && id.caches.length > 0) hello.caches = id.caches;
    const generation = this.#allocGeneration?.();
    if (generation !== undefined) hello.alloc_generation = generation;
    const secure = t instanceof SecureTransport ? t : undefined;
    const hash = secure?.handshakeHash;
    if (hash) {
      // Proofs bound to this session: worthless to anyone who records them.
      if (id.joinToken) {
        const token = parseJoinToken(id.joinToken);
        hello.join = { id: token.id, proof: nodeTokenProof(joinTokenKey(token.secret), hash) };
      }
      const credential = this.#store.getState("credential");
      if (credential) {
        const credHash = new Bun.CryptoHasher("sha256").update(credential).digest("hex");
        hello.legacy = legacyProof(credHash, hash);
      }
    }
    if (secure?.presenceSecret) hello.presence = secure.presenceSecret;
    return hello;
  }

  /** Starts a key rotation: a new key is made and kept, then offered to the hub inside the session. */
  rotateKey(why: string): void {
    let next = this.#store.getState("node_key_next");
    if (!next) {
      next = encodeKey(generateKeyPair().secret);
      this.#store.setState("node_key_next", next);
    }
    const pair = keyPairFromSecret(decodeKey(next)!);
    if (!this.#rotating) this.#log.info("rotating this node's key", { reason: why });
    this.#rotating = true;
    this.link.sendLive("rekey", { key: pair.publicKey });
  }

  #onRekeyed(key: Uint8Array, expires: number): void {
    const next = this.#store.getState("node_key_next");
    const pair = next ? keyPairFromSecret(decodeKey(next)!) : undefined;
    if (!pair || !keysEqual(pair.publicKey, key)) return;
    // The hub holds the new key; from the next session on it is the one we prove.
    this.#store.setState("node_key", next!);
    this.#store.setState("node_key_next", "");
    this.#key = pair;
    this.#rotating = false;
    this.#log.info("node key rotated", {
      public_key: encodeKey(key),
      expires: new Date(expires).toISOString(),
    });
    // A new session proves the new key, and the hub stops taking the old one (which a thief might hold).
    this.link.reconnect();
  }

  /** Updates what the next hello says (hot config: labels, level, token, trusted hub keys). */
  setIdentity(identity: Identity): void {
    this.#identity = identity;
    // The hub learns identity from the hello, so a changed one is told through a new session.
    this.link.reconnect();
  }
}

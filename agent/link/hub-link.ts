// The agent's side of the hub link: identity for the hello, the stored credential, live status.
import { defaultTransports, Link, type TransportFactory } from "../../shared/link/index.ts";
import type { Clock } from "../../shared/clock.ts";
import type { Logger } from "../../shared/log.ts";
import type { HelloBody, Message } from "../../shared/protocol/index.ts";
import type { TlsMaterial } from "../../shared/tls.ts";
import type { AgentStore } from "../store/index.ts";

export interface Identity {
  nodeId: string;
  level: number;
  labels: Record<string, string>;
  capabilities: string[];
  joinToken: string;
  resources: HelloBody["resources"];
  version: string;
}

/** Connects the agent's outbox to its hubs; remembers the per-node credential the hub issues. */
export class HubLink {
  readonly link: Link;
  // The global Web Crypto one: importing node:crypto costs the agent ~0.7 MB resident.
  readonly bootId = crypto.randomUUID();
  #identity: Identity;
  readonly #store: AgentStore;
  readonly #allocGeneration: (() => number) | undefined;

  constructor(opts: {
    endpoints: string[];
    identity: Identity;
    store: AgentStore;
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
  }) {
    this.#allocGeneration = opts.allocGeneration;
    this.#identity = opts.identity;
    this.#store = opts.store;
    const transports = opts.transports ?? defaultTransports;
    const tls = opts.tls;
    this.link = new Link({
      endpoints: opts.endpoints,
      nodeId: opts.identity.nodeId,
      outbox: opts.store.outbox,
      transports: tls ? (url, ctx) => transports(url, { ...ctx, tls }) : transports,
      log: opts.log,
      ...(opts.clock ? { clock: opts.clock } : {}),
      heartbeatMs: opts.heartbeatMs,
      // Resend well before the hub would be declared silent (3 heartbeats), so a stalled link recovers in-session.
      ackTimeoutMs: Math.min(10_000, opts.heartbeatMs + 1000),
      maxFrameBytes: opts.maxFrameBytes,
      hello: () => this.#hello(),
      onWelcome: (w) => {
        if (w.credential) {
          this.#store.setState("credential", w.credential);
          opts.log.info("stored the per-node credential issued by the hub", { hub: w.hub_id });
        }
      },
      ...(opts.onMessage ? { onMessage: opts.onMessage } : {}),
    });
  }

  #hello(): Omit<HelloBody, "last_acked"> {
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
    const generation = this.#allocGeneration?.();
    if (generation !== undefined) hello.alloc_generation = generation;
    const credential = this.#store.getState("credential");
    if (credential) hello.credential = credential;
    // The join token goes along too, so a hub that lost our credential can admit us again.
    if (id.joinToken) hello.join_token = id.joinToken;
    return hello;
  }

  /** Updates what the next hello says (hot config: labels, level, token). */
  setIdentity(identity: Identity): void {
    this.#identity = identity;
    // The hub learns identity from the hello, so a changed one is told through a new session.
    this.link.reconnect();
  }
}

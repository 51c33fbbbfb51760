// Sessions with agents: authenticates hellos, dispatches each message kind, refuses bad frames.
import { randomUUID } from "node:crypto";
import { NovaError, ProtocolError } from "../../shared/errors.ts";
import type { Logger } from "../../shared/log.ts";
import type { MetricsRegistry } from "../../shared/metrics.ts";
import {
  type Body,
  decodeFrame,
  encodeFrame,
  envelope,
  type Message,
  type MessageType,
} from "../../shared/protocol/index.ts";
import type { Ingest } from "../ingest/index.ts";
import type { PeerAuth, Registry } from "../registry/index.ts";

/**
 * One authenticated session an agent reaches the hub through (a WebSocket, or a node's MQTT topics).
 * Frames in and out are plaintext here: the session layer (secure-sessions.ts) opened and seals them.
 */
export interface Peer {
  readonly via: "ws" | "mqtt";
  /** Who this is before it says hello (remote address, or the MQTT topic's node). */
  readonly remote: string;
  node: string | undefined;
  /** What the session's handshake proved: the peer's static key and the handshake hash. */
  readonly auth?: PeerAuth;
  /** MQTT: the secret this session's Last Will carries (from its hello). */
  presence?: string;
  send(frame: Uint8Array, type: MessageType): void;
  close(reason: string): void;
  /** Called once the hello is admitted: the session now speaks for its node. */
  admitted?(): void;
}

export interface GatewayOptions {
  hubId: string;
  registry: Registry;
  ingest: Ingest;
  log: Logger;
  metrics: MetricsRegistry;
  heartbeatMs: number;
  maxFrameBytes: number;
  now?: () => number;
  /** A node has a new session (after its welcome): time to send it its desired state. */
  onSession?: (node: string, hello: Body<"hello">) => void;
}

/** Routes frames from peers to the registry and ingest, and messages from the hub to nodes. */
export class Gateway {
  readonly #o: GatewayOptions;
  readonly #now: () => number;
  readonly #sessions = new Map<string, Peer>();
  readonly #lastLogged = new Map<string, number>();
  readonly #waiting = new Map<string, { node: string; resolve: (r: Body<"reply">) => void }>();
  readonly #countFrames: (by?: number, labels?: Record<string, string>) => void;
  readonly #countRejected: (by?: number, labels?: Record<string, string>) => void;
  readonly #countAuth: (by?: number, labels?: Record<string, string>) => void;
  readonly #rotationAsked = new Map<string, number>();

  constructor(opts: GatewayOptions) {
    this.#o = opts;
    this.#now = opts.now ?? Date.now;
    const m = opts.metrics;
    this.#countFrames = m.counter(
      "novacron_hub_frames_received_total",
      "Frames received from agents, by type",
    );
    this.#countRejected = m.counter(
      "novacron_hub_frames_rejected_total",
      "Frames refused (bad CBOR, too large, wrong version, schema failures), by reason",
    );
    this.#countAuth = m.counter(
      "novacron_hub_auth_failures_total",
      "Hellos refused: a key that may not speak for the node, a bad or out-of-scope join token",
    );
    m.gauge("novacron_hub_sessions", "Agents with an open session, by transport", () => {
      const by = new Map<string, number>();
      for (const p of this.#sessions.values()) by.set(p.via, (by.get(p.via) ?? 0) + 1);
      return [...by].map(([via, n]) => [{ transport: via }, n]);
    });
  }

  /** Number of open sessions. */
  get sessions(): number {
    return this.#sessions.size;
  }

  /** Handles one frame from a peer. Never throws: bad input is answered, counted and logged. */
  onFrame(peer: Peer, frame: Uint8Array): void {
    let msg: Message;
    try {
      msg = decodeFrame(frame, this.#o.maxFrameBytes);
    } catch (err) {
      this.#refuse(peer, err as Error);
      return;
    }
    this.#countFrames(1, { type: msg.t });
    try {
      this.#dispatch(peer, msg);
    } catch (err) {
      this.#refuse(peer, err as Error, msg.q);
    }
  }

  #dispatch(peer: Peer, msg: Message): void {
    if (msg.t === "hello") {
      this.#hello(peer, msg.b);
      return;
    }
    const node = peer.node;
    if (!node || this.#sessions.get(node) !== peer) {
      this.#send(peer, "error", { code: "hello_required", message: "send hello before anything else" });
      return;
    }
    if (msg.s !== node) {
      throw new NovaError("bad_envelope", `sender ${msg.s} does not match this session's node ${node}`);
    }
    this.#o.registry.seen(node);
    switch (msg.t) {
      case "heartbeat":
        if (msg.b.rtt !== undefined && Number.isFinite(msg.b.rtt) && msg.b.rtt >= 0) {
          this.#o.registry.setRtt(node, msg.b.rtt);
        }
        this.#send(peer, "ack", {
          upto: this.#o.ingest.committed(node),
          echo: msg.ts,
        });
        this.#askRotation(peer, node);
        return;
      case "metrics_batch":
      case "task_result":
      case "alloc_status":
      case "decision_validation":
      case "event":
        if (msg.q === undefined) throw new NovaError("bad_envelope", `${msg.t} needs a sequence number (q)`);
        this.#o.ingest.receive(node, msg);
        return;
      case "rekey": {
        const r = this.#o.registry.rekey(node, peer.auth!.key, msg.b.key);
        if (!r.ok) throw new NovaError("auth_failed", r.reason);
        this.#rotationAsked.delete(node);
        this.#o.log.info("node key rotated", { node });
        this.#send(peer, "rekeyed", { key: msg.b.key, expires: r.expires });
        return;
      }
      case "welcome":
      case "ack":
      case "config":
      case "allocs":
      case "command":
      case "rekeyed":
        throw new NovaError("unknown_type", `${msg.t} is a hub-to-node message; agents may not send it`);
      case "reply": {
        const waiter = this.#waiting.get(msg.b.id);
        if (waiter?.node === node) {
          this.#waiting.delete(msg.b.id);
          waiter.resolve(msg.b);
        }
        return;
      }
      case "error":
        this.#logOnce(node, "agent reported an error", { node, error: `${msg.b.code}: ${msg.b.message}` });
        return;
      default: {
        const never: never = msg;
        throw new Error(`unhandled message ${(never as Message).t}`);
      }
    }
  }

  #hello(peer: Peer, hello: Body<"hello">): void {
    if (peer.node && peer.node !== hello.node_id) {
      throw new NovaError(
        "bad_body",
        `this connection belongs to node ${peer.node}; it cannot say hello as ${hello.node_id}`,
      );
    }
    if (peer.via === "mqtt" && peer.remote !== hello.node_id) {
      throw new NovaError("bad_body", `hello for ${hello.node_id} arrived on the topic of ${peer.remote}`);
    }
    if (!peer.auth) throw new NovaError("hello_required", "a hello needs an authenticated session");
    const result = this.#o.registry.admit(hello, peer.auth, peer.via);
    if (!result.ok) {
      this.#countAuth(1, { transport: peer.via });
      this.#logOnce(`auth:${peer.remote}`, "agent refused", {
        node: hello.node_id,
        remote: peer.remote,
        reason: result.reason,
      });
      this.#send(peer, "error", { code: result.code ?? "auth_failed", message: result.reason });
      peer.close(`auth failed: ${result.reason}`);
      return;
    }
    const previous = this.#sessions.get(hello.node_id);
    if (previous && previous !== peer) {
      previous.node = undefined;
      if (previous.via === "ws") previous.close("replaced by a newer session of the same node");
    }
    peer.node = hello.node_id;
    if (hello.presence) peer.presence = hello.presence;
    this.#sessions.set(hello.node_id, peer);
    peer.admitted?.();
    this.#o.registry.setConnected(hello.node_id, peer.via);
    const welcome: Body<"welcome"> = {
      hub_id: this.#o.hubId,
      server_time: this.#now(),
      last_acked: this.#o.ingest.committed(hello.node_id),
      config_rev: 0,
      heartbeat_ms: this.#o.heartbeatMs,
      key_expires: result.keyExpires,
    };
    if (result.rotate) {
      welcome.rotate_key = true;
      this.#rotationAsked.set(hello.node_id, this.#now());
    }
    this.#send(peer, "welcome", welcome);
    this.#o.onSession?.(hello.node_id, hello);
    this.#o.log.info("node joined", {
      node: hello.node_id,
      via: peer.via,
      level: hello.level,
      version: hello.version,
      last_acked: welcome.last_acked,
      agent_last_acked: hello.last_acked,
      joined: result.joined,
    });
  }

  /** A peer's connection ended. */
  onClosed(peer: Peer): void {
    const node = peer.node;
    if (node && this.#sessions.get(node) === peer) {
      this.#sessions.delete(node);
      this.#o.registry.setDisconnected(node);
      this.#o.log.info("node disconnected", { node, via: peer.via });
    }
    peer.node = undefined;
  }

  // A key past two thirds of its life (or one an operator wants replaced) is renewed inside the session.
  #askRotation(peer: Peer, node: string): void {
    const asked = this.#rotationAsked.get(node);
    if (asked !== undefined && this.#now() - asked < 60_000) return;
    if (!this.#o.registry.rotationDue(node)) return;
    this.#rotationAsked.set(node, this.#now());
    this.#send(peer, "command", { id: `rotate:${this.#now()}`, kind: "rotate_key", args: {} });
  }

  /**
   * Asks a node to do something now and waits for its reply. Rejects when the node has no session
   * or does not answer within `timeoutMs`.
   */
  request(
    node: string,
    kind: string,
    args: Record<string, unknown>,
    timeoutMs = 5000,
  ): Promise<Body<"reply">> {
    const id = randomUUID();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        reject(new NovaError("not_found", `node ${node} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiting.set(id, {
        node,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
      });
      if (!this.sendTo(node, "command", { id, kind, args })) {
        clearTimeout(timer);
        this.#waiting.delete(id);
        reject(new NovaError("not_found", `node ${node} is not connected`));
      }
    });
  }

  /** Ends a node's session (its key was reset, say); the node must authenticate again. */
  endSession(node: string, reason: string): void {
    const peer = this.#sessions.get(node);
    if (!peer) return;
    this.#send(peer, "error", { code: "auth_failed", message: reason });
    peer.close(reason);
    this.onClosed(peer);
  }

  /** Sends a message to a node's current session; false when it has none. */
  sendTo<T extends MessageType>(node: string, type: T, body: Body<T>): boolean {
    const peer = this.#sessions.get(node);
    if (!peer) return false;
    this.#send(peer, type, body);
    return true;
  }

  #send<T extends MessageType>(peer: Peer, type: T, body: Body<T>): void {
    peer.send(encodeFrame(envelope(type, this.#o.hubId, body, { ts: this.#now() })), type);
  }

  #refuse(peer: Peer, err: Error, ref?: number): void {
    const code = err instanceof NovaError ? err.code : "bad_body";
    const node = peer.node;
    if (err instanceof ProtocolError && err.seq !== undefined && node && this.#sessions.get(node) === peer) {
      // A reliable message from a known session that can never be valid: recorded and acked past.
      this.#o.ingest.refuse(node, err.seq, err.base, code, err.message);
      ref = err.seq;
    }
    this.#countRejected(1, { reason: code });
    const who = peer.node ?? peer.remote;
    this.#logOnce(who, "frame refused", { from: who, via: peer.via, code, error: err.message });
    const body: Body<"error"> = { code, message: err.message };
    if (ref !== undefined) body.ref = ref;
    this.#send(peer, "error", body);
  }

  // Bad input is logged once per sender per minute, so a broken agent cannot flood the log.
  #logOnce(sender: string, msg: string, fields: Record<string, unknown>): void {
    const now = this.#now();
    const last = this.#lastLogged.get(sender) ?? 0;
    if (now - last < 60_000) return;
    this.#lastLogged.set(sender, now);
    if (this.#lastLogged.size > 10_000) this.#lastLogged.clear();
    this.#o.log.warn(msg, fields);
  }
}

// Sessions with agents: authenticates hellos, dispatches each message kind, refuses bad frames.
import { randomUUID } from "node:crypto";
import { NovaError, ProtocolError } from "../../shared/errors.ts";
import { LogLimiter, type Logger } from "../../shared/log.ts";
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
import { BulkLane, type BulkLaneOptions } from "./bulk-lane.ts";

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
  /** A child hub's `summary` or `topology` (hub/federation checks and applies it; it may throw to refuse). */
  onSubtree?: (node: string, msg: Extract<Message, { t: "summary" | "topology" }>) => void;
  /** The bulk lane's budget (metrics batches are processed in slices, behind heartbeats). */
  bulk?: Partial<BulkBudget>;
  /** Nodes the hub knows (its fleet, connected or not): the in-flight budget is shared over them. */
  fleetSize?: () => number;
  /** A node reads a key of a strong cache: the answer goes back as a `reply`. */
  onCacheRead?: (node: string, read: Body<"cache_read">) => Body<"reply"> | Promise<Body<"reply">>;
  /** A node answered a command nobody waits for (a refusal of a pushed cache entry, say). */
  onReply?: (node: string, reply: Body<"reply">) => void;
  /**
   * Replicas: claims the node's session in the shared directory before its welcome (hub/replicas),
   * and is told when it ends.
   */
  sessions?: {
    claim(node: string): Promise<number>;
    /** Whether the claim of `epoch` still stands (this replica did not lose its membership since). */
    stands(node: string, epoch: number): boolean;
    released(node: string, epoch: number): void;
    /** Ends the node's session on whichever other replica holds it. */
    endElsewhere(node: string, reason: string): void;
    /** Asks a node whose session another replica holds, through it; undefined when none does. */
    request(
      node: string,
      kind: string,
      args: Record<string, unknown>,
      timeoutMs: number,
    ): Promise<Body<"reply">> | undefined;
  };
}

export interface BulkBudget extends BulkLaneOptions {
  /**
   * Reliable messages in flight hub-wide (sent, not yet acked): each session's window, announced in
   * its welcome, is this shared over the fleet, within [minWindow, maxWindow].
   */
  inFlight: number;
  minWindow: number;
  maxWindow: number;
}

/**
 * Bulk work of at most 32 ms between two looks at the sockets, up to 64 batches of a node per turn
 * (a node's whole window: one ack covers it); 8,192 batches in flight hub-wide (1,000 agents
 * catching up get 8 each, 128 or fewer get the agent's 64). Each slice ends in one grouped commit,
 * so shorter slices cost catch-up speed (4 ms made a 1,000-agent catch-up 2.4x slower in
 * bench/storm.ts, 50 ms 1.17x).
 */
export const DEFAULT_BULK: BulkBudget = {
  sliceMs: 32,
  perNodeTurn: 64,
  inFlight: 8192,
  minWindow: 4,
  maxWindow: 64,
};

/**
 * A frame waiting in the bulk lane (a metrics batch, still undecoded: it costs its bytes only), a
 * decoded reliable message queued behind one, or the record of one refused while earlier ones waited.
 */
type BulkItem =
  | { peer: Peer; frame: Uint8Array }
  | { peer: Peer; msg: Message }
  | { refused: { seq: number; base: number | undefined; code: string; message: string } };

// The first bytes of a metrics batch's envelope as agents encode it: {v: <small int>, t: "metrics_batch", ...}.
const BATCH_TYPE = new TextEncoder().encode("metrics_batch");

/** Whether a frame is a metrics batch, by its first bytes (no decoding); false when unsure. */
export function looksLikeMetricsBatch(frame: Uint8Array): boolean {
  if (frame.byteLength < 20) return false;
  const head = frame[0]!;
  if (head < 0xa0 || head > 0xb7) return false;
  if (frame[1] !== 0x61 || frame[2] !== 0x76 || frame[3]! > 0x17) return false;
  if (frame[4] !== 0x61 || frame[5] !== 0x74 || frame[6] !== 0x60 + BATCH_TYPE.byteLength) return false;
  for (let i = 0; i < BATCH_TYPE.byteLength; i++) if (frame[7 + i] !== BATCH_TYPE[i]) return false;
  return true;
}

/** Routes frames from peers to the registry and ingest, and messages from the hub to nodes. */
export class Gateway {
  readonly #o: GatewayOptions;
  readonly #now: () => number;
  readonly #sessions = new Map<string, Peer>();
  /** Peers whose hello is being admitted: their later frames wait on `tail`. */
  readonly #behind = new WeakMap<Peer, { tail: Promise<void> }>();
  /** Replicas: each session's claim epoch in the shared directory. */
  readonly #claims = new WeakMap<Peer, number>();
  /** Peers whose connection ended (a hello admitted after that starts nothing). */
  readonly #closed = new WeakSet<Peer>();
  /** Hellos in the order they began, and for each node the one whose session is installed. */
  #hellos = 0;
  readonly #installed = new Map<string, number>();
  readonly #limiter: LogLimiter;
  readonly #waiting = new Map<string, { node: string; resolve: (r: Body<"reply">) => void }>();
  readonly #countFrames: (by?: number, labels?: Record<string, string>) => void;
  readonly #countRejected: (by?: number, labels?: Record<string, string>) => void;
  readonly #countAuth: (by?: number, labels?: Record<string, string>) => void;
  readonly #rotationAsked = new Map<string, number>();
  readonly #bulk: BulkLane<BulkItem>;
  readonly #budget: BulkBudget;
  readonly #countAhead: (by?: number) => void;

  constructor(opts: GatewayOptions) {
    this.#o = opts;
    this.#now = opts.now ?? Date.now;
    this.#budget = { ...DEFAULT_BULK, ...opts.bulk };
    this.#bulk = new BulkLane<BulkItem>((node, item) => this.#ingest(node, item), this.#budget);
    this.#limiter = new LogLimiter(opts.log, { now: this.#now });
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
    this.#countAhead = m.counter(
      "novacron_hub_heartbeats_ahead_of_bulk_total",
      "Heartbeats answered while metrics batches waited in the bulk lane (they were served first)",
    );
    m.gauge("novacron_hub_bulk_queued", "Reliable messages waiting in the bulk lane", () => this.#bulk.size);
    m.gauge(
      "novacron_hub_bulk_queued_peak",
      "Most reliable messages ever waiting in the bulk lane",
      () => this.#bulk.peak,
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

  /** Reliable messages waiting in the bulk lane. */
  get bulkQueued(): number {
    return this.#bulk.size;
  }

  /** Processes everything in the bulk lane now (shutdown, tests). */
  drainBulk(): void {
    this.#bulk.drainAll();
  }

  /**
   * Handles one frame from a peer. Never throws: bad input is answered, counted and logged. While the
   * peer's hello is being admitted (a read and a write of the store), its later frames wait behind it,
   * in order.
   */
  onFrame(peer: Peer, frame: Uint8Array): void {
    const waiting = this.#behind.get(peer);
    if (waiting) {
      waiting.tail = waiting.tail
        .then(() => this.#frame(peer, frame))
        .catch((err: unknown) =>
          this.#o.log.error("a frame waiting behind a hello failed", { error: (err as Error).message }),
        );
      return;
    }
    this.#frame(peer, frame);
  }

  #frame(peer: Peer, frame: Uint8Array): void {
    if (this.#closed.has(peer)) return;
    const node = peer.node;
    if (node && looksLikeMetricsBatch(frame) && this.#sessions.get(node) === peer) {
      // Bulk: straight into the lane, decoded in its turn. Any authenticated frame shows the node alive.
      this.#countFrames(1, { type: "metrics_batch" });
      this.#o.registry.seen(node);
      this.#bulk.push(node, { peer, frame });
      return;
    }
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
      this.#startHello(peer, msg.b, msg.q);
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
        this.#o.registry.epochs.report(node, msg.b);
        // Answered now, ahead of any batch waiting in the bulk lane (its ack says what is stored).
        if (this.#bulk.size > 0) this.#countAhead();
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
      case "cache_write":
        if (msg.q === undefined) throw new NovaError("bad_envelope", `${msg.t} needs a sequence number (q)`);
        // Metrics batches (catch-up bulk) take the bulk lane; anything behind one of them in the
        // node's sequence follows it there, so each node's messages still reach ingest in order.
        if (msg.t === "metrics_batch" || this.#bulk.has(node)) this.#bulk.push(node, { peer, msg });
        else this.#o.ingest.receive(node, msg);
        return;
      case "cache_read": {
        const id = msg.b.id;
        if (!this.#o.onCacheRead) {
          this.#send(peer, "reply", { id, ok: false, body: "this hub does not serve cache reads" });
          return;
        }
        // Read from the store, then answered on the session that asked (if it is still open).
        void Promise.resolve(this.#o.onCacheRead(node, msg.b)).then(
          (answer) => this.#send(peer, "reply", answer),
          (err: unknown) => {
            this.#o.log.warn("a strong cache read could not be answered", {
              node,
              error: (err as Error).message,
            });
            this.#send(peer, "reply", { id, ok: false, body: "the hub could not read its store" });
          },
        );
        return;
      }
      case "rekey": {
        const key = msg.b.key;
        const ref = msg.q;
        void this.#o.registry
          .rekey(node, peer.auth!.key, key)
          .then((r) => {
            if (!r.ok) throw new NovaError("auth_failed", r.reason);
            this.#rotationAsked.delete(node);
            this.#o.log.info("node key rotated", { node });
            this.#send(peer, "rekeyed", { key, expires: r.expires });
          })
          .catch((err: unknown) => this.#refuse(peer, storeOr(err), ref));
        return;
      }
      case "summary":
      case "topology":
        // Only a child hub's session speaks for a subtree; the federation checks what it claims.
        if (!this.#o.onSubtree || this.#o.registry.get(node)?.kind !== "hub")
          throw new NovaError("unknown_type", `${msg.t} comes from child hubs only; ${node} is not one`);
        this.#o.onSubtree(node, msg);
        return;
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
        } else if (!waiter) this.#o.onReply?.(node, msg.b);
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

  // Checks a hello at once, then admits it against the store; the peer's frames wait meanwhile.
  #startHello(peer: Peer, hello: Body<"hello">, ref: number | undefined): void {
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
    const order = ++this.#hellos;
    const entry = {
      tail: this.#hello(peer, hello, peer.auth, order).catch((err: unknown) => {
        // The store could not be read or written: the node is not refused, it comes back later.
        const e = storeOr(err);
        this.#refuse(peer, e, ref);
        peer.close(`hello not admitted: ${e.message}`);
      }),
    };
    this.#behind.set(peer, entry);
    // Frames that arrived meanwhile run in turn; the last one done, the peer's frames go straight
    // through (unless a later hello of the same peer holds them now).
    const release = (): void => {
      const tail = entry.tail;
      void tail.then(() => {
        if (entry.tail !== tail) release();
        else if (this.#behind.get(peer) === entry) this.#behind.delete(peer);
      });
    };
    release();
  }

  // Admits a hello against the store; the session starts only once everything the welcome says is
  // read, so nothing is sent to the node before its welcome. `order`: when the hello began.
  async #hello(peer: Peer, hello: Body<"hello">, auth: PeerAuth, order: number): Promise<void> {
    const node = hello.node_id;
    const result = await this.#o.registry.admit(hello, auth, peer.via);
    let verdict: Awaited<ReturnType<Registry["epochHello"]>> | undefined;
    let claim: number | undefined;
    // A claim made for a session that does not start is given back.
    const unclaim = () => {
      if (claim !== undefined) this.#o.sessions?.released(node, claim);
    };
    if (result.ok) {
      // What is stored for the node now (another hub on the same store may have stored for it since).
      await this.#o.ingest.open(node);
      // A store the hub stored more from than it has numbered is a restored snapshot or a copy.
      if (hello.epoch !== undefined)
        verdict = await this.#o.registry.epochHello(
          node,
          hello.epoch,
          hello.seq_high ?? 0,
          this.#o.ingest.committed(node),
          result.node.samples,
        );
      if (this.#o.sessions && !this.#closed.has(peer)) claim = await this.#o.sessions.claim(node);
    }
    // The connection ended while the store answered: nothing to start.
    if (this.#closed.has(peer)) return unclaim();
    // An operator may have reset the node's key while this hello was being admitted.
    const refusal = !result.ok
      ? { code: result.code ?? ("auth_failed" as const), reason: result.reason }
      : !this.#o.registry.holdsKey(node, auth.key)
        ? { code: "auth_failed" as const, reason: `the key of node ${node} was reset while it was joining` }
        : undefined;
    if (refusal || !result.ok) {
      const { code, reason } = refusal!;
      this.#countAuth(1, { transport: peer.via });
      this.#logOnce(`auth:${node}@${peer.remote.replace(/:\d+$/, "")}`, "agent refused", {
        node,
        remote: peer.remote,
        reason,
      });
      this.#send(peer, "error", { code, message: reason });
      peer.close(`auth failed: ${reason}`);
      return unclaim();
    }
    // A session that began after this hello already speaks for the node: it stays. This hello's claim
    // may have reached the directory after that session's: then it is the one the directory holds,
    // and it passes to the session that stays.
    if ((this.#installed.get(node) ?? 0) > order) {
      peer.close("superseded by a newer session of the same node");
      const current = this.#sessions.get(node);
      if (current && claim !== undefined && claim > (this.#claims.get(current) ?? 0)) {
        this.#claims.set(current, claim);
        return;
      }
      return unclaim();
    }
    // This replica lost its membership while the hello was admitted: the claim is void, come back later.
    if (claim !== undefined && !this.#o.sessions!.stands(node, claim)) {
      this.#send(peer, "error", {
        code: "store_failed",
        message: "this hub replica is not a member of its store now",
      });
      peer.close("the replica lost its membership during the hello");
      return;
    }
    this.#installed.set(node, order);
    const previous = this.#sessions.get(node);
    if (previous && previous !== peer) {
      previous.node = undefined;
      if (previous.via === "ws") previous.close("replaced by a newer session of the same node");
    }
    peer.node = node;
    if (hello.presence) peer.presence = hello.presence;
    if (claim !== undefined) this.#claims.set(peer, claim);
    this.#sessions.set(node, peer);
    peer.admitted?.();
    this.#o.registry.setConnected(node, peer.via);
    const welcome: Body<"welcome"> = {
      hub_id: this.#o.hubId,
      server_time: this.#now(),
      last_acked: this.#o.ingest.committed(node),
      config_rev: 0,
      heartbeat_ms: this.#o.heartbeatMs,
      key_expires: result.keyExpires,
      window: this.#window(),
    };
    if (hello.kind === "hub" && this.#o.onSubtree) welcome.subtrees = true;
    if (result.rotate) {
      welcome.rotate_key = true;
      this.#rotationAsked.set(node, this.#now());
    }
    if (verdict?.restored) {
      welcome.restored = true;
      this.#o.log.warn("node store restored from a snapshot or copied; it starts a new epoch", {
        node,
        epoch: hello.epoch,
        store_seq: hello.seq_high ?? 0,
        hub_seq: welcome.last_acked,
      });
    }
    if (verdict?.counters) welcome.counters = verdict.counters;
    this.#send(peer, "welcome", welcome);
    this.#o.onSession?.(node, hello);
    this.#o.log.info("node joined", {
      node,
      via: peer.via,
      level: hello.level,
      version: hello.version,
      last_acked: welcome.last_acked,
      agent_last_acked: hello.last_acked,
      joined: result.joined,
    });
  }

  // A session's share of the hub-wide in-flight budget, over the larger of the sessions open and the
  // fleet known (after a restart the whole fleet is about to come back).
  #window(): number {
    const b = this.#budget;
    const fleet = Math.max(1, this.#sessions.size, this.#o.fleetSize?.() ?? 0);
    return Math.max(b.minWindow, Math.min(b.maxWindow, Math.floor(b.inFlight / fleet)));
  }

  // One reliable message out of the bulk lane; its errors are answered as if it had just arrived.
  #ingest(node: string, item: BulkItem): void {
    if ("refused" in item) {
      const r = item.refused;
      this.#o.ingest.refuse(node, r.seq, r.base, r.code, r.message);
      return;
    }
    let msg: Message | undefined;
    try {
      if ("frame" in item) {
        msg = decodeFrame(item.frame, this.#o.maxFrameBytes);
        if (msg.t !== "metrics_batch") throw new NovaError("bad_envelope", "not a metrics batch");
        if (msg.s !== node) {
          throw new NovaError("bad_envelope", `sender ${msg.s} does not match this session's node ${node}`);
        }
        if (msg.q === undefined) throw new NovaError("bad_envelope", `${msg.t} needs a sequence number (q)`);
      } else msg = item.msg;
      this.#o.ingest.receive(node, msg);
    } catch (err) {
      this.#refuseQueued(node, item.peer, err as Error, msg?.q);
    }
  }

  // A refusal from inside the bulk lane: recorded in ingest at once (this is the message's turn).
  #refuseQueued(node: string, peer: Peer, err: Error, ref?: number): void {
    const code = err instanceof NovaError ? err.code : "bad_body";
    if (err instanceof ProtocolError && err.seq !== undefined) {
      this.#o.ingest.refuse(node, err.seq, err.base, code, err.message);
      ref = err.seq;
    }
    this.#countRejected(1, { reason: code });
    this.#logOnce(node, "frame refused", { from: node, via: peer.via, code, error: err.message });
    const body: Body<"error"> = { code, message: err.message };
    if (ref !== undefined) body.ref = ref;
    this.#send(peer, "error", body);
  }

  /** A peer's connection ended. */
  onClosed(peer: Peer): void {
    this.#closed.add(peer);
    const node = peer.node;
    if (node && this.#sessions.get(node) === peer) {
      this.#sessions.delete(node);
      const claim = this.#claims.get(peer);
      if (claim !== undefined) this.#o.sessions?.released(node, claim);
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
   * Asks a node to do something now and waits for its reply (through the replica holding its session,
   * when another does). Rejects when the node has no session or does not answer within `timeoutMs`.
   */
  request(
    node: string,
    kind: string,
    args: Record<string, unknown>,
    timeoutMs = 5000,
  ): Promise<Body<"reply">> {
    // A node held by another replica is asked through it.
    if (!this.#sessions.has(node)) {
      const there = this.#o.sessions?.request(node, kind, args, timeoutMs);
      if (there) return there;
    }
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

  /**
   * Ends a node's session (its key was reset, say); the node must authenticate again. With replicas,
   * also on the replica that holds it (`here` false: asked by another replica, this one only).
   */
  endSession(node: string, reason: string, here = false): void {
    if (!here) this.#o.sessions?.endElsewhere(node, reason);
    const peer = this.#sessions.get(node);
    if (!peer) return;
    this.#send(peer, "error", { code: "auth_failed", message: reason });
    peer.close(reason);
    this.onClosed(peer);
  }

  /** Whether this hub holds a session of `node`. */
  holds(node: string): boolean {
    return this.#sessions.has(node);
  }

  /** The nodes this hub holds sessions of. */
  nodes(): string[] {
    return [...this.#sessions.keys()];
  }

  /**
   * Ends every session whose key the node's row no longer holds (reset or replaced through another
   * replica, whose notice may have been missed while this one's listening connection reconnected).
   */
  endUnkeyed(reason: string): void {
    for (const [node, peer] of [...this.#sessions])
      if (peer.auth && !this.#o.registry.holdsKey(node, peer.auth.key)) this.endSession(node, reason, true);
  }

  /** Ends a node's session here because another replica now holds a newer one (the agent moved). */
  dropSession(node: string, reason: string): void {
    const peer = this.#sessions.get(node);
    if (!peer) return;
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
      // A reliable message from a known session that can never be valid: recorded and acked past
      // (in its turn, when earlier messages of the node wait in the bulk lane).
      if (this.#bulk.has(node))
        this.#bulk.push(node, { refused: { seq: err.seq, base: err.base, code, message: err.message } });
      else this.#o.ingest.refuse(node, err.seq, err.base, code, err.message);
      ref = err.seq;
    }
    this.#countRejected(1, { reason: code });
    const who = peer.node ?? peer.remote;
    this.#logOnce(who, "frame refused", { from: who, via: peer.via, code, error: err.message });
    const body: Body<"error"> = { code, message: err.message };
    if (ref !== undefined) body.ref = ref;
    this.#send(peer, "error", body);
  }

  // Bad input is logged once per sender per minute (with how many were held back), so a broken agent
  // cannot flood the log.
  #logOnce(sender: string, msg: string, fields: Record<string, unknown>): void {
    this.#limiter.warn(sender, msg, fields);
  }
}

/** An error from the store (not the node's fault) as the node is told it: it tries again later. */
function storeOr(err: unknown): NovaError {
  if (err instanceof NovaError) return err;
  return new NovaError("store_failed", `the hub's store failed: ${(err as Error).message}`, { cause: err });
}

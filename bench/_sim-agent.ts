// A simulated agent for the ingest and storm benchmarks: the agent's secure session, the link's windowed send loop and heartbeats.
import { randomUUID } from "node:crypto";
import { WsTransport } from "../shared/link/index.ts";
import { createLogger } from "../shared/log.ts";
import {
  decodeCbor,
  decodeFrame,
  encodeFrame,
  encodeFrameRawBody,
  envelope,
  PROTOCOL_VERSION,
} from "../shared/protocol/index.ts";
import {
  DATA_OVERHEAD,
  generateKeyPair,
  HubBusyError,
  joinTokenKey,
  type KeyPair,
  nodeTokenProof,
  parseJoinToken,
  SecureTransport,
} from "../shared/secure/index.ts";
import { SOFTWARE_VERSION } from "../shared/version.ts";

const quiet = createLogger("sim", { write: () => {} });

/** One simulated agent on one WebSocket: hello, then the link's windowed send loop and heartbeats. */
export class SimAgent {
  readonly node: string;
  readonly total: number;
  readonly #bodies: Uint8Array[];
  #ws: SecureTransport | undefined;
  #next = 1;
  acked = 0;
  acks = 0;
  sentBytes = 0;
  readonly rtts: number[] = [];
  error: string | undefined;
  /** Times the hub answered a handshake `busy`, and the waits it asked for (ms). */
  busy = 0;
  readonly busyWaits: number[] = [];
  /** What the last welcome said the hub holds. */
  welcomeLastAcked = 0;
  /** Heartbeats sent and answered. */
  beats = 0;
  /** The window of the current session (the hub's welcome may lower it). */
  window = 0;
  /** Wall-clock time the last heartbeat was sent. */
  lastBeatAt = 0;
  beatAcks = 0;
  /** The session's transport is closed (hub gone or session ended). */
  closed = true;
  #beat: ReturnType<typeof setInterval> | undefined;
  #onWelcome: ((err?: Error) => void) | undefined;
  #onDone: (() => void) | undefined;
  #onFail: ((err: Error) => void) | undefined;

  #window: number;
  readonly #ownWindow: number;
  readonly #heartbeatMs: number;
  readonly #resume: boolean;
  readonly #keepBeating: boolean;
  // The node's static key: kept across sessions, as a real agent keeps it on disk.
  readonly #key: KeyPair = generateKeyPair();

  /**
   * `bodies[q - 1]` is the stored metrics_batch body of sequence number q. With `resume`, a welcome
   * that says the hub already holds some of them continues after those (a reconnect); without it,
   * such a welcome is an error (the ingest benchmark verifies a fresh hub). With `keepBeating`,
   * heartbeats go on after the last batch is acked (a live node, not a finished benchmark run).
   */
  constructor(
    node: string,
    bodies: Uint8Array[],
    opts: { window: number; heartbeatMs: number; resume?: boolean; keepBeating?: boolean },
  ) {
    this.node = node;
    this.#bodies = bodies;
    this.total = bodies.length;
    this.#window = opts.window;
    this.#ownWindow = opts.window;
    this.#heartbeatMs = opts.heartbeatMs;
    this.#resume = opts.resume ?? false;
    this.#keepBeating = opts.keepBeating ?? false;
  }

  /**
   * Connects as connect() does; when the hub answers `busy` it waits the time the hub named (plus
   * up to 10% jitter, as the agent's link does) and tries again, up to `deadlineMs` in all.
   */
  async connectRetrying(url: string, joinToken: string, deadlineMs = 120_000): Promise<void> {
    const end = Date.now() + deadlineMs;
    for (;;) {
      try {
        await this.#connectOnce(url, joinToken);
        return;
      } catch (err) {
        const busy = (err as { cause?: unknown }).cause;
        if (!(busy instanceof HubBusyError) || Date.now() > end) throw err;
        this.busy += 1;
        this.busyWaits.push(busy.retryAfterMs);
        await Bun.sleep(busy.retryAfterMs * (1 + Math.random() * 0.1));
      }
    }
  }

  /** Heartbeats only (an idle agent, or one kept alive before its backlog is sent). */
  idle(): void {
    this.#startBeats(true);
  }

  /** Stops heartbeats but keeps the session open: the node has gone silent (no FIN). */
  silence(): void {
    this.stop();
  }

  /**
   * Opens an authenticated session (the agent's own SecureTransport), says hello, resolves on
   * welcome; a busy hub's answer is honoured as the agent's link honours it (connectRetrying).
   */
  connect(url: string, joinToken: string): Promise<void> {
    return this.connectRetrying(url, joinToken);
  }

  #connectOnce(url: string, joinToken: string): Promise<void> {
    this.error = undefined;
    return new Promise((resolvePromise, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.node}: no welcome within 30 s`)), 30_000);
      this.#onWelcome = (err) => {
        clearTimeout(timer);
        this.#onWelcome = undefined;
        if (err) reject(err);
        else resolvePromise();
      };
      const key = this.#key;
      const ws = new SecureTransport(new WsTransport(url, { connectTimeoutMs: 30_000 }), {
        nodeId: this.node,
        staticKey: () => key,
        trustedHubKeys: () => [],
        joinToken,
        log: quiet,
      });
      this.#ws = ws;
      ws.onFrame((frame) => this.#onFrame(frame));
      this.closed = false;
      // During the handshake a close is part of its failure, which connect() reports (busy, say).
      let handshaking = true;
      ws.onClose((reason) => {
        this.closed = true;
        if (handshaking) return;
        if (this.acked < this.total || this.#onWelcome)
          this.#fail(new Error(`${this.node}: closed (${reason})`));
      });
      ws.connect().then(
        () => {
          handshaking = false;
          const t = parseJoinToken(joinToken);
          const hello = {
            node_id: this.node,
            level: 1,
            labels: {},
            capabilities: [],
            resources: {},
            version: SOFTWARE_VERSION,
            boot_id: randomUUID(),
            last_acked: 0,
            join: { id: t.id, proof: nodeTokenProof(joinTokenKey(t.secret), ws.handshakeHash!) },
          };
          ws.send(encodeFrame(envelope("hello", this.node, hello)), "hello");
        },
        (err) => this.#fail(new Error(`${this.node}: ${(err as Error).message}`, { cause: err })),
      );
    });
  }

  /** Streams every batch; resolves when the hub has acked the last one. */
  run(): Promise<void> {
    return new Promise((resolvePromise, reject) => {
      this.#onDone = resolvePromise;
      this.#onFail = reject;
      if (this.error) return reject(new Error(this.error));
      this.#startBeats(this.#keepBeating);
      if (this.acked >= this.total) return resolvePromise();
      this.#pump();
    });
  }

  #startBeats(forever: boolean): void {
    if (this.#heartbeatMs <= 0 || this.#beat) return;
    // Spread the first beats over one interval, as a fleet's would be.
    const first = Math.random() * this.#heartbeatMs;
    this.#beat = setTimeout(() => {
      if (!forever && this.acked >= this.total) return;
      this.#heartbeat();
      this.#beat = setInterval(() => this.#heartbeat(), this.#heartbeatMs);
    }, first);
  }

  stop(): void {
    clearTimeout(this.#beat);
    clearInterval(this.#beat);
    this.#beat = undefined;
  }

  close(): void {
    this.stop();
    void this.#ws?.close();
  }

  #heartbeat(): void {
    const ws = this.#ws;
    if (!ws || ws.closed) return;
    const body: { pending: number; rtt?: number } = { pending: this.total - this.acked };
    const last = this.rtts.at(-1);
    if (last !== undefined) body.rtt = last;
    this.beats += 1;
    this.lastBeatAt = Date.now();
    ws.send(encodeFrame(envelope("heartbeat", this.node, body, { ts: Date.now() })), "heartbeat");
  }

  // The link's pump: oldest first while the window and the socket buffer allow.
  #pump(): void {
    const ws = this.#ws!;
    while (
      this.#next <= this.total &&
      this.#next - this.acked - 1 < this.#window &&
      ws.bufferedAmount() < 1 << 20
    ) {
      const q = this.#next;
      const head = {
        v: PROTOCOL_VERSION,
        t: "metrics_batch" as const,
        s: this.node,
        q,
        base: this.acked + 1,
        ts: Date.now(),
      };
      const frame = encodeFrameRawBody(head, this.#bodies[q - 1]!);
      ws.send(frame, "metrics_batch");
      this.sentBytes += frame.byteLength + DATA_OVERHEAD;
      this.#next = q + 1;
    }
  }

  #onFrame(bytes: Uint8Array): void {
    const msg = decodeCbor(bytes) as { t: string; b: Record<string, unknown> };
    if (msg.t === "welcome") {
      const last = msg.b.last_acked as number;
      // The hub's share of its in-flight budget, as the link takes it.
      const w = msg.b.window;
      this.#window = typeof w === "number" ? Math.min(this.#ownWindow, w) : this.#ownWindow;
      this.window = this.#window;
      this.welcomeLastAcked = last;
      if (this.#resume) {
        // Go back N from what the hub holds, as the link does after a reconnect.
        this.acked = Math.max(this.acked, Math.min(last, this.total));
        this.#next = this.acked + 1;
      } else if (last !== 0) this.#fail(new Error(`${this.node}: welcome says last_acked ${last}`));
      this.#onWelcome?.();
    } else if (msg.t === "ack") {
      this.acks += 1;
      const echo = msg.b.echo;
      if (typeof echo === "number") {
        this.rtts.push(Date.now() - echo);
        this.beatAcks += 1;
      }
      const upto = msg.b.upto as number;
      if (upto > this.acked) {
        this.acked = upto;
        if (upto >= this.total) {
          if (!this.#keepBeating) this.stop();
          this.#onDone?.();
          return;
        }
      }
      this.#pump();
    } else if (msg.t === "error") {
      // decodeFrame re-validates so the message names the hub's complaint exactly.
      const e = decodeFrame(bytes);
      this.#fail(new Error(`${this.node}: hub error ${JSON.stringify(e.b)}`));
    }
  }

  #fail(err: Error): void {
    this.error ??= err.message;
    this.stop();
    this.#onWelcome?.(err);
    this.#onFail?.(err);
  }
}

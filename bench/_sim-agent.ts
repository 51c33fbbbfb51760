// A simulated agent for the ingest benchmark: the agent's secure session, the link's windowed send loop and heartbeats.
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
  joinTokenKey,
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
  #beat: ReturnType<typeof setInterval> | undefined;
  #onWelcome: ((err?: Error) => void) | undefined;
  #onDone: (() => void) | undefined;
  #onFail: ((err: Error) => void) | undefined;

  readonly #window: number;
  readonly #heartbeatMs: number;

  /** `bodies[q - 1]` is the stored metrics_batch body of sequence number q. */
  constructor(node: string, bodies: Uint8Array[], opts: { window: number; heartbeatMs: number }) {
    this.node = node;
    this.#bodies = bodies;
    this.total = bodies.length;
    this.#window = opts.window;
    this.#heartbeatMs = opts.heartbeatMs;
  }

  /** Opens an authenticated session (the agent's own SecureTransport), says hello, resolves on welcome. */
  connect(url: string, joinToken: string): Promise<void> {
    return new Promise((resolvePromise, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.node}: no welcome within 30 s`)), 30_000);
      this.#onWelcome = (err) => {
        clearTimeout(timer);
        this.#onWelcome = undefined;
        if (err) reject(err);
        else resolvePromise();
      };
      const key = generateKeyPair();
      const ws = new SecureTransport(new WsTransport(url, { connectTimeoutMs: 30_000 }), {
        nodeId: this.node,
        staticKey: () => key,
        trustedHubKeys: () => [],
        joinToken,
        log: quiet,
      });
      this.#ws = ws;
      ws.onFrame((frame) => this.#onFrame(frame));
      ws.onClose((reason) => {
        if (this.acked < this.total) this.#fail(new Error(`${this.node}: closed (${reason})`));
      });
      ws.connect().then(
        () => {
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
        (err) => this.#fail(new Error(`${this.node}: ${(err as Error).message}`)),
      );
    });
  }

  /** Streams every batch; resolves when the hub has acked the last one. */
  run(): Promise<void> {
    return new Promise((resolvePromise, reject) => {
      this.#onDone = resolvePromise;
      this.#onFail = reject;
      if (this.error) return reject(new Error(this.error));
      if (this.#heartbeatMs > 0) {
        // Spread the first beats over one interval, as a fleet's would be.
        const first = Math.random() * this.#heartbeatMs;
        setTimeout(() => {
          if (this.acked >= this.total) return;
          this.#heartbeat();
          this.#beat = setInterval(() => this.#heartbeat(), this.#heartbeatMs);
        }, first);
      }
      this.#pump();
    });
  }

  stop(): void {
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
      if (msg.b.last_acked !== 0)
        this.#fail(new Error(`${this.node}: welcome says last_acked ${msg.b.last_acked}`));
      this.#onWelcome?.();
    } else if (msg.t === "ack") {
      this.acks += 1;
      const echo = msg.b.echo;
      if (typeof echo === "number") this.rtts.push(Date.now() - echo);
      const upto = msg.b.upto as number;
      if (upto > this.acked) {
        this.acked = upto;
        if (upto >= this.total) {
          this.stop();
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

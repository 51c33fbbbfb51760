// A simulated agent for the ingest benchmark: the link's handshake, windowed send loop and heartbeats.
import { randomUUID } from "node:crypto";
import {
  decodeCbor,
  decodeFrame,
  encodeFrame,
  encodeFrameRawBody,
  envelope,
  PROTOCOL_VERSION,
} from "../shared/protocol/index.ts";
import { SOFTWARE_VERSION } from "../shared/version.ts";

/** One simulated agent on one WebSocket: hello, then the link's windowed send loop and heartbeats. */
export class SimAgent {
  readonly node: string;
  readonly total: number;
  readonly #bodies: Uint8Array[];
  #ws: WebSocket | undefined;
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

  /** Opens the socket, says hello, resolves on welcome. */
  connect(url: string, joinToken: string): Promise<void> {
    return new Promise((resolvePromise, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.node}: no welcome within 30 s`)), 30_000);
      this.#onWelcome = (err) => {
        clearTimeout(timer);
        this.#onWelcome = undefined;
        if (err) reject(err);
        else resolvePromise();
      };
      const ws = new WebSocket(url);
      ws.binaryType = "arraybuffer";
      this.#ws = ws;
      ws.onopen = () => {
        const hello = {
          node_id: this.node,
          level: 1,
          labels: {},
          capabilities: [],
          resources: {},
          version: SOFTWARE_VERSION,
          boot_id: randomUUID(),
          last_acked: 0,
          join_token: joinToken,
        };
        ws.send(encodeFrame(envelope("hello", this.node, hello)));
      };
      ws.onmessage = (ev) => this.#onFrame(new Uint8Array(ev.data as ArrayBuffer));
      ws.onerror = () => this.#fail(new Error(`${this.node}: WebSocket error`));
      ws.onclose = (ev) => {
        if (this.acked < this.total) this.#fail(new Error(`${this.node}: closed (${ev.code} ${ev.reason})`));
      };
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
    this.#ws?.close(1000, "bench done");
  }

  #heartbeat(): void {
    const ws = this.#ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    const body: { pending: number; rtt?: number } = { pending: this.total - this.acked };
    const last = this.rtts.at(-1);
    if (last !== undefined) body.rtt = last;
    ws.send(encodeFrame(envelope("heartbeat", this.node, body, { ts: Date.now() })));
  }

  // The link's pump: oldest first while the window and the socket buffer allow.
  #pump(): void {
    const ws = this.#ws!;
    while (
      this.#next <= this.total &&
      this.#next - this.acked - 1 < this.#window &&
      ws.bufferedAmount < 1 << 20
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
      ws.send(frame);
      this.sentBytes += frame.byteLength;
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

// WebSocket transport over Bun's built-in client: one binary frame per message.
import type { FrameTopic, Transport } from "./transport.ts";

/** Connects to ws:// or wss:// hub endpoints (`/v1/agent` is appended when the URL has no path). */
export class WsTransport implements Transport {
  readonly url: string;
  #ws: WebSocket | undefined;
  #closed = false;
  #frameHandler: (frame: Uint8Array) => void = () => {};
  #closeHandler: (reason: string) => void = () => {};
  #notified = false;
  readonly #connectTimeoutMs: number;

  constructor(url: string, opts: { connectTimeoutMs?: number } = {}) {
    const u = new URL(url);
    if (u.pathname === "/" || u.pathname === "") u.pathname = "/v1/agent";
    this.url = u.toString();
    this.#connectTimeoutMs = opts.connectTimeoutMs ?? 5000;
  }

  get closed(): boolean {
    return this.#closed;
  }

  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url);
      ws.binaryType = "arraybuffer";
      this.#ws = ws;
      let open = false;
      const timer = setTimeout(() => {
        if (!open) {
          ws.close();
          reject(new Error(`connect to ${this.url} timed out`));
        }
      }, this.#connectTimeoutMs);
      ws.onopen = () => {
        open = true;
        clearTimeout(timer);
        resolve();
      };
      ws.onmessage = (ev) => {
        const data = ev.data;
        if (data instanceof ArrayBuffer) this.#frameHandler(new Uint8Array(data));
        else if (typeof data === "string") this.#frameHandler(new TextEncoder().encode(data));
      };
      ws.onerror = () => {
        if (!open) {
          clearTimeout(timer);
          reject(new Error(`cannot connect to ${this.url}`));
        }
      };
      ws.onclose = (ev) => {
        clearTimeout(timer);
        this.#closed = true;
        if (!open) reject(new Error(`cannot connect to ${this.url}: closed (${ev.code})`));
        else this.#notifyClosed(ev.reason || `closed (${ev.code})`);
      };
    });
  }

  send(frame: Uint8Array, _type: FrameTopic): boolean {
    const ws = this.#ws;
    if (!ws || this.#closed || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(frame);
    return true;
  }

  bufferedAmount(): number {
    return this.#ws?.bufferedAmount ?? 0;
  }

  onFrame(handler: (frame: Uint8Array) => void): void {
    this.#frameHandler = handler;
  }

  onClose(handler: (reason: string) => void): void {
    this.#closeHandler = handler;
  }

  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#ws?.close(1000, "closing");
    }
    this.#notifyClosed("closed locally");
  }

  // The owner hears of the end exactly once, whoever ended it.
  #notifyClosed(reason: string): void {
    if (this.#notified) return;
    this.#notified = true;
    this.#closeHandler(reason);
  }
}

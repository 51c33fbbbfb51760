// WebSocket transport over Bun's built-in client: one binary frame per message.
import { clientTlsOptions, describeTlsError, isTlsError, type TlsMaterial } from "../tls.ts";
import type { FrameTopic, Transport } from "./transport.ts";

// Why a connect attempt failed, from Bun's error event ("WebSocket connection to '...' failed: ...").
function connectFailure(url: string, ev: Event): string {
  const err = (ev as ErrorEvent).error;
  if (!(err instanceof Error)) return (ev as ErrorEvent).message || "connection failed";
  const code = (err as NodeJS.ErrnoException).code;
  const text = err.message.replace(/^WebSocket connection to '.*?' failed: /, "");
  if (!url.startsWith("wss:")) return text;
  if (isTlsError(err)) return describeTlsError(Object.assign(new Error(text), { code }));
  // TLS 1.3 lets a server refuse a client certificate after the client's side of the handshake is
  // done; Bun then only sees the connection end before the upgrade's answer.
  if (code === "ECONNRESET") {
    return `the hub ended the connection before the WebSocket upgrade (${text}); a hub that requires client certificates does this to one it does not trust`;
  }
  return text;
}

/** Connects to ws:// or wss:// hub endpoints (`/v1/agent` is appended when the URL has no path). */
export class WsTransport implements Transport {
  readonly url: string;
  #ws: WebSocket | undefined;
  #closed = false;
  #frameHandler: (frame: Uint8Array) => void = () => {};
  #closeHandler: (reason: string) => void = () => {};
  #notified = false;
  readonly #connectTimeoutMs: number;
  readonly #tls: TlsMaterial | undefined;

  /** `tls` applies to wss:// only: a CA that verifies the hub (else the public roots), a client certificate and key. */
  constructor(url: string, opts: { connectTimeoutMs?: number; tls?: TlsMaterial } = {}) {
    const u = new URL(url);
    if (u.pathname === "/" || u.pathname === "") u.pathname = "/v1/agent";
    this.url = u.toString();
    this.#connectTimeoutMs = opts.connectTimeoutMs ?? 5000;
    this.#tls = opts.tls;
  }

  get closed(): boolean {
    return this.#closed;
  }

  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const secure = this.url.startsWith("wss:");
      // Bun's client takes a `tls` option beside the standard arguments.
      const ws = secure
        ? new WebSocket(this.url, { tls: clientTlsOptions(this.#tls) })
        : new WebSocket(this.url);
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
      ws.onerror = (ev) => {
        if (!open) {
          clearTimeout(timer);
          reject(new Error(`cannot connect to ${this.url}: ${connectFailure(this.url, ev)}`));
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

// The one small interface every transport (WebSocket, MQTT) implements.
import type { MessageType } from "../protocol/index.ts";
import type { TlsMaterial } from "../tls.ts";

/** A connection to one hub endpoint that carries whole frames. */
export interface Transport {
  readonly url: string;
  /** Opens the connection; rejects when it cannot. */
  connect(): Promise<void>;
  /** Sends one frame; `type` lets MQTT pick the topic. Returns false when the connection is gone. */
  send(frame: Uint8Array, type: MessageType): boolean;
  /** Bytes accepted by send() but not yet written to the socket. */
  bufferedAmount(): number;
  onFrame(handler: (frame: Uint8Array) => void): void;
  onClose(handler: (reason: string) => void): void;
  close(): Promise<void>;
  readonly closed: boolean;
}

/** What a transport needs to know about the node it carries. */
export interface TransportContext {
  nodeId: string;
  /** PEM contents for wss:// and mqtts://: CA that verifies the hub or broker, client certificate and key. */
  tls?: TlsMaterial;
}

/** Makes a transport for a URL, picking the implementation from the scheme. */
export type TransportFactory = (url: string, ctx: TransportContext) => Transport;

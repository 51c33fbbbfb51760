// The one small interface every transport (WebSocket, MQTT) implements.
import type { MessageType } from "../protocol/index.ts";
import type { TlsMaterial } from "../tls.ts";

/** What a frame is, for transports that route by it (MQTT topics): a message kind, or "hs" for handshakes. */
export type FrameTopic = MessageType | "hs";

/** A connection to one hub endpoint that carries whole frames. */
export interface Transport {
  readonly url: string;
  /** Opens the connection; rejects when it cannot. */
  connect(): Promise<void>;
  /** Sends one frame; `type` lets MQTT pick the topic. Returns false when the connection is gone. */
  send(frame: Uint8Array, type: FrameTopic): boolean;
  /** Bytes accepted by send() but not yet written to the socket. */
  bufferedAmount(): number;
  onFrame(handler: (frame: Uint8Array) => void): void;
  onClose(handler: (reason: string) => void): void;
  close(): Promise<void>;
  readonly closed: boolean;
  /** MQTT: the secret its Last Will carries, told to the hub inside the session so a forged "offline" is known. */
  readonly presenceSecret?: string | undefined;
  /** The transport asks for an authenticated round trip now (the hub may have lost the session). */
  onProbe?(handler: () => void): void;
  /**
   * MQTT: the hub replica that answered the handshake named its own uplink; every later frame of this
   * connection goes there (shared/link/topics.ts, routedUpTopic).
   */
  route?(route: string): void;
}

/** What a transport needs to know about the node it carries. */
export interface TransportContext {
  nodeId: string;
  /** PEM contents for wss:// and mqtts://: CA that verifies the hub or broker, client certificate and key. */
  tls?: TlsMaterial;
}

/** Makes a transport for a URL, picking the implementation from the scheme. */
export type TransportFactory = (url: string, ctx: TransportContext) => Transport;

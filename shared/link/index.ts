// Public surface of the link: transports, outbox and the reconnecting session used by agents and child hubs.
export { backoffDelay } from "./backoff.ts";
export { Link, type LinkOptions, type LinkStatus } from "./link.ts";
export { MqttTransport } from "./mqtt-transport.ts";
export { Outbox, type OutboxEntry, type OutboxStats, type Replacement } from "./outbox.ts";
export * from "./topics.ts";
export type { FrameTopic, Transport, TransportContext, TransportFactory } from "./transport.ts";
export { WsTransport } from "./ws-transport.ts";
import { MqttTransport } from "./mqtt-transport.ts";
import type { TransportFactory } from "./transport.ts";
import { WsTransport } from "./ws-transport.ts";

/** Picks the transport by URL scheme: ws/wss → WebSocket, mqtt/mqtts → MQTT. */
export const defaultTransports: TransportFactory = (url, ctx) => {
  const scheme = new URL(url).protocol;
  if (scheme === "ws:" || scheme === "wss:") return new WsTransport(url, { tls: ctx.tls });
  if (scheme === "mqtt:" || scheme === "mqtts:") return new MqttTransport(url, ctx.nodeId, { tls: ctx.tls });
  throw new Error(`unsupported hub URL scheme ${scheme} in ${url}`);
};

// Picks a link's transport by the endpoint's URL scheme.
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

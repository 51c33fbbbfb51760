// Public surface of the link: transports, outbox and the reconnecting session used by agents and child hubs.
export { backoffDelay } from "./backoff.ts";
export { HubLink, type Identity, type LinkStore, type RefusedCounts } from "./hub-link.ts";
export { Link, type LinkOptions, type LinkStatus } from "./link.ts";
export { MqttTransport } from "./mqtt-transport.ts";
export { Outbox, type OutboxEntry, type OutboxStats, type Replacement } from "./outbox.ts";
export * from "./topics.ts";
export type { FrameTopic, Transport, TransportContext, TransportFactory } from "./transport.ts";
export { defaultTransports } from "./transports.ts";
export { WsTransport } from "./ws-transport.ts";

// Public surface of the gateway.
export { Gateway, type GatewayOptions, type Peer } from "./gateway.ts";
export { MqttGateway } from "./mqtt-gateway.ts";
export {
  DEFAULT_SECURE_LIMITS,
  type RawPeer,
  type SecureLimits,
  SecureSessions,
  type WsConn,
} from "./secure-sessions.ts";
export { AGENT_PATH, upgradeAgent, wsHandlers } from "./ws-gateway.ts";

// Public surface of the gateway.
export { AdmissionGate, type AdmissionOptions, type AdmissionVerdict } from "./admission.ts";
export { BulkLane, type BulkLaneOptions } from "./bulk-lane.ts";
export {
  type BulkBudget,
  DEFAULT_BULK,
  Gateway,
  type GatewayOptions,
  looksLikeMetricsBatch,
  type Peer,
} from "./gateway.ts";
export { MqttGateway } from "./mqtt-gateway.ts";
export {
  DEFAULT_SECURE_LIMITS,
  type RawPeer,
  type SecureLimits,
  SecureSessions,
  type WsConn,
} from "./secure-sessions.ts";
export { AGENT_PATH, upgradeAgent, wsHandlers } from "./ws-gateway.ts";

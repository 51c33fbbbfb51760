// Public surface of the registry.
export {
  type AdmitResult,
  detectionJitter,
  type NodeRecord,
  type NodeStatus,
  type PeerAuth,
  Registry,
  type StatusPolicy,
  secretsEqual,
} from "./registry.ts";
export { DEFAULT_TOKEN_ID, type JoinTokenInfo, JoinTokens, type JoinTokenScope } from "./join-tokens.ts";
export { type EpochRecord, type EpochVerdict, type NodeCounters, NodeEpochs } from "./node-epochs.ts";

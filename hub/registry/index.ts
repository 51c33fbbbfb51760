// Public surface of the registry.
export {
  type AdmitResult,
  type NodeRecord,
  type NodeStatus,
  type PeerAuth,
  Registry,
  type StatusPolicy,
  secretsEqual,
} from "./registry.ts";
export { DEFAULT_TOKEN_ID, type JoinTokenInfo, JoinTokens, type JoinTokenScope } from "./join-tokens.ts";

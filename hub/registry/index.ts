// Public surface of the registry.
export {
  type AdmitResult,
  type NodeRecord,
  type NodeStatus,
  Registry,
  type StatusPolicy,
  secretsEqual,
} from "./registry.ts";

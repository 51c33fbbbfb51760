// Public surface of the agent's local store.
export {
  AgentStore,
  type AgentStoreOptions,
  DEFAULT_RESERVE_BYTES,
  type DiskStatus,
  type DropCounts,
  type DropReason,
} from "./agent-store.ts";
export { DiskGuard, type DiskFullReason } from "./disk-guard.ts";
export { FOLDED, MetricBuffer, type TimedPoint } from "./metric-buffer.ts";
export { Downsampler, LOW_WATER } from "./downsample.ts";
export { StoreModule, type StoreModuleDeps, storeBudget } from "./store-module.ts";

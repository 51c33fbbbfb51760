// Public surface of hub-pushed cache entries.
export {
  type CacheDeletion,
  CacheDistributor,
  type CacheRefusal,
  type CacheSender,
} from "./cache-distributor.ts";
export { CacheKey, CachePut, CacheTarget, parseCachePut, parseOrRefuse, targets } from "./cache-entry.ts";
export {
  type CacheFigures,
  CacheReplicator,
  type ReplicatorDeps,
  type StoredWrite,
} from "./cache-replicator.ts";

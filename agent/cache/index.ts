// Public surface of the agent's local cache and named caches.

export { CacheModule } from "./cache-module.ts";
export { MAX_KEY_BYTES, MAX_VALUE_BYTES } from "./limits.ts";
export {
  type CacheEntry,
  type CachePolicy,
  type CacheSource,
  type CacheStats,
  LocalCache,
  type LocalCacheOptions,
  type PutOptions,
  type PutResult,
} from "./local-cache.ts";
export type { NamedCacheStats, ReadResult, WriteResult } from "./named-cache-types.ts";
export { NamedCaches } from "./named-caches.ts";

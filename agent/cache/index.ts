// Public surface of the agent's local cache.
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
export { MAX_KEY_BYTES, MAX_VALUE_BYTES } from "./limits.ts";

// Public surface of hub-pushed cache entries.
export { CacheDistributor, CachePut, parseCachePut, targets } from "./cache-distributor.ts";

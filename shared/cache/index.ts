// Public surface of what agent and hub share about caches: valid keys and values, hybrid clocks.
export {
  checkKey,
  checkValue,
  keyProblem,
  MAX_KEY_BYTES,
  MAX_VALUE_BYTES,
  utf8Length,
  valueProblem,
} from "./key.ts";
export { compareStamps, formatStamp, HybridClock, MAX_DRIFT_MS, parseStamp, type Stamp } from "./hlc.ts";
export {
  CACHE_NAME,
  CONSISTENCIES,
  type Consistency,
  CacheSpec,
  parseCacheSpec,
  parseCacheSpecs,
  partitionOf,
  SCOPES,
  type Scope,
  STRATEGIES,
  type Strategy,
} from "./cache-spec.ts";

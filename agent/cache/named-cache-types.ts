// The shapes of the named caches: what they depend on, what a read and a write answer, their figures.
import type { Database } from "bun:sqlite";
import type { CacheSpec } from "../../shared/cache/index.ts";
import type { Clock } from "../../shared/clock.ts";
import type { Body } from "../../shared/protocol/index.ts";
import type { HotKey } from "./hot-keys.ts";
import type { CacheValue } from "./named-store.ts";

export interface NamedCachesDeps {
  db: Database;
  nodeId: string;
  clock: Clock;
  specs: Record<string, CacheSpec>;
  /** Puts a write in the outbox (in the caller's transaction); returns its row id. Throws on a full disk. */
  enqueue(body: Body<"cache_write">): number;
  /**
   * Whether a write of about this many bytes has room: false while the disk is full or when it would
   * take free space below the reserve. Such writes are refused (507); reads go on.
   */
  writable(bytes: number): boolean;
  /** True (and the store enters its full state) when `err` is a full disk. */
  diskFull(err: unknown): boolean;
  /** Whether the outbox still holds a row (the hub has not acknowledged it). */
  unacked(id: number): boolean;
  /** Calls `fn` after each ack from the hub; returns the unsubscribe. */
  onAck(fn: () => void): () => void;
  /** Cache writes held in the outbox (not yet acknowledged), and when the oldest was queued. */
  queued(): { count: number; oldest: number | undefined };
  connected(): boolean;
  /** Reads a key at the hub (strong caches); null when the hub has none. Throws when it cannot. */
  readHub?: (
    cache: string,
    key: string,
    replicate: CacheSpec["replicate"],
  ) => Promise<{ value?: CacheValue; hlc?: string } | null>;
  /** Sends a cache's hot keys to the hub (a must-deliver event). */
  reportHot?: (cache: string, keys: HotKey[]) => void;
  /** The origin fetch of read-through caches (the global fetch by default). */
  fetch?: (url: string) => Promise<Response>;
}

export interface ReadResult {
  value: CacheValue;
  hlc: string;
  /** Past its TTL, or a strong cache read while the hub is away: served only as a flagged fallback. */
  stale: boolean;
}

export interface WriteResult {
  hlc: string;
  /** write-through / strong: the hub has stored it. */
  confirmed: boolean;
  /** write-behind: queued for the hub. */
  queued: boolean;
}

export interface NamedCacheStats {
  strategy: string;
  consistency: string;
  replicate: string;
  entries: number;
  hits: number;
  misses: number;
  stale_served: number;
  origin_fetches: number;
  coalesced: number;
  writes: number;
  replicas_applied: number;
  replicas_superseded: number;
  hub_reads: number;
  hit_ratio: number;
  /** The hottest keys read here (Space-Saving top-k: count and its over-count bound). */
  hot_keys: HotKey[];
}

export interface Counters {
  hits: number;
  misses: number;
  stale_served: number;
  origin_fetches: number;
  coalesced: number;
  writes: number;
  replicas_applied: number;
  replicas_superseded: number;
  /** strong: reads answered by the hub. */
  hub_reads: number;
}

/** Keys each cache's top-k holds and reports (bounded memory: about 100 bytes each). */
export const HOT_KEYS = 1024;
/** Keys each report carries: those with the highest guaranteed count. */
export const HOT_REPORTED = 256;

export const ZERO: Counters = {
  hits: 0,
  misses: 0,
  stale_served: 0,
  origin_fetches: 0,
  coalesced: 0,
  writes: 0,
  replicas_applied: 0,
  replicas_superseded: 0,
  hub_reads: 0,
};

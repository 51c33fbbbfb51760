// The agent's named caches: each with its strategy and consistency, last writer wins by hybrid clock.
//
// Strategies
// - cache-aside: reads and writes are local; the application fills the cache on a miss.
// - read-through: a miss (or a stale entry) is fetched from the cache's origin, ORIGIN/KEY. Concurrent
//   misses on one key share one fetch. When the origin fails, a stale copy is served, flagged stale.
// - write-through: a write is stored locally and through the outbox, and answered once the hub has
//   stored it (its ack covers the message). Refused at once while the hub is away: nothing is stored.
// - write-behind: a write is stored locally and answered at once; the outbox carries it to the hub
//   exactly once, in order. Queue depth and age are in /v1/status.
// Every write that reaches the hub goes from there to the nodes holding the cache in the writer's
// scope (`replicate`), and to nodes that join later at their hello.
//
// Consistency. Every write carries a hybrid logical clock stamp (shared/cache/hlc.ts); every node and
// the hub keep, per key, the write with the highest stamp (last writer wins). Hence:
// - eventual: nodes that receive the same writes hold the same value;
// - monotonic-read: a node never serves an older stamp for a key than one it served (also after a
//   restart: stamps are stored, and the clock resumes after the highest);
// - read-your-writes / causal: a node's clock passes every stamp it has seen, so its next write is
//   ordered after every write it read. Across an offline period the node keeps serving its own writes
//   (they are never replaced by anything older); on return, writes made elsewhere meanwhile with
//   higher stamps replace them, and the node's queued writes replace anything older at the hub and
//   on the others. A causally later write is never overwritten by the write it depended on.
// - strong: writes are write-through (confirmed by the hub, refused offline); a read while the hub is
//   away (or silent for 5 s) answers an error, or the local value flagged stale when the cache says
//   `offline: stale`. While connected, a read is answered by the hub (a `cache_read` on the live
//   channel): it returns the latest write the hub has stored, so a write confirmed anywhere is seen
//   by every later read anywhere.
import type { Clock } from "../../shared/clock.ts";
import { CACHE_NAME, type CacheSpec, checkKey, checkValue, HybridClock } from "../../shared/cache/index.ts";
import { DiskFullError, NotFoundError, RequestError, UnavailableError } from "../../shared/errors.ts";
import { HotKeys } from "./hot-keys.ts";
import {
  type Counters,
  HOT_KEYS,
  HOT_REPORTED,
  type NamedCacheStats,
  type NamedCachesDeps,
  type ReadResult,
  type WriteResult,
  ZERO,
} from "./named-cache-types.ts";
import { type CacheValue, NamedStore } from "./named-store.ts";
import { OriginFetcher } from "./read-through.ts";

/** Every named cache of this agent. */
export class NamedCaches {
  readonly #d: NamedCachesDeps;
  readonly #store: NamedStore;
  readonly #hlc: HybridClock;
  readonly #specs: Map<string, CacheSpec>;
  readonly #counters = new Map<string, Counters>();
  readonly #origin: OriginFetcher;
  readonly #hot = new Map<string, HotKeys>();
  readonly #timers: ReturnType<Clock["setInterval"]>[] = [];

  constructor(d: NamedCachesDeps) {
    this.#d = d;
    this.#store = new NamedStore(d.db);
    this.#hlc = new HybridClock(d.nodeId, () => d.clock.now(), this.#store.maxStamp());
    this.#specs = new Map(Object.entries(d.specs));
    for (const name of this.#specs.keys()) this.#counters.set(name, { ...ZERO });
    for (const name of this.#specs.keys()) this.#hot.set(name, new HotKeys(HOT_KEYS));
    this.#origin = new OriginFetcher(
      d.fetch ?? ((url) => fetch(url, { signal: AbortSignal.timeout(10_000) })),
    );
  }

  /** The declared caches (name → declaration). */
  specs(): ReadonlyMap<string, CacheSpec> {
    return this.#specs;
  }

  /** Declares or replaces a cache (the hub pushed a declaration). */
  define(name: string, spec: CacheSpec): void {
    if (!CACHE_NAME.test(name))
      throw new RequestError("a cache name is 1-64 lowercase letters, digits, '_', '.' or '-'", "name");
    this.#specs.set(name, spec);
    if (!this.#counters.has(name)) this.#counters.set(name, { ...ZERO });
    if (!this.#hot.has(name)) {
      this.#hot.set(name, new HotKeys(HOT_KEYS));
      this.#schedule(name, spec);
    }
  }

  /** Starts each cache's hot-key reports. */
  start(): void {
    for (const [name, spec] of this.#specs) this.#schedule(name, spec);
  }

  stop(): void {
    for (const t of this.#timers) this.#d.clock.clearInterval(t);
    this.#timers.length = 0;
  }

  #schedule(name: string, spec: CacheSpec): void {
    if (!this.#d.reportHot) return;
    this.#timers.push(
      this.#d.clock.setInterval(() => {
        const hot = this.#hot.get(name);
        if (!hot?.changed) return;
        this.#d.reportHot?.(name, hot.top(HOT_REPORTED));
        hot.halve();
      }, spec.hot_report_ms),
    );
  }

  /** Reads a key by the cache's strategy and consistency; undefined is a miss. */
  async get(name: string, key: string): Promise<ReadResult | undefined> {
    const spec = this.#spec(name);
    checkKey(key);
    const c = this.#counters.get(name)!;
    this.#hot.get(name)?.add(key);
    const e = this.#store.get(name, key);
    const now = this.#d.clock.now();
    const fresh = e !== undefined && (e.expiresAt === undefined || e.expiresAt > now);
    if (spec.consistency === "strong") return this.#strongRead(name, spec, key, e, c);
    if (fresh) {
      c.hits++;
      return { value: e.value, hlc: e.hlc, stale: false };
    }
    c.misses++;
    if (spec.strategy !== "read-through") return undefined;
    return this.#readThrough(name, spec, key, e);
  }

  /** Writes a key by the cache's strategy. */
  async put(
    name: string,
    key: string,
    value: CacheValue,
    opts: { ttl_ms?: number } = {},
  ): Promise<WriteResult> {
    checkValue(value);
    return this.#write(name, key, value, opts.ttl_ms);
  }

  /** Deletes a key (a tombstone with its own stamp, replicated like a write). */
  async delete(name: string, key: string): Promise<WriteResult> {
    return this.#write(name, key, undefined, undefined);
  }

  /** A write made elsewhere, relayed by the hub: kept if its stamp is the highest for the key. */
  onReplica(args: Record<string, unknown>): "applied" | "superseded" | "unknown_cache" {
    const name = args.cache;
    if (typeof name !== "string") throw new RequestError("must be a string", "cache");
    const key = args.key;
    checkKey(key);
    const hlc = args.hlc;
    if (typeof hlc !== "string") throw new RequestError("must be a hybrid clock stamp", "hlc");
    this.#hlc.observe(hlc);
    const value = args.value;
    if (value !== undefined) checkValue(value);
    const spec = this.#specs.get(name);
    if (!spec) return "unknown_cache";
    const ttl = typeof args.ttl_ms === "number" ? args.ttl_ms : spec.ttl_ms;
    const r = this.#store.apply(
      name,
      key as string,
      value as CacheValue | undefined,
      hlc,
      ttl === undefined ? undefined : this.#d.clock.now() + ttl,
      spec.max_entries,
    );
    const c = this.#counters.get(name)!;
    if (r === "applied") c.replicas_applied++;
    else c.replicas_superseded++;
    return r;
  }

  /** Per-cache figures for /v1/status and /metrics. */
  stats(): Record<string, NamedCacheStats> {
    const out: Record<string, NamedCacheStats> = {};
    for (const [name, spec] of this.#specs) {
      const c = this.#counters.get(name) ?? ZERO;
      out[name] = {
        strategy: spec.strategy,
        consistency: spec.consistency,
        replicate: spec.replicate,
        entries: this.#store.size(name),
        ...c,
        hit_ratio: c.hits + c.misses === 0 ? 0 : c.hits / (c.hits + c.misses),
        hot_keys: this.#hot.get(name)?.top(10) ?? [],
      };
    }
    return out;
  }

  /** Writes not yet acknowledged by the hub (write-behind's queue), and the age of the oldest (ms). */
  queue(): { depth: number; oldest_ms: number | null } {
    const q = this.#d.queued();
    return { depth: q.count, oldest_ms: q.oldest === undefined ? null : this.#d.clock.now() - q.oldest };
  }

  async #write(
    name: string,
    key: string,
    value: CacheValue | undefined,
    ttlMs: number | undefined,
  ): Promise<WriteResult> {
    const spec = this.#spec(name);
    checkKey(key);
    if (ttlMs !== undefined && (!Number.isSafeInteger(ttlMs) || ttlMs <= 0))
      throw new RequestError("must be a positive whole number of milliseconds", "ttl_ms");
    const through = spec.strategy === "write-through" || spec.consistency === "strong";
    if (through && !this.#d.connected())
      throw new UnavailableError(
        "hub_unreachable",
        `cache ${name} writes through the hub, which is unreachable: nothing was stored`,
      );
    const ttl = ttlMs ?? spec.ttl_ms;
    const hlc = this.#hlc.tick();
    const goesToHub = through || spec.strategy === "write-behind";
    let id: number | undefined;
    // The value is written to the cache and, when it goes to the hub, to the outbox as well.
    const size =
      key.length +
      (value === undefined ? 0 : typeof value === "string" ? Buffer.byteLength(value) : value.byteLength);
    if (!this.#d.writable(goesToHub ? 2 * size : size))
      throw new DiskFullError("not stored: the agent's disk is full");
    try {
      this.#store.transaction(() => {
        this.#store.apply(
          name,
          key,
          value,
          hlc,
          ttl === undefined ? undefined : this.#d.clock.now() + ttl,
          spec.max_entries,
        );
        if (goesToHub)
          id = this.#d.enqueue({
            cache: name,
            key,
            ...(value !== undefined ? { value: value as string | Uint8Array<ArrayBuffer> } : {}),
            hlc,
            replicate: spec.replicate,
            ...(ttl !== undefined ? { ttl_ms: ttl } : {}),
          });
      });
    } catch (err) {
      // The entry and its outbox row go together or not at all; the index follows the rollback.
      this.#store.reload();
      if (this.#d.diskFull(err))
        throw new DiskFullError("not stored: the agent's disk is full", { cause: err });
      throw err;
    }
    this.#counters.get(name)!.writes++;
    if (!through) {
      return { hlc, confirmed: false, queued: goesToHub };
    }
    await this.#confirmed(id!, spec.ack_timeout_ms);
    return { hlc, confirmed: true, queued: false };
  }

  // Waits until the hub's ack covers the outbox row (the row is gone), or the timeout.
  #confirmed(id: number, timeoutMs: number): Promise<void> {
    const { clock } = this.#d;
    return new Promise((resolve, reject) => {
      if (!this.#d.unacked(id)) return resolve();
      const timer = clock.setTimeout(() => {
        off();
        reject(
          new UnavailableError(
            "not_confirmed",
            `the hub did not confirm the write within ${timeoutMs} ms; it is queued and will still reach the hub`,
          ),
        );
      }, timeoutMs);
      const off = this.#d.onAck(() => {
        if (this.#d.unacked(id)) return;
        off();
        clock.clearTimeout(timer);
        resolve();
      });
    });
  }

  // A strong read is answered by the hub. Without it: an error, or the local copy flagged stale.
  async #strongRead(
    name: string,
    spec: CacheSpec,
    key: string,
    local: { value: CacheValue; hlc: string } | undefined,
    c: Counters,
  ): Promise<ReadResult | undefined> {
    let atHub: { value?: CacheValue; hlc?: string } | null;
    try {
      if (!this.#d.connected() || !this.#d.readHub) throw new Error("no session with the hub");
      atHub = await this.#d.readHub(name, key, spec.replicate);
    } catch (err) {
      if (spec.offline === "error" || !local)
        throw new UnavailableError(
          "hub_unreachable",
          `cache ${name} is strong and the hub cannot answer (${(err as Error).message}): no read without it`,
        );
      c.stale_served++;
      return { value: local.value, hlc: local.hlc, stale: true };
    }
    c.hub_reads++;
    if (!atHub?.hlc || atHub.value === undefined) {
      c.misses++;
      return undefined;
    }
    // Keep the hub's answer locally too (last writer wins), for a later read flagged stale offline.
    this.#hlc.observe(atHub.hlc);
    this.#store.apply(name, key, atHub.value, atHub.hlc, undefined, spec.max_entries);
    c.hits++;
    return { value: atHub.value, hlc: atHub.hlc, stale: false };
  }

  // A miss or a stale entry goes to the origin (one fetch per key for all readers); a failed origin
  // serves the old copy flagged stale.
  async #readThrough(
    name: string,
    spec: CacheSpec,
    key: string,
    old: { value: CacheValue; hlc: string } | undefined,
  ): Promise<ReadResult | undefined> {
    const c = this.#counters.get(name)!;
    let hlc = old?.hlc ?? "";
    const got = await this.#origin.get(
      name,
      spec.origin!,
      key,
      old?.value,
      (value) => {
        hlc = this.#hlc.tick();
        const ttl = spec.ttl_ms;
        this.#store.apply(
          name,
          key,
          value,
          hlc,
          ttl === undefined ? undefined : this.#d.clock.now() + ttl,
          spec.max_entries,
        );
      },
      (what) => {
        if (what === "fetched") c.origin_fetches++;
        else if (what === "coalesced") c.coalesced++;
        else c.stale_served++;
      },
    );
    if (!got) return undefined;
    // A coalesced reader takes the stamp of what the fetch stored.
    if (!got.stale && hlc === (old?.hlc ?? "")) hlc = this.#store.stamp(name, key) ?? hlc;
    return { value: got.value, hlc, stale: got.stale };
  }

  #spec(name: string): CacheSpec {
    const s = this.#specs.get(name);
    if (!s) throw new NotFoundError(`no cache named ${name} (declare it under caches: in the agent config)`);
    return s;
  }
}

// The cache module: the local key-value cache and the named caches in the agent's store, budgets kept live.
import { encodeCbor } from "../../shared/protocol/index.ts";
import type { AgentConfig } from "../config/index.ts";
import type { Module, ModuleContext } from "../module.ts";
import type { AgentStore } from "../store/index.ts";
import { LocalCache } from "./local-cache.ts";
import type { NamedCachesDeps } from "./named-cache-types.ts";
import { NamedCaches } from "./named-caches.ts";

export interface CacheModuleDeps {
  store: () => AgentStore | undefined;
  /** Whether the hub session is up (write-through and strong caches need it). */
  connected: () => boolean;
  /** The outbox has something new for the link. */
  notify: () => void;
  /** Reads a key of a strong cache at the hub. */
  readHub?: NamedCachesDeps["readHub"];
}

/** The local cache (reference data pushed by the hub or put by local applications) and the named caches. */
export class CacheModule implements Module {
  readonly name = "cache";
  readonly #ctx: ModuleContext;
  readonly #d: CacheModuleDeps;
  #cache: LocalCache | undefined;
  #named: NamedCaches | undefined;

  constructor(ctx: ModuleContext, deps: CacheModuleDeps) {
    this.#ctx = ctx;
    this.#d = deps;
  }

  get cache(): LocalCache | undefined {
    return this.#cache;
  }

  get named(): NamedCaches | undefined {
    return this.#named;
  }

  async start(signal: AbortSignal): Promise<void> {
    const store = this.#d.store();
    if (!store) throw new Error("the store is not open");
    const cfg = this.#ctx.config();
    this.#cache = new LocalCache({
      db: store.db,
      budgetBytes: cfg.cache_bytes,
      policy: cfg.cache_policy as "lru" | "lfu",
      clock: this.#ctx.clock,
      writable: (bytes) => store.roomFor(bytes),
      onDiskFull: (err) => store.disk.hit(err),
    });
    this.#cache.start(signal);
    this.#named = new NamedCaches({
      db: store.db,
      nodeId: cfg.node_id,
      clock: this.#ctx.clock,
      specs: cfg.caches,
      enqueue: (body) => {
        const id = store.outbox.append("cache_write", encodeCbor(body), 0, this.#ctx.clock.now());
        // After the caller's transaction commits: nothing may leave before it is stored.
        queueMicrotask(() => this.#d.notify());
        return id;
      },
      writable: (bytes) => store.roomFor(bytes),
      diskFull: (err) => store.disk.hit(err),
      unacked: (id) => store.outbox.holds(id),
      onAck: (fn) => store.outbox.onAck(fn),
      queued: () => store.outbox.heldOf("cache_write"),
      connected: this.#d.connected,
      ...(this.#d.readHub ? { readHub: this.#d.readHub } : {}),
      reportHot: (cache, keys) =>
        this.#ctx.report("event", {
          kind: "cache_hot_keys",
          at: this.#ctx.clock.now(),
          message: `hot keys of cache ${cache}`,
          fields: { cache, keys: keys.map((k) => [k.key, k.count]) },
        }),
    });
    this.#named.start();
  }

  async stop(): Promise<void> {
    this.#named?.stop();
    this.#cache?.stop();
  }

  configChanged(next: AgentConfig, changed: readonly string[]): void {
    if (changed.includes("cache_bytes")) this.#cache?.setBudget(next.cache_bytes);
    // New or changed declarations apply at once; a cache removed from the file keeps running until a restart.
    if (changed.includes("caches"))
      for (const [name, spec] of Object.entries(next.caches)) this.#named?.define(name, spec);
  }
}

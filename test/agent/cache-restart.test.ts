// Specification of the local cache across agent restarts: contents, versions, counters and eviction order resume.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { type CachePolicy, LocalCache } from "../../agent/cache/index.ts";
import { AgentStore } from "../../agent/store/index.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { tempDir } from "../support/processes.ts";

/** One "agent run": opens the store in `dir`, runs `fn` with a cache on it, then stops and closes. */
function run<T>(
  dir: string,
  clock: FakeClock,
  opts: { budgetBytes?: number; policy?: CachePolicy },
  fn: (cache: LocalCache) => T,
): T {
  const store = new AgentStore(dir, { bufferBytes: 1 << 20 });
  const cache = new LocalCache({
    db: store.db,
    clock,
    budgetBytes: opts.budgetBytes ?? 1 << 20,
    policy: opts.policy ?? "lru",
  });
  try {
    return fn(cache);
  } finally {
    cache.stop();
    store.close();
  }
}

describe("local cache across restarts", () => {
  test("a restarted agent resumes the contents, versions, expiry and counters", async () => {
    using tmp = tempDir("novacron-cache-");
    const dir = join(tmp.path, "data");
    const clock = new FakeClock();
    run(dir, clock, {}, (cache) => {
      cache.put("cfg.mode", "eco");
      cache.put("geo.zones", new Uint8Array([1, 2, 3]), { source: "hub", version: 12 });
      cache.put("session", "s1", { ttl_ms: 60_000 });
      cache.get("cfg.mode");
      cache.get("missing");
    });
    const expiresAt = clock.now() + 60_000;
    run(dir, clock, {}, (cache) => {
      expect(cache.stats()).toMatchObject({ entries: 3, hits: 1, misses: 1, evictions: 0, expired: 0 });
      expect(cache.get("cfg.mode")).toEqual({ value: "eco", source: "local" });
      expect(cache.get("geo.zones")).toEqual({
        value: new Uint8Array([1, 2, 3]),
        version: 12,
        source: "hub",
      });
      expect(cache.get("session")).toEqual({ value: "s1", source: "local", expires_at: expiresAt });
    });
    await clock.advance(60_000);
    run(dir, clock, {}, (cache) => {
      expect(cache.get("session")).toBeUndefined();
      expect(cache.stats()).toMatchObject({ entries: 2, hits: 4, misses: 2, expired: 1 });
    });
  });

  test("an older hub version stays refused after a restart, whether the newer one is cached or was removed", () => {
    using tmp = tempDir("novacron-cache-");
    const dir = join(tmp.path, "data");
    const clock = new FakeClock();
    run(dir, clock, {}, (cache) => {
      cache.put("kept", "v5", { source: "hub", version: 5 });
      cache.put("gone", "v9", { source: "hub", version: 9 });
      cache.delete("gone");
    });
    run(dir, clock, {}, (cache) => {
      expect(cache.put("kept", "v4", { source: "hub", version: 4 })).toEqual({
        stored: false,
        reason: "stale",
      });
      expect(cache.put("gone", "v8", { source: "hub", version: 8 })).toEqual({
        stored: false,
        reason: "stale",
      });
      expect(cache.get("kept")?.value).toBe("v5");
      expect(cache.put("kept", "v6", { source: "hub", version: 6 }).stored).toBe(true);
    });
  });

  test("LRU order survives a restart: what was least recently used before goes first after", () => {
    using tmp = tempDir("novacron-cache-");
    const dir = join(tmp.path, "data");
    const clock = new FakeClock();
    const v = "x".repeat(99);
    run(dir, clock, { budgetBytes: 300, policy: "lru" }, (cache) => {
      for (const k of ["a", "b", "c"]) cache.put(k, v);
      cache.get("a"); // b is now the least recently used
    });
    run(dir, clock, { budgetBytes: 300, policy: "lru" }, (cache) => {
      cache.put("d", v);
      expect(["a", "b", "c", "d"].filter((k) => cache.get(k))).toEqual(["a", "c", "d"]);
    });
  });

  test("LFU counts survive a restart", () => {
    using tmp = tempDir("novacron-cache-");
    const dir = join(tmp.path, "data");
    const clock = new FakeClock();
    const v = "x".repeat(99);
    run(dir, clock, { budgetBytes: 300, policy: "lfu" }, (cache) => {
      for (const k of ["a", "b", "c"]) cache.put(k, v);
      for (let i = 0; i < 5; i++) cache.get("a");
      for (let i = 0; i < 3; i++) cache.get("c");
    });
    run(dir, clock, { budgetBytes: 300, policy: "lfu" }, (cache) => {
      cache.put("d", v); // b (1 use) goes
      cache.put("e", v); // d (1 use) goes
      expect(["a", "b", "c", "d", "e"].filter((k) => cache.get(k))).toEqual(["a", "c", "e"]);
    });
  });

  test("restarting with a smaller budget evicts down to it at once", () => {
    using tmp = tempDir("novacron-cache-");
    const dir = join(tmp.path, "data");
    const clock = new FakeClock();
    run(dir, clock, { budgetBytes: 10_000 }, (cache) => {
      for (let i = 0; i < 10; i++) cache.put(`k${i}`, "x".repeat(98)); // 100 B each
    });
    run(dir, clock, { budgetBytes: 350 }, (cache) => {
      expect(cache.stats()).toMatchObject({ entries: 3, bytes: 300, evictions: 7 });
      expect(["k7", "k8", "k9"].every((k) => cache.get(k) !== undefined)).toBe(true);
    });
  });

  test("writes are durable at once; access order and counters since the last flush are what a crash loses", () => {
    using tmp = tempDir("novacron-cache-");
    const dir = join(tmp.path, "data");
    const clock = new FakeClock();
    // A "crash": the store is closed without cache.stop(), so nothing is flushed.
    const store = new AgentStore(dir, { bufferBytes: 1 << 20 });
    const cache = new LocalCache({ db: store.db, clock, budgetBytes: 1 << 20, policy: "lru" });
    cache.put("k", "v");
    cache.flush();
    cache.get("k");
    cache.get("k");
    store.close();
    run(dir, clock, {}, (after) => {
      expect(after.get("k")?.value).toBe("v");
      expect(after.stats().hits).toBe(1); // the two unflushed hits are gone, this one counts
    });
  });
});

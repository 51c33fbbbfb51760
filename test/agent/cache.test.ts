// Specification of the agent's local cache: values, TTL, LRU/LFU eviction under a byte budget, versions, eviction by prefix.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { LocalCache, type LocalCacheOptions, MAX_VALUE_BYTES } from "../../agent/cache/index.ts";
import { AgentStore } from "../../agent/store/index.ts";
import { RequestError } from "../../shared/errors.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { mulberry32 as prng } from "../support/prng.ts";
import { tempDir } from "../support/processes.ts";

/** A cache on a real agent store in a temp dir, with a fake clock. */
function open(opts: Partial<Omit<LocalCacheOptions, "db" | "clock">> = {}) {
  const dir = tempDir("novacron-cache-");
  const store = new AgentStore(join(dir.path, "data"), { bufferBytes: 1 << 20 });
  const clock = new FakeClock();
  const cache = new LocalCache({ db: store.db, clock, budgetBytes: 1 << 20, policy: "lru", ...opts });
  return {
    cache,
    clock,
    store,
    [Symbol.dispose]() {
      cache.stop();
      store.close();
      dir[Symbol.dispose]();
    },
  };
}

/** Which of `keys` are still cached (each get counts as an access, in the order given). */
function present(cache: LocalCache, keys: string[]): string[] {
  return keys.filter((k) => cache.get(k) !== undefined);
}

function refused(fn: () => unknown): RequestError {
  try {
    fn();
  } catch (err) {
    if (err instanceof RequestError) return err;
    throw err;
  }
  throw new Error("accepted");
}

describe("local cache", () => {
  test("stores strings and bytes as given, counting hits and misses", () => {
    using t = open();
    const { cache } = t;
    expect(cache.put("greeting", "héllo")).toEqual({ stored: true });
    expect(cache.put("blob", new Uint8Array([0, 1, 255]))).toEqual({ stored: true });
    expect(cache.put("digits", "0123")).toEqual({ stored: true });
    expect(cache.get("greeting")).toEqual({ value: "héllo", source: "local" });
    expect(cache.get("blob")?.value).toEqual(new Uint8Array([0, 1, 255]));
    expect(cache.get("digits")?.value).toBe("0123"); // a string stays a string
    expect(cache.get("nope")).toBeUndefined();
    expect(cache.stats()).toMatchObject({ entries: 3, hits: 3, misses: 1, hit_ratio: 0.75 });
    // Budget accounting: UTF-8 bytes of key plus value.
    expect(cache.stats().bytes).toBe(8 + 6 + (4 + 3) + (6 + 4));
    expect(cache.delete("blob")).toBe(true);
    expect(cache.delete("blob")).toBe(false);
    expect(cache.get("blob")).toBeUndefined();
  });

  test("limits: keys up to 256 bytes, values up to 1 MiB, both named when refused", () => {
    using t = open({ budgetBytes: 4 << 20 });
    const { cache } = t;
    expect(cache.put("k".repeat(256), "v").stored).toBe(true);
    expect(refused(() => cache.put("k".repeat(257), "v")).field).toBe("key");
    expect(refused(() => cache.put("é".repeat(129), "v")).field).toBe("key"); // 258 bytes
    expect(refused(() => cache.put("", "v")).field).toBe("key");
    expect(cache.put("big", new Uint8Array(MAX_VALUE_BYTES)).stored).toBe(true);
    expect(refused(() => cache.put("big", new Uint8Array(MAX_VALUE_BYTES + 1))).field).toBe("value");
    expect(refused(() => cache.put("big", "x".repeat(MAX_VALUE_BYTES + 1))).field).toBe("value");
    expect(refused(() => cache.put("k", 5 as unknown as string)).field).toBe("value");
    expect(refused(() => cache.put("k", "v", { ttl_ms: 0 })).field).toBe("ttl_ms");
    expect(refused(() => cache.put("k", "v", { version: -1 })).field).toBe("version");
    expect(refused(() => cache.put("k", "v", { version: 1.5 })).field).toBe("version");
  });

  test("TTL: an entry expires lazily on get, counted as expired and as a miss", async () => {
    using t = open();
    const { cache, clock } = t;
    cache.put("session", "abc", { ttl_ms: 60_000 });
    expect(cache.get("session")).toEqual({ value: "abc", source: "local", expires_at: clock.now() + 60_000 });
    await clock.advance(59_999);
    expect(cache.get("session")?.value).toBe("abc");
    await clock.advance(1);
    expect(cache.get("session")).toBeUndefined();
    expect(cache.stats()).toMatchObject({ entries: 0, bytes: 0, expired: 1, hits: 2, misses: 1 });
  });

  test("TTL: the periodic sweep removes expired entries nobody reads", async () => {
    using t = open({ sweepIntervalMs: 10_000 });
    const { cache, clock } = t;
    cache.start();
    cache.put("short", "1", { ttl_ms: 5_000 });
    cache.put("long", "2", { ttl_ms: 50_000 });
    cache.put("forever", "3");
    await clock.advance(10_000);
    expect(cache.stats()).toMatchObject({ entries: 2, expired: 1 });
    await clock.advance(40_000);
    expect(cache.stats()).toMatchObject({ entries: 1, expired: 2 });
    expect(cache.get("forever")?.value).toBe("3");
  });

  test("a put replaces the value and its TTL; no TTL means no expiry", async () => {
    using t = open();
    const { cache, clock } = t;
    cache.put("k", "a", { ttl_ms: 1000 });
    cache.put("k", "b");
    await clock.advance(5000);
    expect(cache.get("k")).toEqual({ value: "b", source: "local" });
  });

  test("LRU: under the budget, the least recently used entry goes first", () => {
    // Each entry is 1-byte key + 99-byte value = 100 bytes; the budget holds three.
    using t = open({ budgetBytes: 300, policy: "lru" });
    const { cache } = t;
    const v = "x".repeat(99);
    for (const k of ["a", "b", "c"]) cache.put(k, v);
    cache.get("a");
    cache.put("d", v); // evicts b, the least recently used
    expect(present(cache, ["a", "b", "c", "d"])).toEqual(["a", "c", "d"]);
    // Reading them just now touched a, then c, then d: a is now the least recently used.
    cache.put("e", v);
    expect(present(cache, ["a", "c", "d", "e"])).toEqual(["c", "d", "e"]);
    expect(cache.stats()).toMatchObject({ entries: 3, bytes: 300, evictions: 2 });
  });

  test("LFU: under the budget, the least frequently used entry goes first, oldest among equals", () => {
    using t = open({ budgetBytes: 300, policy: "lfu" });
    const { cache } = t;
    const v = "x".repeat(99);
    for (const k of ["a", "b", "c"]) cache.put(k, v);
    for (let i = 0; i < 3; i++) cache.get("a");
    cache.get("c");
    cache.put("d", v); // b was used once (its put): evicted, though a and c are older than d
    expect(cache.get("b")).toBeUndefined();
    cache.put("e", v); // d has 1 use (its put): evicted before c (2) and a (4)
    expect(cache.get("d")).toBeUndefined();
    expect(present(cache, ["a", "c", "e"])).toEqual(["a", "c", "e"]);
  });

  test("LRU and LFU differ on the same sequence: a burst of one-off keys flushes LRU but not LFU", () => {
    const run = (policy: "lru" | "lfu") => {
      using t = open({ budgetBytes: 500, policy });
      const { cache } = t;
      const v = "x".repeat(98); // 2-byte keys: 100 bytes each, five fit
      for (const k of ["h1", "h2"]) {
        cache.put(k, v);
        for (let i = 0; i < 10; i++) cache.get(k);
      }
      for (let i = 0; i < 6; i++) cache.put(`o${i}`, v); // a scan of one-off keys
      return present(cache, ["h1", "h2"]);
    };
    expect(run("lru")).toEqual([]);
    expect(run("lfu")).toEqual(["h1", "h2"]);
  });

  test("the budget always holds, and bytes equal key + value bytes of what is stored (seeded, 3000 ops)", () => {
    for (const policy of ["lru", "lfu"] as const) {
      using t = open({ budgetBytes: 50_000, policy });
      const { cache, store } = t;
      const rand = prng(policy === "lru" ? 1 : 2);
      for (let i = 0; i < 3000; i++) {
        const key = `k${Math.floor(rand() * 400)}`;
        const r = rand();
        if (r < 0.6) cache.put(key, "v".repeat(Math.floor(rand() * 2000)));
        else if (r < 0.95) cache.get(key);
        else cache.delete(key);
        expect(cache.stats().bytes).toBeLessThanOrEqual(50_000);
      }
      const onDisk = store.db
        .query(
          "SELECT count(*) AS n, sum(length(CAST(key AS BLOB)) + length(CAST(value AS BLOB))) AS b FROM cache_entries",
        )
        .get() as { n: number; b: number };
      expect({ entries: onDisk.n, bytes: onDisk.b }).toEqual({
        entries: cache.stats().entries,
        bytes: cache.stats().bytes,
      });
    }
  });

  test("a value bigger than the whole budget is refused, and evicts nothing", () => {
    using t = open({ budgetBytes: 1000 });
    const { cache } = t;
    cache.put("small", "x");
    expect(cache.put("huge", "x".repeat(1000))).toEqual({ stored: false, reason: "over_budget" });
    expect(cache.get("small")?.value).toBe("x");
  });

  test("maxEntries bounds the entry count whatever their size", () => {
    using t = open({ maxEntries: 3 });
    const { cache } = t;
    for (const k of ["a", "b", "c", "d"]) cache.put(k, "1");
    expect(present(cache, ["a", "b", "c", "d"])).toEqual(["b", "c", "d"]);
  });

  test("expired entries are evicted before live ones when room is needed", async () => {
    using t = open({ budgetBytes: 300 });
    const { cache, clock } = t;
    const v = "x".repeat(99);
    cache.put("a", v);
    cache.put("b", v, { ttl_ms: 1000 });
    cache.put("c", v);
    await clock.advance(2000);
    cache.put("d", v);
    expect(present(cache, ["a", "c", "d"])).toEqual(["a", "c", "d"]);
    expect(cache.stats()).toMatchObject({ expired: 1, evictions: 0 });
  });

  test("setBudget shrinks the cache at once, in policy order", () => {
    using t = open({ budgetBytes: 1000 });
    const { cache } = t;
    const v = "x".repeat(99);
    for (const k of ["a", "b", "c", "d", "e"]) cache.put(k, v);
    cache.get("a");
    cache.setBudget(200);
    expect(present(cache, ["a", "b", "c", "d", "e"])).toEqual(["a", "e"]);
    expect(cache.stats()).toMatchObject({ bytes: 200, budget_bytes: 200, evictions: 3 });
  });
});

describe("local cache versions", () => {
  test("a hub entry with a version at or below the stored one is refused as stale", () => {
    using t = open();
    const { cache } = t;
    expect(cache.put("geo.zones", "v2", { source: "hub", version: 2 })).toEqual({ stored: true });
    expect(cache.put("geo.zones", "v1", { source: "hub", version: 1 })).toEqual({
      stored: false,
      reason: "stale",
    });
    expect(cache.put("geo.zones", "v2 again", { source: "hub", version: 2 })).toEqual({
      stored: false,
      reason: "stale",
    });
    expect(cache.get("geo.zones")).toEqual({ value: "v2", version: 2, source: "hub" });
    expect(cache.put("geo.zones", "v3", { source: "hub", version: 3 }).stored).toBe(true);
    expect(cache.get("geo.zones")?.value).toBe("v3");
  });

  test("a hub entry must carry a version", () => {
    using t = open();
    expect(refused(() => t.cache.put("k", "v", { source: "hub" })).field).toBe("version");
  });

  test("a local write over a hub entry holds until the hub sends that key again: a resend of the same version or a newer one restores the hub's value", () => {
    using t = open();
    const { cache } = t;
    cache.put("price", "100", { source: "hub", version: 7 });
    expect(cache.put("price", "95")).toEqual({ stored: true });
    // The local value carries no hub version: it does not pass itself off as version 7.
    expect(cache.get("price")).toEqual({ value: "95", source: "local" });
    // An older version stays out...
    expect(cache.put("price", "90", { source: "hub", version: 6 })).toEqual({
      stored: false,
      reason: "stale",
    });
    // ...the hub's resend of version 7 (at its next session) brings the hub's value back...
    expect(cache.put("price", "100", { source: "hub", version: 7 })).toEqual({ stored: true });
    expect(cache.get("price")).toEqual({ value: "100", version: 7, source: "hub" });
    // ...and after another local write, so does a newer version.
    cache.put("price", "96");
    expect(cache.put("price", "110", { source: "hub", version: 8 }).stored).toBe(true);
    expect(cache.get("price")).toEqual({ value: "110", version: 8, source: "hub" });
  });

  test("a hub deletion removes the hub's copy at or below its version and keeps older versions out; a local value stays", () => {
    using t = open();
    const { cache } = t;
    cache.put("zone", "z5", { source: "hub", version: 5 });
    expect(cache.deleteHub("zone", 5)).toBe(true);
    expect(cache.get("zone")).toBeUndefined();
    expect(cache.put("zone", "z5", { source: "hub", version: 5 })).toEqual({ stored: true });
    expect(cache.deleteHub("zone", 4)).toBe(false);
    expect(cache.get("zone")?.value).toBe("z5");
    cache.put("mine", "local");
    expect(cache.deleteHub("mine", 9)).toBe(false);
    expect(cache.get("mine")?.value).toBe("local");
    expect(cache.put("mine", "hub", { source: "hub", version: 8 })).toEqual({
      stored: false,
      reason: "stale",
    });
    expect(refused(() => cache.deleteHub("€".repeat(90), 1)).field).toBe("key");
  });

  test("an older version cannot come back after the newer one was deleted, evicted or expired", async () => {
    using t = open({ budgetBytes: 300 });
    const { cache, clock } = t;
    cache.put("a", "x".repeat(99), { source: "hub", version: 5 });
    cache.delete("a");
    expect(cache.put("a", "old", { source: "hub", version: 4 })).toEqual({ stored: false, reason: "stale" });
    // The same version may come back: it is the same data, resent.
    expect(cache.put("a", "x".repeat(99), { source: "hub", version: 5 }).stored).toBe(true);

    cache.put("b", "x".repeat(99), { source: "hub", version: 9, ttl_ms: 1000 });
    await clock.advance(1000);
    expect(cache.put("b", "old", { source: "hub", version: 8 })).toEqual({ stored: false, reason: "stale" });

    cache.put("c", "x".repeat(99));
    cache.put("d", "x".repeat(99));
    cache.put("e", "x".repeat(99)); // evicts a (v5), the least recently used
    expect(cache.get("a")).toBeUndefined();
    expect(cache.put("a", "old", { source: "hub", version: 3 })).toEqual({ stored: false, reason: "stale" });
    expect(cache.put("a", "new", { source: "hub", version: 6 }).stored).toBe(true);
  });

  test("a local write to a removed versioned key carries no version, and older hub data stays out", () => {
    using t = open();
    const { cache } = t;
    cache.put("k", "hub", { source: "hub", version: 3 });
    cache.delete("k");
    cache.put("k", "local");
    expect(cache.get("k")).toEqual({ value: "local", source: "local" });
    expect(cache.put("k", "hub2", { source: "hub", version: 2 }).stored).toBe(false);
    expect(cache.put("k", "hub3", { source: "hub", version: 3 }).stored).toBe(true);
  });
});

describe("local cache eviction on demand", () => {
  function filled(policy: "lru" | "lfu" = "lru") {
    const t = open({ budgetBytes: 10_000, policy });
    for (const k of ["geo.a", "geo.b", "geo.c", "geo.d", "cfg.a", "cfg.b"]) t.cache.put(k, "x".repeat(95)); // 100 B each
    return t;
  }

  test("evict by prefix removes every entry under it", () => {
    using t = filled();
    expect(t.cache.evict({ prefix: "geo." })).toBe(4);
    expect(present(t.cache, ["geo.a", "geo.b", "geo.c", "geo.d", "cfg.a", "cfg.b"])).toEqual([
      "cfg.a",
      "cfg.b",
    ]);
    expect(t.cache.stats()).toMatchObject({ entries: 2, evictions: 4 });
  });

  test("evict by fraction frees that share of the bytes, in policy order", () => {
    using t = filled();
    t.cache.get("geo.a");
    expect(t.cache.evict({ fraction: 0.5 })).toBe(3);
    expect(present(t.cache, ["geo.a", "geo.b", "geo.c", "geo.d", "cfg.a", "cfg.b"])).toEqual([
      "geo.a",
      "cfg.a",
      "cfg.b",
    ]);
  });

  test("evict by prefix and fraction frees that share of the prefix's bytes", () => {
    using t = filled("lfu");
    t.cache.get("geo.a");
    t.cache.get("geo.b");
    expect(t.cache.evict({ prefix: "geo.", fraction: 0.5 })).toBe(2);
    expect(present(t.cache, ["geo.a", "geo.b", "geo.c", "geo.d"])).toEqual(["geo.a", "geo.b"]);
  });

  test("evict with no options empties the cache; a bad fraction is refused", () => {
    using t = filled();
    expect(refused(() => t.cache.evict({ fraction: 1.5 })).field).toBe("fraction");
    expect(refused(() => t.cache.evict({ fraction: 0 })).field).toBe("fraction");
    expect(t.cache.evict()).toBe(6);
    expect(t.cache.stats()).toMatchObject({ entries: 0, bytes: 0 });
  });
});

// Hybrid logical clocks and cache declarations: stamps that never go back, sort as text, and refuse a far-future peer.
import { expect, test } from "bun:test";
import {
  compareStamps,
  HybridClock,
  MAX_DRIFT_MS,
  parseCacheSpecs,
  parseStamp,
} from "../../shared/cache/index.ts";
import { RequestError } from "../../shared/errors.ts";

test("hlc: stamps of one clock strictly rise, also when wall time stands still or goes back", () => {
  let wall = 1_000;
  const c = new HybridClock("a", () => wall);
  const stamps = [c.tick(), c.tick()];
  wall = 500; // the wall clock was set back
  stamps.push(c.tick(), c.tick());
  wall = 2_000;
  stamps.push(c.tick());
  for (let i = 1; i < stamps.length; i++) expect(compareStamps(stamps[i - 1]!, stamps[i]!)).toBe(-1);
  expect(parseStamp(stamps[3]!)).toEqual({ wall: 1_000, counter: 3, node: "a" });
  expect(parseStamp(stamps[4]!)).toEqual({ wall: 2_000, counter: 0, node: "a" });
});

test("hlc: after observing a stamp from a clock ahead, the next tick is after it (causality), and text order is stamp order", () => {
  const a = new HybridClock("a", () => 5_000);
  const b = new HybridClock("b", () => 1_000);
  const seen = a.tick();
  b.observe(seen);
  const next = b.tick();
  expect(next > seen).toBe(true);
  expect(parseStamp(next)).toMatchObject({ wall: 5_000, counter: 1, node: "b" });
  // Equal wall and counter: the node id breaks the tie, the same way everywhere.
  expect(compareStamps("000000000001000.000000.a", "000000000001000.000000.b")).toBe(-1);
  expect(compareStamps("000000000000999.000009.z", "000000000001000.000000.a")).toBe(-1);
});

test("hlc: a stamp more than the allowed drift ahead is refused naming the field, and the clock does not move", () => {
  const c = new HybridClock("a", () => 1_000);
  const before = c.last();
  const ahead = `${String(1_000 + MAX_DRIFT_MS + 1).padStart(15, "0")}.000000.evil`;
  expect(() => c.observe(ahead)).toThrow(RequestError);
  expect(c.last()).toBe(before);
  expect(() => c.observe("not a stamp")).toThrow(RequestError);
});

test("hlc: a clock resumes after the highest stamp stored (a restart never reissues a stamp)", () => {
  const c = new HybridClock("a", () => 10, "000000000000900.000004.a");
  expect(parseStamp(c.tick())).toEqual({ wall: 900, counter: 5, node: "a" });
});

test("cache declarations: defaults, and every bad setting refused naming caches.NAME.FIELD", () => {
  expect(parseCacheSpecs({ q: {} }).q).toMatchObject({
    strategy: "cache-aside",
    consistency: "eventual",
    replicate: "site",
    offline: "error",
    prefetch: 1000,
  });
  const field = (input: unknown) => {
    try {
      parseCacheSpecs(input);
    } catch (err) {
      if (err instanceof RequestError) return err.field;
      throw err;
    }
    return undefined;
  };
  expect(field({ q: { strategy: "write-sometimes" } })).toBe("caches.q.strategy");
  expect(field({ q: { consistency: "linear" } })).toBe("caches.q.consistency");
  expect(field({ q: { strategy: "read-through" } })).toBe("caches.q.origin");
  expect(field({ q: { strategy: "read-through", origin: "ftp://x" } })).toBe("caches.q.origin");
  expect(field({ q: { ttl_ms: -1 } })).toBe("caches.q.ttl_ms");
  expect(field({ q: { colour: "red" } })).toBe("caches.q.colour");
  expect(field({ "Bad Name": {} })).toBe("caches.Bad Name");
  expect(field([1])).toBe("caches");
});

// Hot keys in bounded memory, and the named caches' store: last writer wins by stamp, deletes as tombstones, LRU bound.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { HotKeys } from "../../agent/cache/hot-keys.ts";
import { NamedStore } from "../../agent/cache/named-store.ts";
import { AgentStore } from "../../agent/store/index.ts";
import { mulberry32 } from "../support/prng.ts";
import { tempDir } from "../support/processes.ts";

test("hot keys: memory stays at the capacity whatever the key count, and every key above n/capacity reads is held, hottest first", () => {
  const hot = new HotKeys(16);
  const rand = mulberry32(7);
  let n = 0;
  const truth: Record<string, number> = { h1: 0, h2: 0, h3: 0 };
  const read = (k: string) => {
    hot.add(k);
    n++;
    if (k in truth) truth[k]!++;
  };
  // 3 heavy keys among 100,000 one-off keys.
  for (let i = 0; i < 100_000; i++) {
    read(`cold-${i}`);
    if (rand() < 0.2) read("h1");
    if (rand() < 0.1) read("h2");
    if (rand() < 0.05) read("h3");
    expect(hot.size).toBeLessThanOrEqual(16);
  }
  const top = hot.top(3);
  expect(top.map((k) => k.key)).toEqual(["h1", "h2", "h3"]);
  // Space-Saving's bound: the true count lies within [count - error, count].
  for (const k of top) {
    expect(k.count).toBeGreaterThanOrEqual(truth[k.key]!);
    expect(k.count - k.error).toBeLessThanOrEqual(truth[k.key]!);
  }
  expect(top[0]!.count - top[0]!.error).toBeGreaterThan(n / 16);
});

test("hot keys: halving after a report lets what is hot now overtake what was hot before", () => {
  const hot = new HotKeys(8);
  for (let i = 0; i < 100; i++) hot.add("old");
  for (let r = 0; r < 5; r++) hot.halve();
  for (let i = 0; i < 20; i++) hot.add("new");
  expect(hot.top(1)[0]!.key).toBe("new");
  expect(hot.changed).toBe(true);
  hot.halve();
  expect(hot.changed).toBe(false);
});

test("named store: the highest stamp wins whatever the arrival order; a delete is a tombstone an older write cannot undo; the LRU bound holds", () => {
  using dir = tempDir("novacron-named-");
  const agentStore = new AgentStore(join(dir.path, "data"), { bufferBytes: 1 << 20 });
  try {
    const s = new NamedStore(agentStore.db);
    const t = (n: number, node = "a") => `${String(n).padStart(15, "0")}.000000.${node}`;
    expect(s.apply("c", "k", "v2", t(2), undefined, 10)).toBe("applied");
    expect(s.apply("c", "k", "v1", t(1), undefined, 10)).toBe("superseded");
    expect(s.apply("c", "k", "v2 again", t(2), undefined, 10)).toBe("superseded");
    expect(s.get("c", "k")?.value).toBe("v2");
    expect(s.apply("c", "k", undefined, t(3), undefined, 10)).toBe("applied");
    expect(s.get("c", "k")).toBeUndefined();
    expect(s.apply("c", "k", "late", t(2, "b"), undefined, 10)).toBe("superseded");
    expect(s.get("c", "k")).toBeUndefined();
    for (let i = 0; i < 5; i++) s.apply("c", `x${i}`, "v", t(10 + i), undefined, 3);
    expect(s.size("c")).toBeLessThanOrEqual(3);
    expect(s.get("c", "x4")?.value).toBe("v");
    expect(s.get("c", "x0")).toBeUndefined();
    // Reopened: the same entries and stamps (the clock resumes after the highest).
    const again = new NamedStore(agentStore.db);
    expect(again.get("c", "x4")?.hlc).toBe(t(14));
    expect(again.maxStamp()).toBe(t(14));
  } finally {
    agentStore.close();
  }
});

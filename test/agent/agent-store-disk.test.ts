// Specification of the agent's store on a real, small file system: a full disk is a state, every sample is counted.
import { afterAll, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { type AgentStatus, createLocalApi } from "../../agent/api/index.ts";
import { LocalCache } from "../../agent/cache/index.ts";
import { AgentStore, MetricBuffer } from "../../agent/store/index.ts";
import { MetricsRegistry } from "../../shared/metrics.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { mountTmpfs, type Tmpfs } from "../support/tmpfs.ts";

const KiB = 1024;
const mounts: Tmpfs[] = [];
afterAll(() => {
  for (const m of mounts) m[Symbol.dispose]();
});

function tick(series: number): Record<string, number> {
  return Object.fromEntries(Array.from({ length: series }, (_, i) => [`s${i}`, Math.random()]));
}

test("store: on a full disk ticks count as produced and dropped (disk), nothing throws, and the counts survive recovery and a restart", () => {
  const fs = mountTmpfs(2 * 1024 * KiB);
  mounts.push(fs);
  const dir = join(fs.path, "agent");
  let now = 1_800_000_000_000;
  const changes: boolean[] = [];
  const open = () =>
    new AgentStore(dir, {
      bufferBytes: 100_000_000,
      reserveBytes: 64 * KiB,
      now: () => now,
      onDiskFull: (full) => changes.push(full),
    });
  let store = open();
  let buffer = new MetricBuffer(store, 100);
  fs.fill("other-program", fs.free() - 600 * KiB);
  let stored = 0;
  let offered = 0;
  for (let i = 0; i < 400; i++) {
    now += 100;
    offered += 200;
    stored += buffer.add(now, tick(200));
    if (i % 10 === 9) buffer.flush(now);
    if (i % 10 === 0) store.maintain();
  }
  expect(store.full).toBe(true);
  expect(changes).toEqual([true]);
  const dropped = store.droppedBy().disk;
  expect(dropped).toBeGreaterThan(0);
  // Every tick offered is either stored or dropped, and all of them count as produced.
  expect(stored + dropped).toBe(offered);
  expect(buffer.produced()).toBe(offered);
  // Space returns: after the hysteresis the store takes data again and writes the counts.
  rmSync(join(fs.path, "other-program"));
  store.maintain();
  expect(store.full).toBe(true);
  now += 5000;
  store.maintain();
  expect(store.full).toBe(false);
  expect(changes).toEqual([true, false]);
  now += 100;
  expect(buffer.add(now, { a: 1 })).toBe(1);
  store.close();
  // The counts were written, not only held in memory.
  store = open();
  buffer = new MetricBuffer(store, 100);
  expect(store.droppedBy()).toEqual({ budget: 0, disk: dropped, invalid: 0, folded: 0 });
  expect(buffer.produced()).toBe(offered + 1);
  store.close();
});

test("store: a write that meets ENOSPC (no reserve) makes the state, gives up the ballast, and draining still works", () => {
  const fs = mountTmpfs(2 * 1024 * KiB);
  mounts.push(fs);
  const dir = join(fs.path, "agent");
  const store = new AgentStore(dir, { bufferBytes: 100_000_000, reserveBytes: 0 });
  const buffer = new MetricBuffer(store, 100);
  const ballast = store.disk.ballastOnDisk();
  expect(ballast).toBeGreaterThan(0);
  let t = 1_800_000_000_000;
  for (let i = 0; i < 20; i++) {
    t += 100;
    buffer.add(t, tick(200));
  }
  expect(buffer.flush(t)).toBeGreaterThan(0);
  // Something else takes every byte; the store finds out when SQLite does, on a write that does not
  // ask for room first (ticks and points do: they would meet the reserve instead).
  fs.fill("other-program");
  store.setState("note", "x".repeat(64 * KiB));
  expect(store.full).toBe(true);
  expect(store.disk.reason).toBe("enospc");
  expect(store.disk.ballastOnDisk()).toBe(0);
  t += 100;
  buffer.add(t, tick(200));
  expect(store.droppedBy().disk).toBe(200);
  // State writes wait in memory, and read back.
  store.setState("credential", "abc");
  expect(store.getState("credential")).toBe("abc");
  // Reports wait in memory too: the store's own disk-full alert, and this one.
  store.report("event", new Uint8Array([1, 2, 3]), t);
  expect(store.held().pending).toBe(2);
  // The drain path: numbering rows as they are sent and deleting acked rows has the ballast's room.
  const taken = store.outbox.take(0, 1_000_000);
  expect(taken.length).toBeGreaterThan(0);
  const last = taken.at(-1)!.seq;
  expect(store.outbox.ackUpTo(last)).toBeGreaterThan(0);
  for (let i = 0; i < 5; i++) store.maintain();
  expect(store.outbox.pending).toBe(0);
  store.close();
});

test("ingest: points refused as invalid by /v1/ingest are counted, every point of the refused body", async () => {
  let counted = 0;
  const app = createLocalApi({
    metrics: new MetricsRegistry(),
    status: () => ({}) as AgentStatus,
    tasks: () => [],
    logs: () => undefined,
    decisions: () => [],
    ingest: () => true,
    invalid: (n) => {
      counted += n;
    },
    now: () => Date.now(),
    cache: () => undefined,
  });
  const bad = await app.request("/v1/ingest", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      points: [{ series: "a.b", value: 1 }, { series: "a.c", value: "x" }, { series: "a.d" }],
    }),
  });
  expect(bad.status).toBe(400);
  expect(counted).toBe(3);
  const notJson = await app.request("/v1/ingest", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{",
  });
  expect(notJson.status).toBe(400);
  expect(counted).toBe(4);
  const good = await app.request("/v1/ingest", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ points: [{ series: "a.b", value: 1 }] }),
  });
  expect(good.status).toBe(202);
  expect(counted).toBe(4);
});

/** A store on a 2 MiB tmpfs with a 64 KiB reserve, at a fixed time, and its metric buffer. */
function smallDisk() {
  const fs = mountTmpfs(2 * 1024 * KiB);
  mounts.push(fs);
  const now = 1_800_000_000_000;
  const store = new AgentStore(join(fs.path, "agent"), {
    bufferBytes: 100_000_000,
    reserveBytes: 64 * KiB,
    now: () => now,
  });
  return { fs, store, buffer: new MetricBuffer(store, 1000), now };
}

test("store: a push too large for the room left is refused before it is written and counted (disk); the store is full for it (reserve), not out of space", () => {
  const { fs, store, buffer, now } = smallDisk();
  const before = fs.free();
  // 4,000 points of distinct series could write about 2 MB of WAL: more than the disk has.
  const big = Array.from({ length: 4000 }, (_, i) => ({ series: `big.s${i}`, t: now - 1000, value: i }));
  expect(buffer.addPoints(big, now)).toBeNull();
  expect(buffer.stagedPoints()).toBe(0);
  expect(store.droppedBy().disk).toBe(4000);
  expect(store.full).toBe(true);
  expect(store.disk.reason).toBe("reserve");
  // Nothing of it was written: the room is still there for the drain (the ballast was given up to it).
  expect(fs.free()).toBeGreaterThanOrEqual(before);
  store.close();
});

test("store: on a full disk staged points are packed in small batches while the room above the reserve allows, none lost", () => {
  const { fs, store, buffer, now } = smallDisk();
  // 6,000 points of 100 series, staged (not yet packed) when the disk fills: pushed 500 at a time, as
  // each push must leave room for its WAL and the checkpoint after it.
  const points = Array.from({ length: 6000 }, (_, i) => ({
    series: `p.s${i % 100}`,
    t: now - 60_000 + Math.floor(i / 100) * 1000,
    value: i,
  }));
  for (let i = 0; i < points.length; i += 500)
    expect(buffer.addPoints(points.slice(i, i + 500), now)).toBe(0);
  expect(buffer.stagedPoints()).toBe(6000);
  fs.fill("other-program");
  store.maintain();
  expect(store.full).toBe(true);
  // The full state cut the WAL and gave up the ballast: that room is taken too.
  fs.fill("other-program-2");
  // No room above the reserve (the ballast given up is less than a batch's room): they stay staged.
  expect(store.disk.freeBytes()!).toBeLessThan(64 * KiB + 2 * 2000 * 64);
  expect(buffer.flush(now)).toBe(0);
  expect(buffer.stagedPoints()).toBe(6000);
  // Some room returns, not enough to leave the full state (the clock stands still: the hysteresis holds).
  rmSync(join(fs.path, "other-program"));
  rmSync(join(fs.path, "other-program-2"));
  fs.fill("other-program", fs.free() - 900 * KiB);
  store.maintain();
  expect(store.full).toBe(true);
  const written = buffer.flush(now);
  expect(written).toBeGreaterThanOrEqual(3); // batches of at most 2,000 points (here 500: a 2 MiB disk's ballast)
  expect(buffer.stagedPoints()).toBe(0);
  expect(store.outbox.samples).toBe(6000);
  expect(store.outbox.held()).toBe(6000);
  expect(store.droppedBy().disk).toBe(0);
  store.close();
});

test("store: below its reserve (not out of space) the held counts are written every few seconds, so a kill -9 there loses at most those seconds", () => {
  const fs = mountTmpfs(2 * 1024 * KiB);
  mounts.push(fs);
  const dir = join(fs.path, "agent");
  let now = 1_800_000_000_000;
  const store = new AgentStore(dir, { bufferBytes: 100_000_000, reserveBytes: 256 * KiB, now: () => now });
  const buffer = new MetricBuffer(store, 1000);
  // Below the reserve, with room left for small writes.
  fs.fill("other-program", fs.free() - 48 * KiB);
  store.maintain();
  expect(store.full).toBe(true);
  expect(store.disk.reason).toBe("reserve");
  for (let i = 0; i < 12; i++) {
    now += 1000;
    buffer.add(now, tick(10));
    store.maintain();
  }
  const counted = store.droppedBy().disk;
  expect(counted).toBe(120);
  // A kill -9 now: a second store on the same file (the old one never closes) sees what was written.
  const after = new AgentStore(join(fs.path, "agent"), {
    bufferBytes: 100_000_000,
    reserveBytes: 256 * KiB,
    now: () => now,
  });
  const seen = after.droppedBy().disk;
  expect(seen).toBeGreaterThanOrEqual(counted - 50);
  expect(seen).toBeLessThanOrEqual(counted);
  expect(after.produced()).toBe(seen);
  after.close();
});

test("cache: a put too large for the room above the reserve is refused alone (disk_full); the store is not made full, and smaller puts and ticks go on", () => {
  const { fs, store, buffer, now } = smallDisk();
  const cache = new LocalCache({
    db: store.db,
    clock: new FakeClock(now),
    budgetBytes: 8 << 20,
    policy: "lru",
    writable: (bytes) => store.roomFor(bytes),
  });
  // About 700 KiB left: a 1 MiB value (twice its WAL counted) cannot fit, a 4 KiB one can.
  fs.fill("other-program", Math.max(0, fs.free() - 700 * KiB));
  const before = fs.free();
  expect(cache.put("big", new Uint8Array(1 << 20).fill(7))).toEqual({ stored: false, reason: "disk_full" });
  expect(fs.free()).toBeGreaterThanOrEqual(before - 64 * KiB);
  expect(store.full).toBe(false);
  expect(cache.put("small", new Uint8Array(4096).fill(1))).toEqual({ stored: true });
  expect(cache.get("small")?.value).toEqual(new Uint8Array(4096).fill(1));
  expect(buffer.add(now, { "cpu.util": 1 })).toBe(1);
  store.close();
});

// Specification of named caches at the hub, fed frames as an attacker or a buggy node would send them.
import { expect, test } from "bun:test";
import { formatStamp } from "../../shared/cache/index.ts";
import { type Body, envelope } from "../../shared/protocol/index.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { joinNode, openHubCore } from "../support/hub-core.ts";
import { tempDir } from "../support/processes.ts";

const caches = [{ name: "q", replicate: "site" as const }];

test("cache writes at the hub: last writer wins by stamp, each sequence number is applied once, and a write is relayed only to holders of the writer's site", async () => {
  using dir = tempDir();
  using core = await openHubCore(dir.path);
  const now = Date.now();
  const a = joinNode(core, "a", { labels: { site: "s1" }, caches });
  const b = joinNode(core, "b", { labels: { site: "s1" }, caches });
  const c = joinNode(core, "c", { labels: { site: "s2" }, caches });
  const write = (q: number, body: Body<"cache_write">) => {
    a.send(envelope("cache_write", "a", body, { q }));
    core.ingest.flush();
  };
  const stamp = (wall: number, node = "a") => formatStamp({ wall, counter: 0, node });
  write(1, { cache: "q", key: "k", value: "v2", hlc: stamp(now), replicate: "site" });
  write(1, { cache: "q", key: "k", value: "v2", hlc: stamp(now), replicate: "site" }); // a resend
  write(2, { cache: "q", key: "k", value: "v1", hlc: stamp(now - 10), replicate: "site" }); // out of order
  await Bun.sleep(0);
  const figures = core.app.request("/api/v1/caches/q", { headers: { authorization: "Bearer admin" } });
  const f = (await (await figures).json()) as Record<string, unknown>;
  expect(f).toMatchObject({ writes: 2, applied: 1, superseded: 1, repeated: 0, out_of_order: 1, keys: 1 });
  const replicas = (n: typeof b) =>
    n.received
      .filter((m) => m.t === "command" && m.b.kind === "cache_replica")
      .map((m) => (m.b as { args: Record<string, unknown> }).args);
  expect(replicas(b)).toEqual([{ cache: "q", key: "k", value: "v2", hlc: stamp(now) }]);
  expect(replicas(c)).toEqual([]);
  expect(replicas(a)).toEqual([]);
});

test("forged cache writes are refused and stored nowhere: an invalid key, a bad cache name, a malformed stamp, a stamp an hour ahead that would win every later write", async () => {
  using dir = tempDir();
  using core = await openHubCore(dir.path);
  const a = joinNode(core, "a", { labels: { site: "s1" }, caches });
  const b = joinNode(core, "b", { labels: { site: "s1" }, caches });
  const now = Date.now();
  const forged: Body<"cache_write">[] = [
    {
      cache: "q",
      key: "€".repeat(90),
      value: "x",
      hlc: formatStamp({ wall: now, counter: 0, node: "a" }),
      replicate: "site",
    },
    {
      cache: "Q Q",
      key: "k",
      value: "x",
      hlc: formatStamp({ wall: now, counter: 0, node: "a" }),
      replicate: "site",
    },
    { cache: "q", key: "k", value: "x", hlc: "yesterday", replicate: "site" },
    {
      cache: "q",
      key: "k",
      value: "x",
      hlc: formatStamp({ wall: now + 3_600_000, counter: 0, node: "a" }),
      replicate: "site",
    },
  ];
  forged.forEach((body, i) => {
    a.send(envelope("cache_write", "a", body, { q: i + 1 }));
    core.ingest.flush();
  });
  await Bun.sleep(0);
  // Each was acked past (the node's outbox is not blocked) and counted as refused.
  expect(core.ingest.committed("a")).toBe(4);
  const list = (await (
    await core.app.request("/api/v1/caches", { headers: { authorization: "Bearer admin" } })
  ).json()) as {
    caches: { name: string; writes: number; keys: number }[];
  };
  expect(list.caches.find((x) => x.name === "q")).toMatchObject({ writes: 0, keys: 0 });
  expect(b.received.some((m) => m.t === "command" && m.b.kind === "cache_replica")).toBe(false);
  expect(core.metrics.render()).toMatch(/cannot_store/);
});

test("replication scopes: a region write reaches the region's other sites, a level write the same level, a fleet write everyone, a 'none' write nobody", async () => {
  using dir = tempDir();
  using core = await openHubCore(dir.path);
  const scopes = (replicate: "region" | "level" | "fleet" | "none") => [{ name: "r", replicate }];
  const writer = (replicate: "region" | "level" | "fleet" | "none", q: number) => ({
    cache: "r",
    key: `k-${replicate}`,
    value: "v",
    hlc: formatStamp({ wall: Date.now(), counter: q, node: "w" }),
    replicate,
  });
  const got = (n: ReturnType<typeof joinNode>, key: string) =>
    n.received.some(
      (m) => m.t === "command" && m.b.kind === "cache_replica" && (m.b.args as { key: string }).key === key,
    );
  for (const scope of ["region", "level", "fleet", "none"] as const) {
    const base = { labels: { region: "eu", site: "s1" }, level: 4 };
    const w = joinNode(core, `w-${scope}`, { ...base, caches: scopes(scope) });
    const sameRegionOtherSite = joinNode(core, `x-${scope}`, {
      labels: { region: "eu", site: "s2" },
      level: 3,
      caches: scopes(scope),
    });
    const otherRegionSameLevel = joinNode(core, `y-${scope}`, {
      labels: { region: "us", site: "s9" },
      level: 4,
      caches: scopes(scope),
    });
    w.send(envelope("cache_write", `w-${scope}`, writer(scope, 1), { q: 1 }));
    core.ingest.flush();
    await Bun.sleep(0);
    const reached = [got(sameRegionOtherSite, `k-${scope}`), got(otherRegionSameLevel, `k-${scope}`)];
    const want = { region: [true, false], level: [false, true], fleet: [true, true], none: [false, false] }[
      scope
    ];
    expect({ scope, reached }).toEqual({ scope, reached: want });
  }
});

test("the hub's copy of named caches is bounded: expired entries, week-old deletions and the least recently written past --cache-max-entries go, each counted", async () => {
  using dir = tempDir();
  const clock = new FakeClock();
  const core = await openHubCore(dir.path, { clock, cacheMaxEntries: 3 });
  const nodes = {
    a: joinNode(core, "a", { labels: { site: "s1" }, caches }),
    b: joinNode(core, "b", { labels: { site: "s2" }, caches }),
  };
  const seqs = { a: 0, b: 0 };
  const write = (id: "a" | "b", key: string, value: string | undefined, ttl_ms?: number) => {
    const body: Body<"cache_write"> = {
      cache: "q",
      key,
      hlc: formatStamp({ wall: clock.now(), counter: 0, node: id }),
      replicate: "site",
      ...(value !== undefined ? { value } : {}),
      ...(ttl_ms !== undefined ? { ttl_ms } : {}),
    };
    nodes[id].send(envelope("cache_write", id, body, { q: ++seqs[id] }));
    core.ingest.flush();
  };
  const held = (on = core) =>
    (
      on.db.query("SELECT part, key, value IS NULL AS gone FROM cache_data ORDER BY part, key").all() as {
        part: string;
        key: string;
        gone: number;
      }[]
    ).map((r) => `${r.part}/${r.key}${r.gone ? " (deleted)" : ""}`);
  const pruned = (reason: string, on = core) =>
    Number(
      on.metrics
        .render()
        .match(new RegExp(`novacron_hub_cache_pruned_total\\{reason="${reason}"\\} (\\d+)`))?.[1] ?? 0,
    );
  write("a", "short", "v", 10_000);
  for (const k of ["k1", "k2", "k3", "k4"]) {
    await clock.advance(1000);
    write("a", k, "v");
  }
  write("a", "gone", undefined);
  write("b", "x", "v");
  write("b", "y", "v");
  expect(held()).toHaveLength(8);
  // A minute on: the expired entry goes, then s1 keeps its 3 most recently written; s2 is under the cap.
  await clock.advance(60_000);
  expect(held()).toEqual(["site=s1/gone (deleted)", "site=s1/k3", "site=s1/k4", "site=s2/x", "site=s2/y"]);
  expect([pruned("expired"), pruned("evicted"), pruned("tombstones")]).toEqual([1, 2, 0]);
  // The writers' stamps go with the keys no partition holds any more.
  const stamps = core.db.query("SELECT key FROM cache_seen ORDER BY key").all() as { key: string }[];
  expect(stamps.map((s) => s.key)).toEqual(["gone", "k3", "k4", "x", "y"]);
  // A week on (the hub started again then), the deletion is forgotten too.
  const weekOn = clock.now() + 7 * 86_400_000;
  core[Symbol.dispose]();
  const laterClock = new FakeClock(weekOn);
  using later = await openHubCore(dir.path, { clock: laterClock, cacheMaxEntries: 3 });
  await laterClock.advance(60_000);
  expect(held(later)).toEqual(["site=s1/k3", "site=s1/k4", "site=s2/x", "site=s2/y"]);
  expect(pruned("tombstones", later)).toBe(1);
});

// Specification of named caches at the hub, fed frames as an attacker or a buggy node would send them.
import { expect, test } from "bun:test";
import { formatStamp } from "../../shared/cache/index.ts";
import { type Body, envelope } from "../../shared/protocol/index.ts";
import { joinNode, openHubCore } from "../support/hub-core.ts";
import { tempDir } from "../support/processes.ts";

const caches = [{ name: "q", replicate: "site" as const }];

test("cache writes at the hub: last writer wins by stamp, each sequence number is applied once, and a write is relayed only to holders of the writer's site", async () => {
  using dir = tempDir();
  using core = await openHubCore(dir.path);
  const now = Date.now();
  const a = await joinNode(core, "a", { labels: { site: "s1" }, caches });
  const b = await joinNode(core, "b", { labels: { site: "s1" }, caches });
  const c = await joinNode(core, "c", { labels: { site: "s2" }, caches });
  // Their sessions' catch-ups (read from the store) are done before the first write: b hears it live.
  await Bun.sleep(20);
  const write = async (q: number, body: Body<"cache_write">) => {
    a.send(envelope("cache_write", "a", body, { q }));
    await core.ingest.flush();
  };
  const stamp = (wall: number, node = "a") => formatStamp({ wall, counter: 0, node });
  await write(1, { cache: "q", key: "k", value: "v2", hlc: stamp(now), replicate: "site" });
  await write(1, { cache: "q", key: "k", value: "v2", hlc: stamp(now), replicate: "site" }); // a resend
  await write(2, { cache: "q", key: "k", value: "v1", hlc: stamp(now - 10), replicate: "site" }); // out of order
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
  const a = await joinNode(core, "a", { labels: { site: "s1" }, caches });
  const b = await joinNode(core, "b", { labels: { site: "s1" }, caches });
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
  for (const [i, body] of forged.entries()) {
    a.send(envelope("cache_write", "a", body, { q: i + 1 }));
    await core.ingest.flush();
  }
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
  const got = (n: Awaited<ReturnType<typeof joinNode>>, key: string) =>
    n.received.some(
      (m) => m.t === "command" && m.b.kind === "cache_replica" && (m.b.args as { key: string }).key === key,
    );
  for (const scope of ["region", "level", "fleet", "none"] as const) {
    const base = { labels: { region: "eu", site: "s1" }, level: 4 };
    const w = await joinNode(core, `w-${scope}`, { ...base, caches: scopes(scope) });
    const sameRegionOtherSite = await joinNode(core, `x-${scope}`, {
      labels: { region: "eu", site: "s2" },
      level: 3,
      caches: scopes(scope),
    });
    const otherRegionSameLevel = await joinNode(core, `y-${scope}`, {
      labels: { region: "us", site: "s9" },
      level: 4,
      caches: scopes(scope),
    });
    w.send(envelope("cache_write", `w-${scope}`, writer(scope, 1), { q: 1 }));
    await core.ingest.flush();
    await Bun.sleep(0);
    const reached = [got(sameRegionOtherSite, `k-${scope}`), got(otherRegionSameLevel, `k-${scope}`)];
    const want = { region: [true, false], level: [false, true], fleet: [true, true], none: [false, false] }[
      scope
    ];
    expect({ scope, reached }).toEqual({ scope, reached: want });
  }
});

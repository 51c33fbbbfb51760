// Named caches end to end (real hub, real agents): each strategy and consistency mode, named for its guarantee.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { figures, get, node, put, url } from "../support/cache-nodes.ts";
import { startHub, tempDir } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";

test("write-behind: acknowledged at once and queued while the hub is away; 10,000 offline writes reach the hub exactly once, in order per key, after the reconnect", async () => {
  using dir = tempDir();
  await using hub = await startHub({ data: join(dir.path, "hub") });
  await using a = await node(
    hub,
    dir.path,
    "a",
    { prices: { strategy: "write-behind", replicate: "site" } },
    ["--label", "site=s1"],
  );
  await hub.proc.kill("SIGKILL");
  await waitFor(async () => !(await a.status()).connected, { what: "a to see the hub gone" });
  // 100 keys x 100 writes each, interleaved; the last value of key k is k-99.
  for (let round = 0; round < 100; round++) {
    await Promise.all(
      Array.from({ length: 100 }, async (_, k) => {
        const r = await put(a, "prices", `k${k}`, `${k}-${round}`);
        expect(r.status).toBe(200);
        expect(r.body.queued).toBe(true);
      }),
    );
  }
  const status = await a.status();
  const q = (status.caches as { queue: { depth: number; oldest_ms: number | null } }).queue;
  expect(q.depth).toBe(10_000);
  expect(q.oldest_ms).not.toBeNull();
  // Read-your-writes while offline: the node serves its own last write.
  expect((await get(a, "prices", "k7")).value).toBe("7-99");
  await hub.restart();
  // The agent is killed (-9) in the middle of the drain: what the hub stored stays stored once, the rest follows.
  await waitFor(async () => ((await figures(hub, "prices"))?.writes ?? 0) > 0, {
    what: "the drain to start",
  });
  await a.restart();
  await waitFor(async () => (await figures(hub, "prices"))?.writes === 10_000, {
    timeoutMs: 120_000,
    what: "all 10,000 writes at the hub",
  });
  const f = (await figures(hub, "prices"))!;
  expect(f).toMatchObject({
    writes: 10_000,
    applied: 10_000,
    superseded: 0,
    repeated: 0,
    out_of_order: 0,
    keys: 100,
  });
  await waitFor(async () => ((await a.status()).caches as { queue: { depth: number } }).queue.depth === 0, {
    what: "the queue drained",
  });
  const last = await hub.api<{ entries: { value: string; origin: string }[] }>(
    "/api/v1/caches/prices/entries/k42",
  );
  expect(last.body.entries).toEqual([expect.objectContaining({ value: "42-99", origin: "a" })]);
  // After a kill -9 the node still serves its own writes from its store.
  expect((await get(a, "prices", "k99")).value).toBe("99-99");
}, 240_000);

test("write-through: acknowledged once the hub stored it; refused while the hub is away, and nothing is stored", async () => {
  using dir = tempDir();
  await using hub = await startHub({ data: join(dir.path, "hub") });
  await using a = await node(hub, dir.path, "a", { orders: { strategy: "write-through" } });
  const ok = await put(a, "orders", "o1", "paid");
  expect(ok.status).toBe(200);
  expect(ok.body.confirmed).toBe(true);
  // Confirmed means stored at the hub: it is there the moment the write returned.
  const at = await hub.api<{ entries: { value: string }[] }>("/api/v1/caches/orders/entries/o1");
  expect(at.body.entries[0]?.value).toBe("paid");
  await hub.proc.kill("SIGKILL");
  await waitFor(async () => !(await a.status()).connected, { what: "a to see the hub gone" });
  const refused = await put(a, "orders", "o2", "paid");
  expect(refused.status).toBe(503);
  expect(refused.body.error?.code).toBe("hub_unreachable");
  expect((await get(a, "orders", "o2")).status).toBe(404);
  expect((await get(a, "orders", "o1")).value).toBe("paid");
}, 90_000);

test("strong while offline: a read answers an error, or the value flagged stale when the cache says so, never an unflagged stale value", async () => {
  using dir = tempDir();
  await using hub = await startHub({ data: join(dir.path, "hub") });
  await using a = await node(hub, dir.path, "a", {
    strict: { consistency: "strong" },
    lenient: { consistency: "strong", offline: "stale" },
  });
  for (const c of ["strict", "lenient"]) expect((await put(a, c, "limit", "100")).body.confirmed).toBe(true);
  expect(await get(a, "strict", "limit")).toMatchObject({ status: 200, value: "100", stale: false });
  await hub.proc.kill("SIGKILL");
  await waitFor(async () => !(await a.status()).connected, { what: "a to see the hub gone" });
  const strict = await get(a, "strict", "limit");
  expect(strict.status).toBe(503);
  const lenient = await get(a, "lenient", "limit");
  expect(lenient).toMatchObject({ status: 200, value: "100", stale: true });
  // Writes go through the hub: refused offline.
  expect((await put(a, "lenient", "limit", "5")).status).toBe(503);
  await hub.restart();
  await waitFor(async () => (await a.status()).connected, { what: "a reconnected" });
  expect(await get(a, "lenient", "limit")).toMatchObject({ status: 200, value: "100", stale: false });
}, 90_000);

test("replication: a write at node A is readable at node B of the same site, not at a node of another site; concurrent writes at A and B converge to the same value everywhere", async () => {
  using dir = tempDir();
  await using hub = await startHub({ data: join(dir.path, "hub") });
  const spec = { quotes: { strategy: "write-behind", consistency: "causal", replicate: "site" } };
  await using a = await node(hub, dir.path, "a", spec, ["--label", "site=s1"]);
  await using b = await node(hub, dir.path, "b", spec, ["--label", "site=s1"]);
  await using c = await node(hub, dir.path, "c", spec, ["--label", "site=s2"]);
  await put(a, "quotes", "EURUSD", "1.08");
  await waitFor(async () => (await get(b, "quotes", "EURUSD")).value === "1.08", { what: "the write at b" });
  expect((await get(c, "quotes", "EURUSD")).status).toBe(404);
  // Concurrent writes: 20 rounds, a and b each write the same key at once.
  for (let i = 0; i < 20; i++)
    await Promise.all([put(a, "quotes", "GBPUSD", `a${i}`), put(b, "quotes", "GBPUSD", `b${i}`)]);
  const settled = async () => {
    const [va, vb] = await Promise.all([get(a, "quotes", "GBPUSD"), get(b, "quotes", "GBPUSD")]);
    const hubSide = await hub.api<{ entries: { value: string; hlc: string }[] }>(
      "/api/v1/caches/quotes/entries/GBPUSD",
    );
    const vh = hubSide.body.entries?.[0];
    return va.value !== undefined &&
      va.value === vb.value &&
      va.hlc === vb.hlc &&
      vh?.value === va.value &&
      vh.hlc === va.hlc
      ? va.value
      : undefined;
  };
  const winner = await waitFor(settled, { what: "a, b and the hub to agree" });
  // Every write reached the hub once: 1 + 2 x 20, counted in its /metrics.
  await waitFor(
    async () =>
      /novacron_hub_cache_writes_total\{cache="quotes"\} 41\n/.test(
        await (await fetch(`${hub.url}/metrics`)).text(),
      ),
    {
      what: "41 writes in the hub's metrics",
    },
  );
  expect(winner).toMatch(/^[ab]\d+$/);
  // A delete is a write too (a tombstone with its stamp): it replicates, and the older value stays gone.
  expect((await fetch(url(a, "quotes", "EURUSD"), { method: "DELETE" })).status).toBe(200);
  await waitFor(async () => (await get(b, "quotes", "EURUSD")).status === 404, { what: "the delete at b" });
  await put(a, "quotes", "EURUSD", "1.09");
  // A node that joins later gets the site's entries at its hello.
  await using d = await node(hub, dir.path, "d", spec, ["--label", "site=s1"]);
  await waitFor(async () => (await get(d, "quotes", "EURUSD")).value === "1.09", { what: "catch-up at d" });
}, 120_000);

test("strong while connected: a read at B right after A's write was confirmed returns that write, every time, because the hub answers it", async () => {
  using dir = tempDir();
  await using hub = await startHub({ data: join(dir.path, "hub") });
  const spec = { ledger: { consistency: "strong", replicate: "site" } };
  await using a = await node(hub, dir.path, "a", spec, ["--label", "site=s1"]);
  await using b = await node(hub, dir.path, "b", spec, ["--label", "site=s1"]);
  for (let i = 0; i < 50; i++) {
    const w = await put(a, "ledger", "balance", String(i));
    expect(w.body.confirmed).toBe(true);
    const r = await get(b, "ledger", "balance");
    expect(r).toMatchObject({ status: 200, value: String(i), stale: false });
  }
  const stats = (await (await fetch(`${b.apiUrl}/v1/caches`)).json()) as {
    caches: { ledger: { hub_reads: number } };
  };
  expect(stats.caches.ledger.hub_reads).toBe(50);
  expect((await get(b, "ledger", "nothing")).status).toBe(404);
}, 90_000);

// The hub's routes behind the dashboard: the fleet overview aggregated on the hub, the files under /ui/, GET / by Accept.
import { expect, test } from "bun:test";
import { Hono } from "hono";
import { mountUi } from "../../hub/api/ui.ts";
import { type FleetNode, fleetTree, pageNodes, readAtMostEvery } from "../../hub/fleet/index.ts";
import { ADMIN, admitDirect, helloBody, openHubCore } from "../support/hub-core.ts";
import { tempDir } from "../support/processes.ts";

const fn = (id: string, tier: number, region: string, site: string, health = "ready"): FleetNode => ({
  id,
  tier,
  region,
  site,
  health,
  status: health,
  since: 1,
  reason: "",
  last_seen: 1,
  connected: health === "ready",
});

const FLEET = [
  fn("a", 4, "eu", "ams", "ready"),
  fn("b", 4, "eu", "ams", "suspect"),
  fn("c", 4, "eu", "par", "ready"),
  fn("d", 4, "us", "nyc", "lost"),
  fn("e", 2, "eu", "fra", "ready"),
];

test("fleet tree: nodes grouped by tier, region and site, each group with its count and counts by health", () => {
  const t = fleetTree(FLEET);
  expect(t.total).toBe(5);
  expect(t.health).toEqual({ ready: 3, suspect: 1, lost: 1 });
  expect(t.tiers.map((x) => [x.tier, x.name, x.count])).toEqual([
    [2, "regional edge", 1],
    [4, "access edge", 4],
  ]);
  const t4 = t.tiers[1]!;
  expect(t4.health).toEqual({ ready: 2, suspect: 1, lost: 1 });
  expect(t4.regions.map((r) => [r.region, r.count])).toEqual([
    ["eu", 3],
    ["us", 1],
  ]);
  expect(t4.regions[0]!.sites).toEqual([
    { site: "ams", count: 2, health: { ready: 1, suspect: 1 } },
    { site: "par", count: 1, health: { ready: 1 } },
  ]);
});

test("fleet pages: worst health first, filtered by tier, region, site, health or id, with the total that matched", () => {
  expect(pageNodes(FLEET, {}, 0, 2)).toMatchObject({ total: 5, nodes: [{ id: "d" }, { id: "b" }] });
  expect(pageNodes(FLEET, {}, 2, 10).nodes.map((n) => n.id)).toEqual(["a", "c", "e"]);
  expect(pageNodes(FLEET, { tier: 4, region: "eu" }, 0, 10).total).toBe(3);
  expect(pageNodes(FLEET, { site: "ams", health: "ready" }, 0, 10).nodes.map((n) => n.id)).toEqual(["a"]);
  expect(pageNodes(FLEET, { q: "e" }, 0, 10).nodes.map((n) => n.id)).toEqual(["e"]);
});

test("fleet reads: the registry is scanned at most once a second, however many requests ask", () => {
  let t = 0;
  let scans = 0;
  const read = readAtMostEvery(
    1000,
    () => t,
    () => ++scans,
  );
  expect([read(), read()]).toEqual([1, 1]);
  t = 999;
  expect(read()).toBe(1);
  t = 1000;
  expect(read()).toBe(2);
});

test("GET /api/v1/fleet and /fleet/nodes: the hub's nodes by tier and labels, a bad query parameter named, no token refused", async () => {
  using dir = tempDir();
  using core = await openHubCore(dir.path);
  await admitDirect(core.registry, helloBody("n1", { level: 3, labels: { region: "eu", site: "ams" } }));
  await admitDirect(core.registry, helloBody("n2", { level: 3, labels: { region: "eu", site: "par" } }));
  await admitDirect(core.registry, helloBody("n3", { level: 5, labels: {} }));
  const get = async (path: string, token: string | null = ADMIN) => {
    const r = await core.app.request(path, token ? { headers: { authorization: `Bearer ${token}` } } : {});
    return { status: r.status, json: (await r.json()) as Record<string, never> };
  };
  const tree = await get("/api/v1/fleet");
  expect(tree.status).toBe(200);
  expect(tree.json).toMatchObject({
    total: 3,
    tiers: [
      { tier: 3, count: 2, regions: [{ region: "eu", sites: [{ site: "ams" }, { site: "par" }] }] },
      { tier: 5, count: 1, regions: [{ region: "(none)", sites: [{ site: "(none)" }] }] },
    ],
  });
  const page = await get("/api/v1/fleet/nodes?tier=3&limit=1&offset=1");
  expect(page.json).toMatchObject({
    total: 2,
    offset: 1,
    limit: 1,
    nodes: [{ id: "n2", tier: 3, site: "par" }],
  });
  expect((await get("/api/v1/fleet/nodes?limit=5000")).json).toMatchObject({
    error: { code: "bad_request", field: "limit" },
  });
  expect((await get("/api/v1/fleet/nodes?tier=x")).json).toMatchObject({ error: { field: "tier" } });
  expect((await get("/api/v1/fleet", null)).status).toBe(401);
  expect((await get("/api/v1/fleet/nodes", "forged")).status).toBe(401);
});

test("GET /: JSON for API clients as before, the dashboard for a browser (Accept: text/html)", async () => {
  using dir = tempDir();
  using core = await openHubCore(dir.path);
  for (const accept of [undefined, "application/json", "*/*", "application/json, text/html"]) {
    const r = await core.app.request("/", accept ? { headers: { accept } } : {});
    expect(r.status).toBe(200);
    const body = (await r.json()) as { name: string; endpoints: Record<string, string> };
    expect(body.name).toBe("novacron-hub");
    expect(body.endpoints).toMatchObject({ health: "/healthz", metrics: "/metrics", dashboard: "/ui/" });
  }
  const browser = await core.app.request("/", {
    headers: { accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8" },
  });
  expect(browser.status).toBe(302);
  expect(browser.headers.get("location")).toBe("/ui/");
});

test("/ui/: the page and its hashed scripts, gzipped when asked, revalidated by ETag, locked down by CSP; no data without a token", async () => {
  using dir = tempDir();
  using core = await openHubCore(dir.path);
  const page = await core.app.request("/ui/");
  expect(page.status).toBe(200);
  expect(page.headers.get("content-type")).toStartWith("text/html");
  expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
  expect(page.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
  const html = await page.text();
  const main = /<script type="module" src="\.\/(main-[a-z0-9]+\.js)">/.exec(html)?.[1];
  expect(main).toBeDefined();
  const js = await core.app.request(`/ui/${main}`, { headers: { "accept-encoding": "gzip, br" } });
  expect(js.status).toBe(200);
  expect(js.headers.get("content-encoding")).toBe("gzip");
  expect(js.headers.get("cache-control")).toContain("immutable");
  const gz = new Uint8Array(await js.arrayBuffer());
  const plain = Bun.gunzipSync(gz);
  expect(new TextDecoder().decode(plain)).toContain("/api/v1/stream");
  const again = await core.app.request(`/ui/${main}`, {
    headers: { "if-none-match": js.headers.get("etag")! },
  });
  expect(again.status).toBe(304);
  expect((await core.app.request("/ui/nothing-here.js")).status).toBe(404);
  expect((await core.app.request("/ui")).headers.get("location")).toBe("/ui/");
  // The files are public; what they show is not.
  expect(html).not.toContain(ADMIN);
  expect((await core.app.request("/api/v1/nodes")).status).toBe(401);
});

test("/ui/ on a hub whose pages cannot be had (compiled without the build's entry): 503 that says so, not a crash", async () => {
  const app = new Hono();
  mountUi(app, () => Promise.reject(new Error("no bundle in this binary")));
  const r = await app.request("/ui/");
  expect(r.status).toBe(503);
  expect(await r.json()).toEqual({
    error: {
      code: "unavailable",
      message: "the dashboard is not available on this hub: no bundle in this binary",
    },
  });
});

// Dashboard: first-load bytes and time to first render in headless chromium, and the overview with N nodes.
//
//   bun bench/dashboard.ts [--nodes 10000] [--runs 5]
//
// A real hub process serves the dashboard (bundled from the checkout on its first request, as
// `bun hub/main.ts` does; the first request is made before measuring). Each run is a fresh browser
// context (empty cache). Bytes are what crossed the wire (CDP Network.loadingFinished
// encodedDataLength: headers and gzipped bodies). "First render" is performance.now() in the page
// (from navigation start) when the element first exists, seen by a MutationObserver installed
// before any script runs: the sign-in form for a new visitor; the overview's node table and
// topology tree for a signed-in tab (token already in sessionStorage).
// For the large fleet, N nodes are written into the hub's registry before it starts (tiers 1-5,
// 8 regions, 200 sites); the hub, just started, counts them all suspect. The overview asks the
// hub for the aggregated tree (GET /api/v1/fleet) and one page of 100 nodes; GET /api/v1/nodes,
// the whole list, is timed beside it for comparison.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Registry } from "../hub/registry/index.ts";
import { wrapSqlite } from "../hub/store/sql/index.ts";
import { openHubDb } from "../hub/store/db.ts";
import { browserMissing, launchBrowser } from "../test/support/browser.ts";
import { admitDirect, helloBody } from "../test/support/hub-core.ts";
import { freePort } from "../test/support/ports.ts";
import { Proc } from "../test/support/processes.ts";
import { machineInfo, pct, printMachine, table } from "./_machine.ts";

const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: { nodes: { type: "string", default: "10000" }, runs: { type: "string", default: "5" } },
});
const NODES = Number(opts.nodes);
const RUNS = Number(opts.runs);
const TOKEN = "bench-admin-token";

const missing = browserMissing();
if (missing) {
  console.log(`dashboard benchmark skipped: ${missing}`);
  process.exit(0);
}
printMachine(machineInfo());

async function populate(dir: string, n: number): Promise<void> {
  const db = await openHubDb(dir);
  const registry = new Registry(wrapSqlite(db), {
    suspectAfterMs: 25_000,
    downAfterMs: 90_000,
    restartGraceMs: 60_000,
    keyLifetimeMs: 86_400_000,
  });
  for (let i = 0; i < n; i++) {
    const region = `region-${i % 8}`;
    await admitDirect(
      registry,
      helloBody(`node-${String(i).padStart(5, "0")}`, {
        level: 1 + (i % 5),
        labels: { region, site: `${region}-site-${Math.floor(i / 8) % 25}` },
      }),
    );
  }
  db.close();
}

async function startHub(dir: string) {
  const port = freePort();
  const proc = new Proc("hub", [
    process.execPath,
    "hub/main.ts",
    "serve",
    "--data",
    dir,
    "--listen",
    `127.0.0.1:${port}`,
    "--admin-token",
    TOKEN,
    "--join-token",
    "bench-join",
  ]);
  proc.start();
  await proc.waitForLine(/hub listening/);
  const url = `http://127.0.0.1:${port}`;
  // The checkout bundles on the first request: not part of what a visitor waits for afterwards.
  const t0 = performance.now();
  await (await fetch(`${url}/ui/`)).text();
  return { proc, url, bundleMs: performance.now() - t0 };
}

interface Load {
  /** When the overview's two API replies had arrived (ms from navigation start), for the split. */
  apiDoneMs: number;
  bytes: number;
  uiBytes: number;
  requests: number;
  renderMs: number;
  fcpMs: number;
}

type Browser = Awaited<ReturnType<typeof launchBrowser>>;

/** One cold load of /ui/ until `selector` exists; bytes on the wire split into the dashboard's files and API calls. */
async function load(browser: Browser, url: string, selector: string, signedIn: boolean): Promise<Load> {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.addInitScript(
    ({ sel, token }) => {
      if (token) sessionStorage.setItem("novacron.token", token);
      const g = globalThis as unknown as Record<string, unknown>;
      const doc = (g as { document: { querySelector(s: string): unknown } }).document;
      const MO = g.MutationObserver as new (
        cb: () => void,
      ) => { observe(n: unknown, o: unknown): void; disconnect(): void };
      const mo = new MO(() => {
        if (g.__rendered === undefined && doc.querySelector(sel)) {
          g.__rendered = performance.now();
          mo.disconnect();
        }
      });
      mo.observe(doc, { childList: true, subtree: true, attributes: true });
    },
    { sel: selector, token: signedIn ? TOKEN : "" },
  );
  const cdp = await ctx.newCDPSession(page);
  await cdp.send("Network.enable");
  const urls = new Map<string, string>();
  let bytes = 0;
  let uiBytes = 0;
  let requests = 0;
  cdp.on("Network.requestWillBeSent", (e: { requestId: string; request: { url: string } }) => {
    urls.set(e.requestId, e.request.url);
  });
  cdp.on("Network.loadingFinished", (e: { requestId: string; encodedDataLength: number }) => {
    const u = urls.get(e.requestId) ?? "";
    if (u.includes("/api/v1/stream")) return;
    requests++;
    bytes += e.encodedDataLength;
    if (u.includes("/ui/")) uiBytes += e.encodedDataLength;
  });
  await page.goto(`${url}/ui/`);
  await page.waitForSelector(selector, { timeout: 60_000, state: "attached" });
  await page.waitForLoadState("networkidle").catch(() => {});
  const [renderMs, fcpMs, apiDoneMs] = await page.evaluate(() => {
    const g = globalThis as unknown as { __rendered?: number };
    const fcp = performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? Number.NaN;
    const api = performance
      .getEntriesByType("resource")
      .filter((e) => e.name.includes("/api/v1/fleet"))
      .map((e) => (e as PerformanceResourceTiming).responseEnd);
    return [g.__rendered ?? Number.NaN, fcp, api.length ? Math.max(...api) : Number.NaN];
  });
  await ctx.close();
  return { bytes, uiBytes, requests, renderMs, fcpMs, apiDoneMs };
}

/** Each file of the dashboard: its size, and gzipped as the hub sends it. */
async function files(url: string): Promise<(string | number)[][]> {
  const html = await (await fetch(`${url}/ui/`)).text();
  const main = /src="\.\/([^"]+)"/.exec(html)?.[1] ?? "";
  const js = await (await fetch(`${url}/ui/${main}`)).text();
  // The chart library's chunk is named in the main script's dynamic import.
  const chunks = [...new Set([...js.matchAll(/"\.\/([\w.-]+\.js)"/g)].map((m) => m[1]!))].filter(
    (c) => c !== main,
  );
  const rows: (string | number)[][] = [["file", "bytes", "gzipped", "when"]];
  for (const [name, when] of [
    ["", "first load"],
    [main, "first load"],
    ...chunks.map((c) => [c, "first chart"]),
  ] as const) {
    const raw = (await (await fetch(`${url}/ui/${name}`)).arrayBuffer()).byteLength;
    const gz = (
      await (
        await fetch(`${url}/ui/${name}`, { headers: { "accept-encoding": "gzip" }, decompress: false })
      ).arrayBuffer()
    ).byteLength;
    rows.push([name || "index.html (CSS inline)", raw, gz, when]);
  }
  return rows;
}

const median = (xs: number[]) =>
  pct(
    [...xs].sort((a, b) => a - b),
    0.5,
  );

// Calls a second apart: the hub shares one registry scan between calls within a second, and these
// are meant to pay for their own.
async function timeApi(url: string, path: string, runs = 5): Promise<{ ms: number; bytes: number }> {
  const ms: number[] = [];
  let bytes = 0;
  for (let i = 0; i < runs; i++) {
    await Bun.sleep(1100);
    const t0 = performance.now();
    const r = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    bytes = (await r.arrayBuffer()).byteLength;
    ms.push(performance.now() - t0);
  }
  return { ms: median(ms), bytes };
}

async function measure(label: string, nodes: number, browser: Browser) {
  const dir = mkdtempSync(join(tmpdir(), "novacron-bench-dash-"));
  try {
    if (nodes > 0) {
      const t0 = performance.now();
      await populate(dir, nodes);
      console.log(
        `${label}: ${nodes} nodes written to the registry in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
    }
    const hub = await startHub(dir);
    try {
      console.log(`${label}: first request bundled the dashboard in ${hub.bundleMs.toFixed(0)} ms`);
      if (nodes === 0) console.log(table(await files(hub.url)));
      const rows: (string | number)[][] = [
        [
          "page (cold cache)",
          "wire bytes (dashboard files)",
          "wire bytes (all)",
          "requests",
          "API replies in ms (median)",
          "first render ms (median)",
          "FCP ms (median)",
          "runs",
        ],
      ];
      for (const [what, selector, signedIn] of [
        ["sign-in form", "#token", false],
        ["overview: node table", 'section[aria-labelledby="nodes-h"][data-ready="true"] tbody tr', true],
        ["overview: topology tree", 'section[aria-labelledby="tree-h"][data-ready="true"]', true],
      ] as const) {
        const runs: Load[] = [];
        for (let i = 0; i < RUNS; i++) runs.push(await load(browser, hub.url, selector, signedIn));
        rows.push([
          what,
          median(runs.map((r) => r.uiBytes)),
          median(runs.map((r) => r.bytes)),
          median(runs.map((r) => r.requests)),
          signedIn ? median(runs.map((r) => r.apiDoneMs)).toFixed(0) : "-",
          median(runs.map((r) => r.renderMs)).toFixed(0),
          median(runs.map((r) => r.fcpMs)).toFixed(0),
          RUNS,
        ]);
      }
      console.log(table(rows));
      const api: (string | number)[][] = [["route", "bytes", "median ms (5 calls, 1.1 s apart)"]];
      for (const path of ["/api/v1/fleet", "/api/v1/fleet/nodes?limit=100", "/api/v1/nodes"]) {
        const r = await timeApi(hub.url, path);
        api.push([path, r.bytes, r.ms.toFixed(1)]);
      }
      console.log(table(api));
    } finally {
      await hub.proc.kill("SIGTERM");
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await using browser = await launchBrowser();
await measure("empty hub", 0, browser);
if (NODES > 0) await measure(`${NODES} nodes`, NODES, browser);

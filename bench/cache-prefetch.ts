// Hit ratio of a named cache under a Zipf workload at a node that joins, with the hub's prefetch on and off.
//
//   bun bench/cache-prefetch.ts [--keys 10000] [--reads 20000] [--zipf 1.0] [--value-bytes 100] [--seed 1]
//
// Market-data shape: --keys symbols, each a --value-bytes quote, read with Zipf(s) popularity.
// 1. Node A (write-behind, replicate: site) writes every key once, then serves --reads Zipf reads:
//    its top-k (256 keys) goes to the hub as hot keys.
// 2. For each prefetch setting, a fresh node B of the same site joins (cache-aside, replicate: site,
//    `prefetch` entries wanted at hello: the fleet's hottest keys first, then the newest). Once what
//    the hub sent has arrived, B serves --reads Zipf reads; a miss "fetches" the value (the bench
//    has it) and puts it locally, as an application with its own source would. Reported: B's hit ratio over those
//    reads, over the first 1,000 of them, and the Zipf mass of the P most popular keys (the hit ratio
//    a cache holding exactly those keys would reach; prefetch is as good as its hot-key ranking).
import { join } from "node:path";
import { parseArgs } from "node:util";
import { mulberry32 } from "../test/support/prng.ts";
import { type AgentHandle, startAgent, startHub, tempDir } from "../test/support/processes.ts";
import { waitFor } from "../test/support/wait.ts";
import { machineInfo, printMachine, table } from "./_machine.ts";
import { zipfSampler } from "./_zipf.ts";

const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: {
    keys: { type: "string", default: "10000" },
    reads: { type: "string", default: "20000" },
    zipf: { type: "string", default: "1.0" },
    "value-bytes": { type: "string", default: "100" },
    seed: { type: "string", default: "1" },
  },
});
const KEYS = Number(opts.keys);
const READS = Number(opts.reads);
const VALUE = "q".repeat(Number(opts["value-bytes"]));
const rand = mulberry32(Number(opts.seed));
const zipf = zipfSampler(KEYS, Number(opts.zipf), rand);
// Popularity rank → symbol, shuffled so that rank is not key order (nor write order).
const order = Array.from({ length: KEYS }, (_, i) => i);
for (let i = KEYS - 1; i > 0; i--) {
  const j = Math.floor(rand() * (i + 1));
  [order[i], order[j]] = [order[j]!, order[i]!];
}
const symbol = (rank: number) => `SYM${order[rank]}`;

const dir = tempDir("novacron-bench-prefetch-");
const hub = await startHub({ data: join(dir.path, "hub") });
const start = async (id: string, spec: Record<string, unknown>) => {
  const n = await startAgent({
    data: join(dir.path, id),
    nodeId: id,
    hub: hub.wsUrl,
    joinToken: hub.joinToken,
    args: ["--caches", JSON.stringify({ md: spec }), "--label", "site=s1"],
  });
  await waitFor(async () => (await n.status()).connected, { what: `${id} connected` });
  return n;
};
const a = await start("a", { strategy: "write-behind", replicate: "site", hot_report_ms: 200, prefetch: 0 });
const url = (n: AgentHandle, k: string) => `${n.apiUrl}/v1/caches/md/${k}`;

async function parallel(n: number, op: (i: number) => Promise<void>, conc = 16): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: conc }, async () => {
      while (next < n) await op(next++);
    }),
  );
}
await parallel(KEYS, async (i) => {
  await (await fetch(url(a, `SYM${i}`), { method: "PUT", body: VALUE })).arrayBuffer();
});
type HubCache = { keys: number; hot_keys: { key: string }[] };
await waitFor(async () => (await hub.api<HubCache>("/api/v1/caches/md")).body.keys === KEYS, {
  timeoutMs: 120_000,
  what: "every key at the hub",
});
await parallel(READS, async () => {
  await (await fetch(url(a, symbol(zipf.next())))).arrayBuffer();
});
await waitFor(async () => (await hub.api<HubCache>("/api/v1/caches/md")).body.hot_keys.length >= 20, {
  what: "a's hot keys at the hub",
});

const rows: (string | number)[][] = [
  ["prefetch", "held at start", "top-P Zipf mass", "hit ratio (first 1,000)", "hit ratio (all reads)"],
];
for (const prefetch of [0, 100, 1000, KEYS]) {
  const b = await start(`b${prefetch}`, { strategy: "cache-aside", replicate: "site", prefetch });
  type Local = { caches: { md: { entries: number } } };
  const held =
    (await waitFor(
      async () => {
        const n = ((await (await fetch(`${b.apiUrl}/v1/caches`)).json()) as Local).caches.md.entries;
        return n >= Math.min(prefetch, KEYS) ? n + 1 : undefined;
      },
      { timeoutMs: 120_000, what: `b${prefetch} to receive its prefetch` },
    )) - 1;
  // What a cache holding exactly the P most popular keys would reach on this stationary workload.
  let mass = 0;
  for (let r = 0; r < Math.min(prefetch, KEYS); r++) mass += zipf.weight[r]!;
  let hits = 0;
  let firstHits = 0;
  for (let i = 0; i < READS; i++) {
    const k = symbol(zipf.next());
    const r = await fetch(url(b, k));
    await r.arrayBuffer();
    if (r.status === 200) {
      hits++;
      if (i < 1000) firstHits++;
    } else {
      // The application fetches the quote from its own source (not from A: reads at A would count
      // as A's hot keys) and fills the cache.
      await (await fetch(url(b, k), { method: "PUT", body: VALUE })).arrayBuffer();
    }
  }
  rows.push([prefetch, held, mass.toFixed(3), (firstHits / 1000).toFixed(3), (hits / READS).toFixed(3)]);
  await b[Symbol.asyncDispose]();
}
printMachine(machineInfo());
console.log(`${KEYS} keys, Zipf s=${opts.zipf}, ${READS} reads per node, values ${VALUE.length} B`);
console.log(table(rows));
for (const h of [a, hub]) await h[Symbol.asyncDispose]();
dir[Symbol.dispose]();

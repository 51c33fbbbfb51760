// Local cache throughput and hit ratio under a Zipf workload, LRU against LFU in the same run.
//
//   bun bench/cache.ts [--keys 100000] [--requests 300000] [--zipf 1.0] [--cached 0.1] [--value-bytes 100] [--seed 1]
//
// Workload: cache-aside. Each request draws a key from Zipf(s) over --keys keys (a seeded shuffle
// maps popularity ranks to keys), gets it, and on a miss puts a --value-bytes value. The budget holds
// about --cached of all keys (key + value bytes, as the cache accounts them). The cache runs on a
// real AgentStore (SQLite, WAL, synchronous=NORMAL) in a temp dir. A warm-up of --requests requests
// fills the cache first; then --requests more are measured. Reported: requests/s, get/s (all
// gets), put/s (the misses' puts), hit ratio, and the ideal hit ratio of a cache that always held
// the most popular keys that fit (the best any policy can do on a stationary workload).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { LocalCache } from "../agent/cache/index.ts";
import { AgentStore } from "../agent/store/index.ts";
import { systemClock } from "../shared/clock.ts";
import { mulberry32 } from "../test/support/prng.ts";
import { machineInfo, printMachine, table } from "./_machine.ts";
import { zipfSampler } from "./_zipf.ts";

const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: {
    keys: { type: "string", default: "100000" },
    requests: { type: "string", default: "300000" },
    zipf: { type: "string", default: "1.0" },
    cached: { type: "string", default: "0.1" },
    "value-bytes": { type: "string", default: "100" },
    seed: { type: "string", default: "1" },
  },
});
const KEYS = Number(opts.keys);
const REQUESTS = Number(opts.requests);
const S = Number(opts.zipf);
const CACHED = Number(opts.cached);
const VALUE_BYTES = Number(opts["value-bytes"]);
const SEED = Number(opts.seed);

// Ranks → key names through a seeded shuffle, so popularity is not tied to key order.
const shuffle = mulberry32(SEED + 1);
const keyOf = Array.from({ length: KEYS }, (_, i) => `item:${String(i).padStart(6, "0")}`);
for (let i = KEYS - 1; i > 0; i--) {
  const j = Math.floor(shuffle() * (i + 1));
  [keyOf[i], keyOf[j]] = [keyOf[j]!, keyOf[i]!];
}
const entryBytes = keyOf[0]!.length + VALUE_BYTES;
const budget = Math.round(KEYS * CACHED) * entryBytes;
const value = "v".repeat(VALUE_BYTES);

function run(policy: "lru" | "lfu") {
  const dir = mkdtempSync(join(tmpdir(), "novacron-bench-cache-"));
  const store = new AgentStore(dir, { bufferBytes: 16 << 20 });
  const cache = new LocalCache({ db: store.db, clock: systemClock, budgetBytes: budget, policy });
  const zipf = zipfSampler(KEYS, S, mulberry32(SEED));
  try {
    for (let i = 0; i < REQUESTS; i++) {
      const key = keyOf[zipf.next()]!;
      if (cache.get(key) === undefined) cache.put(key, value);
    }
    const before = cache.stats();
    let getNs = 0;
    let putNs = 0;
    let puts = 0;
    const t0 = Bun.nanoseconds();
    for (let i = 0; i < REQUESTS; i++) {
      const key = keyOf[zipf.next()]!;
      const a = Bun.nanoseconds();
      const hit = cache.get(key) !== undefined;
      const b = Bun.nanoseconds();
      getNs += b - a;
      if (!hit) {
        cache.put(key, value);
        putNs += Bun.nanoseconds() - b;
        puts++;
      }
    }
    const totalNs = Bun.nanoseconds() - t0;
    cache.flush();
    const after = cache.stats();
    const hits = after.hits - before.hits;
    const misses = after.misses - before.misses;
    return {
      policy,
      requestsPerSec: REQUESTS / (totalNs / 1e9),
      getsPerSec: REQUESTS / (getNs / 1e9),
      putsPerSec: puts / (putNs / 1e9),
      hitRatio: hits / (hits + misses),
      entries: after.entries,
      bytes: after.bytes,
      evictions: after.evictions - before.evictions,
    };
  } finally {
    cache.stop();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

printMachine(machineInfo());
console.log(
  `workload: Zipf s=${S} over ${KEYS} keys, ${REQUESTS} warm-up + ${REQUESTS} measured requests (get; put on miss), ` +
    `${VALUE_BYTES}-byte values; budget ${budget} bytes ≈ ${Math.round(KEYS * CACHED)} entries of ${entryBytes} B`,
);
const ideal = zipfSampler(KEYS, S, () => 0)
  .weight.slice(0, Math.floor(budget / entryBytes))
  .reduce((a, b) => a + b, 0);
const results = [run("lru"), run("lfu")];
const k = (x: number) => `${(x / 1000).toFixed(0)}k`;
console.log(
  table([
    ["policy", "requests/s", "get/s", "put/s (misses)", "hit ratio", "entries", "bytes", "evictions"],
    ...results.map((r) => [
      r.policy,
      k(r.requestsPerSec),
      k(r.getsPerSec),
      k(r.putsPerSec),
      r.hitRatio.toFixed(3),
      r.entries,
      r.bytes,
      r.evictions,
    ]),
  ]),
);
console.log(`ideal hit ratio (the most popular keys that fit, always cached): ${ideal.toFixed(3)}`);
console.log(`LFU ÷ LRU hit ratio: ${(results[1]!.hitRatio / results[0]!.hitRatio).toFixed(3)}`);

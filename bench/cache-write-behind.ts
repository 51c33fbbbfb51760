// Write-behind after an offline period: N writes made with no hub, then the time until the hub holds each one once.
//
//   bun bench/cache-write-behind.ts [--writes 10000] [--keys 100] [--value-bytes 100] [--concurrency 16]
//
// One agent process declares cache `q` (write-behind, site scope) and starts with a hub URL on a
// free port where nothing listens yet. --writes PUTs over --keys keys are made through its local API
// (acknowledged at once, queued in the outbox). Then a hub process starts on that port; the clock
// runs from its "hub listening" line until GET /api/v1/caches reports every write (polled every
// 20 ms), and the figures show none repeated or out of order. The agent's reconnect back-off adds up
// to a few seconds of that time (its first retry after the hub appears).
import { join } from "node:path";
import { parseArgs } from "node:util";
import { freePort } from "../test/support/ports.ts";
import { startAgent, startHub, tempDir } from "../test/support/processes.ts";
import { waitFor } from "../test/support/wait.ts";
import { machineInfo, printMachine, table } from "./_machine.ts";

const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: {
    writes: { type: "string", default: "10000" },
    keys: { type: "string", default: "100" },
    "value-bytes": { type: "string", default: "100" },
    concurrency: { type: "string", default: "16" },
  },
});
const N = Number(opts.writes);
const KEYS = Number(opts.keys);
const VALUE = "w".repeat(Number(opts["value-bytes"]));
const CONC = Number(opts.concurrency);

const dir = tempDir("novacron-bench-wb-");
const port = freePort();
const agent = await startAgent({
  data: join(dir.path, "a"),
  nodeId: "a",
  hub: `ws://127.0.0.1:${port}`,
  joinToken: "test-join-token",
  args: ["--caches", JSON.stringify({ q: { strategy: "write-behind", replicate: "site" } })],
});
let next = 0;
const t0 = performance.now();
await Promise.all(
  Array.from({ length: CONC }, async () => {
    while (next < N) {
      const i = next++;
      const r = await fetch(`${agent.apiUrl}/v1/caches/q/k${i % KEYS}`, { method: "PUT", body: VALUE });
      if (r.status !== 200) throw new Error(`write ${i}: ${r.status}`);
      await r.arrayBuffer();
    }
  }),
);
const writeS = (performance.now() - t0) / 1000;
const status = await agent.status();
const queue = (status.caches as { queue: { depth: number } }).queue.depth;
const outboxBytes = status.outbox.bytes;

const hub = await startHub({ data: join(dir.path, "hub"), port });
const h0 = performance.now();
type Fig = { name: string; writes: number; repeated: number; out_of_order: number };
const fig = await waitFor(
  async () => {
    const f = (await hub.api<{ caches: Fig[] }>("/api/v1/caches")).body.caches.find((c) => c.name === "q");
    return f && f.writes >= N ? f : undefined;
  },
  { timeoutMs: 300_000, intervalMs: 20, what: "every write at the hub" },
);
const drainS = (performance.now() - h0) / 1000;

printMachine(machineInfo());
console.log(`${N} writes over ${KEYS} keys, ${VALUE.length} B values, ${CONC} in flight, made offline`);
console.log(
  table([
    [
      "offline writes/s",
      "queued",
      "outbox bytes",
      "hub up → all at hub (s)",
      "writes at hub",
      "repeated",
      "out of order",
    ],
    [
      Math.round(N / writeS),
      queue,
      outboxBytes,
      drainS.toFixed(2),
      fig.writes,
      fig.repeated,
      fig.out_of_order,
    ],
  ]),
);
await agent[Symbol.asyncDispose]();
await hub[Symbol.asyncDispose]();
dir[Symbol.dispose]();

// Named caches: gets and puts per second per strategy, through a real agent's local API with a real hub.
//
//   bun bench/cache-strategies.ts [--ops 3000] [--concurrency 16] [--value-bytes 100]
//
// One hub process and one agent process on loopback; the agent declares one cache per strategy
// (write-through and strong are confirmed by the hub's ack). read-through's origin is an HTTP server
// in this process answering at once. For each cache: --ops PUTs of distinct keys (read-through: --ops
// GETs of distinct keys, each a miss fetched from the origin), then --ops GETs of those keys (hits),
// each phase with --concurrency requests in flight. Reported: operations per second of each phase
// (HTTP on loopback included: this is what an application on the host sees).

import { join } from "node:path";
import { parseArgs } from "node:util";
import { startAgent, startHub, tempDir } from "../test/support/processes.ts";
import { waitFor } from "../test/support/wait.ts";
import { machineInfo, printMachine, table } from "./_machine.ts";

const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: {
    ops: { type: "string", default: "3000" },
    concurrency: { type: "string", default: "16" },
    "value-bytes": { type: "string", default: "100" },
  },
});
const OPS = Number(opts.ops);
const CONC = Number(opts.concurrency);
const VALUE = "x".repeat(Number(opts["value-bytes"]));

const origin = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response(VALUE) });
const caches = {
  aside: { strategy: "cache-aside", replicate: "none" },
  through: { strategy: "read-through", origin: `http://127.0.0.1:${origin.port}/`, replicate: "none" },
  wthrough: { strategy: "write-through", replicate: "site" },
  wbehind: { strategy: "write-behind", replicate: "site" },
  strong: { strategy: "write-through", consistency: "strong", replicate: "site" },
};
const dir = tempDir("novacron-bench-cache-");
const hub = await startHub({ data: join(dir.path, "hub") });
const agent = await startAgent({
  data: join(dir.path, "a"),
  nodeId: "a",
  hub: hub.wsUrl,
  joinToken: hub.joinToken,
  args: ["--caches", JSON.stringify(caches)],
});
await waitFor(async () => (await agent.status()).connected, { what: "agent connected" });

async function run(n: number, op: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONC }, async () => {
      while (next < n) await op(next++);
    }),
  );
  return n / ((performance.now() - t0) / 1000);
}

const url = (cache: string, i: number) => `${agent.apiUrl}/v1/caches/${cache}/key-${i}`;
const rows: (string | number)[][] = [
  ["cache", "strategy", "consistency", "put/s (or miss/s)", "get/s (hits)"],
];
for (const [name, spec] of Object.entries(caches)) {
  const fill = await run(OPS, async (i) => {
    const r =
      name === "through"
        ? await fetch(url(name, i))
        : await fetch(url(name, i), { method: "PUT", body: VALUE });
    if (r.status !== 200) throw new Error(`${name} ${i}: ${r.status} ${await r.text()}`);
    await r.arrayBuffer();
  });
  const gets = await run(OPS, async (i) => {
    const r = await fetch(url(name, i));
    if (r.status !== 200) throw new Error(`${name} get ${i}: ${r.status}`);
    await r.arrayBuffer();
  });
  rows.push([
    name,
    spec.strategy,
    (spec as { consistency?: string }).consistency ?? "eventual",
    Math.round(fill),
    Math.round(gets),
  ]);
}
printMachine(machineInfo());
console.log(`ops per phase ${OPS}, concurrency ${CONC}, value ${VALUE.length} B`);
console.log(table(rows));
await agent[Symbol.asyncDispose]();
await hub[Symbol.asyncDispose]();
origin.stop(true);
dir[Symbol.dispose]();

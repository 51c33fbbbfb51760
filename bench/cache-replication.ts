// Replication lag of a named cache on loopback (node A → hub → node B), and the bytes each replicated write costs on the link.
//
//   bun bench/cache-replication.ts [--writes 500] [--value-bytes 100] [--strategy write-behind]
//
// One hub and two agents of the same site, each holding cache `q` (replicate: site). For each of
// --writes writes, one after another: PUT key-i at A, and from the moment A answered, GET key-i at B
// in a tight loop until B serves it. Lag = B's first good answer - A's answer (so it includes one
// loopback HTTP round trip at B, ~0.1-0.3 ms). Reported: p50, p90, p99, max.
// Bytes: the kernel's per-socket TCP payload counters (ss, tcp_info) of A's and B's connections to
// the hub, read before and after a second run of --writes writes made without polling; divided by
// the writes. Heartbeats (every 10 s by default) fall inside that window too and are not removed.
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startAgent, startHub, tempDir } from "../test/support/processes.ts";
import { waitFor } from "../test/support/wait.ts";
import { machineInfo, pct, printMachine, table } from "./_machine.ts";
import { socketBytes } from "./_socket-bytes.ts";

const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: {
    writes: { type: "string", default: "500" },
    "value-bytes": { type: "string", default: "100" },
    strategy: { type: "string", default: "write-behind" },
  },
});
const N = Number(opts.writes);
const VALUE = "v".repeat(Number(opts["value-bytes"]));
const spec = { q: { strategy: opts.strategy, consistency: "causal", replicate: "site" } };

const dir = tempDir("novacron-bench-repl-");
const hub = await startHub({ data: join(dir.path, "hub") });
const start = (id: string) =>
  startAgent({
    data: join(dir.path, id),
    nodeId: id,
    hub: hub.wsUrl,
    joinToken: hub.joinToken,
    args: ["--caches", JSON.stringify(spec), "--label", "site=s1"],
  });
const a = await start("a");
const b = await start("b");
for (const n of [a, b])
  await waitFor(async () => (await n.status()).connected, { what: `${n.nodeId} connected` });

const put = async (key: string) => {
  const r = await fetch(`${a.apiUrl}/v1/caches/q/${key}`, { method: "PUT", body: VALUE });
  if (r.status !== 200) throw new Error(`put ${key}: ${r.status}`);
  await r.arrayBuffer();
};
// Warm-up: connections, JIT.
for (let i = 0; i < 50; i++) await put(`warm-${i}`);
await waitFor(async () => (await fetch(`${b.apiUrl}/v1/caches/q/warm-49`)).status === 200, {
  what: "warm-up",
});

const lags: number[] = [];
for (let i = 0; i < N; i++) {
  await put(`lag-${i}`);
  const t0 = performance.now();
  for (;;) {
    const r = await fetch(`${b.apiUrl}/v1/caches/q/lag-${i}`);
    await r.arrayBuffer();
    if (r.status === 200) break;
  }
  lags.push(performance.now() - t0);
}
lags.sort((x, y) => x - y);

const bytesOf = (pid: number) => {
  const s = socketBytes(pid, hub.port);
  return { sent: s.reduce((n, x) => n + x.sent, 0), received: s.reduce((n, x) => n + x.received, 0) };
};
const a0 = bytesOf(a.proc.pid!);
const b0 = bytesOf(b.proc.pid!);
for (let i = 0; i < N; i++) await put(`bytes-${i}`);
await waitFor(async () => (await fetch(`${b.apiUrl}/v1/caches/q/bytes-${N - 1}`)).status === 200, {
  what: "the last write at b",
});
await Bun.sleep(200);
const a1 = bytesOf(a.proc.pid!);
const b1 = bytesOf(b.proc.pid!);

printMachine(machineInfo());
console.log(`strategy ${opts.strategy}, ${N} writes of a ${VALUE.length} B value, keys ~8 B`);
const ms = (q: number) => pct(lags, q).toFixed(2);
console.log(
  table([
    ["replication lag ms", "n", "p50", "p90", "p99", "max"],
    ["A answered → B serves", lags.length, ms(0.5), ms(0.9), ms(0.99), lags[lags.length - 1]!.toFixed(2)],
  ]),
);
console.log(
  table([
    ["link bytes per write", "A → hub", "hub → A", "hub → B", "B → hub"],
    [
      "TCP payload",
      ((a1.sent - a0.sent) / N).toFixed(0),
      ((a1.received - a0.received) / N).toFixed(0),
      ((b1.received - b0.received) / N).toFixed(0),
      ((b1.sent - b0.sent) / N).toFixed(0),
    ],
  ]),
);
for (const h of [a, b, hub]) await h[Symbol.asyncDispose]();
dir[Symbol.dispose]();

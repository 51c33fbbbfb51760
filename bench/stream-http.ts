// Stream processing over HTTP: the round trip of a one-point POST /v1/ingest to a real agent running the example pipeline.
//
//   bun bench/stream-http.ts [--requests 5000] [--warmup 2000] [--spike-every 100] [--seed 1]
//
// Starts a real agent process (test/support/processes.ts startAgent) standalone, with the documented
// "vibration" pipeline (bench/_example-pipeline.ts, passed as --pipelines) and no offline rules. Then,
// from this process, sequentially, over one keep-alive connection (Bun's fetch), --warmup requests and
// then --requests measured ones: each a JSON body {"points":[{"series":"sensor.vibration","value":v}]}
// without a time (the agent stamps it). A request is timed from fetch() to the response body read
// (Bun.nanoseconds); the agent answers 202 after the point went through the pipeline and any alert was
// written to its outbox. Every --spike-every-th value is a spike the threshold step alerts on; the
// alerts are counted afterwards in the agent's outbox (its SQLite file, opened read-only).
// For the floor of the HTTP path, the same loop runs GET /healthz. In-process figures: bench/stream.ts.
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { decodeCbor } from "../shared/protocol/index.ts";
import { mulberry32 } from "../test/support/prng.ts";
import { startAgent, tempDir } from "../test/support/processes.ts";
import { EXAMPLE } from "./_example-pipeline.ts";
import { latencyCells, machineInfo, printMachine, table } from "./_machine.ts";
import { socketBytes } from "./_socket-bytes.ts";

const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: {
    requests: { type: "string", default: "5000" },
    warmup: { type: "string", default: "2000" },
    "spike-every": { type: "string", default: "100" },
    seed: { type: "string", default: "1" },
  },
});
const N = Number(opts.requests);
const WARMUP = Number(opts.warmup);
const SPIKE_EVERY = Number(opts["spike-every"]);
if (!(Number.isInteger(N) && N >= 100)) throw new Error("--requests must be an integer ≥ 100");
if (!(Number.isInteger(WARMUP) && WARMUP >= 0)) throw new Error("--warmup must be an integer ≥ 0");

const rand = mulberry32(Number(opts.seed));
const noise = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());

printMachine(machineInfo());
using dir = tempDir("novacron-stream-http-");
const data = join(dir.path, "agent");
await using agent = await startAgent({
  data,
  nodeId: "stream-http",
  args: ["--pipelines", JSON.stringify(EXAMPLE.pipelines), "--rules", "[]"],
});

/** Alerts the agent has queued for the hub so far, by severity, read from its outbox. */
function alertsInOutbox(): Map<string, number> {
  const db = new Database(join(data, "agent.db"), { readonly: true });
  try {
    const rows = db
      .query("SELECT b.body FROM outbox o JOIN outbox_body b ON b.id = o.id WHERE o.type = 'event'")
      .all() as { body: Uint8Array }[];
    const by = new Map<string, number>();
    for (const r of rows) {
      const e = decodeCbor(r.body) as { kind?: string; fields?: { severity?: string } };
      if (e.kind !== "alert") continue;
      const sev = e.fields?.severity ?? "none";
      by.set(sev, (by.get(sev) ?? 0) + 1);
    }
    return by;
  } finally {
    db.close();
  }
}

/** Times `count` sequential requests (after --warmup untimed ones); returns the sorted times, all and of spikes. */
async function run(request: (i: number) => Promise<Response>, spikes: boolean) {
  const all = new Float64Array(N);
  const spike: number[] = [];
  for (let i = -WARMUP; i < N; i++) {
    const a = Bun.nanoseconds();
    const res = await request(i);
    await res.arrayBuffer();
    const dt = Bun.nanoseconds() - a;
    if (res.status !== 202 && res.status !== 200) throw new Error(`request ${i}: HTTP ${res.status}`);
    if (i < 0) continue;
    all[i] = dt;
    if (spikes && (i + WARMUP) % SPIKE_EVERY === 0) spike.push(dt);
  }
  all.sort();
  spike.sort((x, y) => x - y);
  return { all, spike };
}

const ingestUrl = `${agent.apiUrl}/v1/ingest`;
const headers = { "content-type": "application/json" };
const ingest = (i: number) => {
  const value = 9.81 * (20 + noise()) + ((i + WARMUP) % SPIKE_EVERY === 0 ? 9.81 * 60 : 0);
  const body = JSON.stringify({ points: [{ series: "sensor.vibration", value }] });
  return fetch(ingestUrl, { method: "POST", headers, body });
};

const healthz = await run(() => fetch(`${agent.apiUrl}/healthz`), false);
const before = alertsInOutbox();
const t0 = performance.now();
const posts = await run(ingest, true);
const wall = (performance.now() - t0) / 1000;
const after = alertsInOutbox();
const alerts = [...after].map(([sev, n]) => `${sev} ${n - (before.get(sev) ?? 0)}`).join(", ");
// Keep-alive check: the client's connections to the agent's API that are still open.
const connections = socketBytes(process.pid, Number(new URL(agent.apiUrl).port)).length;
if (!agent.proc.running) throw new Error("the agent exited during the run");

console.log(
  `\nreal agent process, example "vibration" pipeline; ${N} sequential requests after ${WARMUP} warm-up, one keep-alive connection on loopback`,
);
const header = ["request", "n", "p50 µs", "p99 µs", "p99.9 µs", "max µs"];
const rows: (string | number)[][] = [header];
const line = (what: string, xs: ArrayLike<number>) => rows.push([what, ...latencyCells(xs)]);
line("GET /healthz (HTTP floor)", healthz.all);
line("POST /v1/ingest, one JSON point", posts.all);
line("  of which spikes (alerting)", posts.spike);
console.log(table(rows));
console.log(
  `\n${(N / wall).toFixed(0)} requests/s sequential (warm-up and healthz excluded); client connections open to the agent afterwards: ${connections}`,
);
console.log(
  `alerts written to the agent's outbox while the measured requests ran, by severity: ${alerts} (spikes sent: ${posts.spike.length}; window outputs flushed on the agent's tick can alert too)`,
);

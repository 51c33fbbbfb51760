// The hub's ingest commit path on its two stores: samples/s stored through `Ingest` (its grouped
// transaction with the node rows locked, batches, series and counters written, acks after the commit)
// by W writer processes on one PostgreSQL, against one writer on SQLite.
//
//   bun bench/ingest-commit.ts [--rounds 3] [--nodes 120] [--batches 100] [--ticks 60] [--writers 1,2,3]
//
// Each writer is its own process (as a replica would be) with its own store connection, holding an
// equal share of the nodes (as sessions spread over replicas). It builds its nodes' metrics_batch
// messages first (11 series from bench/_batch-pool.ts, decoded as the gateway hands them over), then,
// on a signal, takes batch r of each of its nodes and commits them as one group, for r = 1..batches.
// The clock runs from the signal until every writer has had its last group acked. SQLite: a fresh file
// (WAL, synchronous=FULL, as the hub sets). PostgreSQL: one private server (test/support/postgres.ts,
// fsync on), a fresh database per run. Settings interleaved round by round. After each run the store
// must hold every batch once and every node's counters must match; exit 1 if not.
//
// What this leaves out: the network, the session layer and frame decoding (bench/ingest.ts measures a
// whole hub over WebSockets), and heartbeats (replicas are not runnable yet). bench/store-ingest.ts measures
// acceptBatch, one batch per transaction; this measures the grouped commit the hub runs.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Ingest } from "../hub/ingest/index.ts";
import { type HubSql, migrate, openPostgres, openSqlite } from "../hub/store/sql/index.ts";
import { createLogger } from "../shared/log.ts";
import { MetricsRegistry } from "../shared/metrics.ts";
import { decodeFrame, encodeFrame, envelope, type Message } from "../shared/protocol/index.ts";
import { startPostgres } from "../test/support/postgres.ts";
import { batchPool, SERIES, TICK_MS } from "./_batch-pool.ts";
import { machineInfo, pct, printMachine, table } from "./_machine.ts";

const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: {
    rounds: { type: "string", default: "3" },
    nodes: { type: "string", default: "120" },
    batches: { type: "string", default: "100" },
    ticks: { type: "string", default: "60" },
    writers: { type: "string", default: "1,2,3" },
    // A writer process: its store, its nodes (comma-separated) and the run's shape.
    child: { type: "string" },
    ids: { type: "string" },
  },
});
const BATCHES = Number(opts.batches);
const TICKS = Number(opts.ticks);
const T0 = 1_800_000_000_000;

const storeOf = (url: string): HubSql => (url.startsWith("postgres") ? openPostgres(url) : openSqlite(url));

if (opts.child) {
  await writer(opts.child, (opts.ids ?? "").split(","));
  process.exit(0);
}

// One writer: builds its messages, says ready, waits for the signal, stores them, says what it took.
async function writer(url: string, ids: string[]): Promise<void> {
  const sql = storeOf(url);
  const { pool } = batchPool(undefined, TICKS);
  const messages = ids.map((node, n) =>
    Array.from({ length: BATCHES }, (_, r): Message => {
      const b = pool[(n + r) % pool.length]!;
      const start = T0 + r * TICKS * TICK_MS;
      const data = new Uint8Array(b.data);
      const body = { start, interval: TICK_MS, ticks: TICKS, samples: b.samples, data, z: b.z };
      return decodeFrame(encodeFrame(envelope("metrics_batch", node, body, { q: r + 1, ts: start })));
    }),
  );
  let acked = 0;
  const ingest = new Ingest({
    sql,
    log: createLogger("bench", { write: () => {} }),
    metrics: new MetricsRegistry(),
    acks: (_node, upto) => {
      if (upto === BATCHES) acked++;
    },
  });
  for (const node of ids) await ingest.open(node);
  const commits: number[] = [];
  process.stdout.write("ready\n");
  for await (const _ of console) break;
  const started = performance.now();
  for (let r = 0; r < BATCHES; r++) {
    for (const [n, node] of ids.entries()) ingest.receive(node, messages[n]![r]!);
    const t = performance.now();
    await ingest.flush();
    commits.push(performance.now() - t);
  }
  const ms = performance.now() - started;
  await sql.close();
  process.stdout.write(`${JSON.stringify({ ms, acked, commits })}\n`);
}

interface Run {
  samplesPerSecond: number;
  commitP50: number;
  commitP99: number;
}

async function runOnce(url: string, writers: number, nodes: number): Promise<Run> {
  const sql = storeOf(url);
  await migrate(sql);
  const ids = Array.from({ length: nodes }, (_, i) => `node-${String(i).padStart(4, "0")}`);
  await sql.tx(async (tx) => {
    for (const id of ids)
      await tx.run("INSERT INTO nodes (id, level, first_seen, last_seen) VALUES (?, 1, ?, ?)", [id, T0, T0]);
  });
  const children = Array.from({ length: writers }, (_, w) =>
    Bun.spawn(
      [
        process.execPath,
        import.meta.path,
        ...["--child", url, "--ids", ids.filter((_, i) => i % writers === w).join(",")],
        ...["--batches", String(BATCHES), "--ticks", String(TICKS)],
      ],
      { stdin: "pipe", stdout: "pipe", stderr: "inherit" },
    ),
  );
  const lines = children.map((c) => c.stdout.pipeThrough(new TextDecoderStream()).getReader());
  const next = async (i: number) => {
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await lines[i]!.read();
      if (done) throw new Error(`writer ${i} ended early`);
      text += value;
    }
    return text.trim();
  };
  for (let i = 0; i < writers; i++) if ((await next(i)) !== "ready") throw new Error("writer not ready");
  const started = performance.now();
  for (const c of children) {
    c.stdin.write("go\n");
    c.stdin.flush();
  }
  const results = (await Promise.all(children.map((_, i) => next(i)))).map(
    (l) => JSON.parse(l) as { ms: number; acked: number; commits: number[] },
  );
  const ms = performance.now() - started;
  await Promise.all(children.map((c) => c.exited));
  // Everything stored once, every node's counters right, every node acked to its last batch.
  const stored = await sql.get<{ n: number; s: number }>(
    "SELECT count(*) AS n, sum(samples) AS s FROM batches",
  );
  const perNode = await sql.all<{ last_seq: number; batches: number; samples: number }>(
    "SELECT last_seq, batches, samples FROM nodes",
  );
  await sql.close();
  const samples = nodes * BATCHES * TICKS * SERIES;
  const acked = results.reduce((a, r) => a + r.acked, 0);
  if (
    Number(stored?.n) !== nodes * BATCHES ||
    Number(stored?.s) !== samples ||
    acked !== nodes ||
    perNode.some(
      (n) => n.last_seq !== BATCHES || n.batches !== BATCHES || n.samples !== BATCHES * TICKS * SERIES,
    )
  ) {
    console.error("verification failed", { stored, acked, expected: { batches: nodes * BATCHES, samples } });
    process.exit(1);
  }
  const commits = results.flatMap((r) => r.commits).sort((a, b) => a - b);
  return {
    samplesPerSecond: samples / (ms / 1000),
    commitP50: pct(commits, 0.5),
    commitP99: pct(commits, 0.99),
  };
}

const ROUNDS = Number(opts.rounds);
const NODES = Number(opts.nodes);
const WRITERS = opts.writers.split(",").map(Number);
printMachine(machineInfo());
console.log(
  `${NODES} nodes, ${BATCHES} batches each of ${TICKS} ticks x ${SERIES} series (${(NODES * BATCHES * TICKS * SERIES).toLocaleString()} samples a run), ${ROUNDS} rounds`,
);
await using pg = await startPostgres({ fsync: true });
const dir = mkdtempSync(join(tmpdir(), "novacron-bench-ingest-commit-"));
const settings = [
  { name: "sqlite, 1 writer", writers: 1, url: () => Promise.resolve(join(dir, `hub-${Math.random()}.db`)) },
  ...WRITERS.map((w) => ({
    name: `postgres, ${w} writer${w > 1 ? "s" : ""}`,
    writers: w,
    url: () => pg.newDatabase(),
  })),
];
const runs = new Map<string, Run[]>(settings.map((s) => [s.name, []]));
try {
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? settings : [...settings].reverse();
    for (const s of order) {
      const r = await runOnce(await s.url(), s.writers, NODES);
      runs.get(s.name)!.push(r);
      console.log(
        `[round ${round + 1}] ${s.name}: ${Math.round(r.samplesPerSecond).toLocaleString()} samples/s, commit p50 ${r.commitP50.toFixed(1)} ms p99 ${r.commitP99.toFixed(1)} ms`,
      );
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const base = median(runs.get(settings[0]!.name)!.map((r) => r.samplesPerSecond));
console.log(
  table([
    ["store", "samples/s (median)", "runs", "÷ sqlite", "commit p50 ms", "commit p99 ms"],
    ...settings.map((s) => {
      const rs = runs.get(s.name)!;
      const m = median(rs.map((r) => r.samplesPerSecond));
      return [
        s.name,
        Math.round(m).toLocaleString(),
        rs.map((r) => `${(r.samplesPerSecond / 1e6).toFixed(2)}M`).join(" "),
        (m / base).toFixed(2),
        median(rs.map((r) => r.commitP50)).toFixed(1),
        median(rs.map((r) => r.commitP99)).toFixed(1),
      ];
    }),
  ]),
);

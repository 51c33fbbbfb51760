// The exactly-once ingest transaction (acceptBatch) on PostgreSQL with 1, 2 and 3 writers, against SQLite.
//
//   bun bench/store-ingest.ts [--nodes 1000] [--rounds 3] [--seconds 10] [--writers 1,2,3] [--concurrency 10]
//                             [--shards 64] [--recording bench/out/wire-recording.json] [--fsync on|off]
//
// Measures the store's transaction alone, not the hub: `acceptBatch` (hub/store/sql/ingest-tx.ts) locks
// the node's row, checks the sequence, stores the batch row and advances last_seq, one batch per
// transaction. The hub on SQLite groups many batches in one transaction, and the hub ported to HubSql is
// not built yet, so these figures bound what replicas on PostgreSQL could ingest, not what they do.
//
// Batches are the agent's: the default batch_interval (20 s) of 1 s ticks × 11 host series from the
// recording bench/wire.ts makes, encoded with encodeMetrics (a pool of 16, so the blobs differ). N nodes
// each send seq 1, 2, 3, ... in order (the next one only after the last was answered). Settings:
//   - sqlite: one store from openSqlite on a fresh file (WAL, synchronous=FULL, as the hub sets), one
//     caller at a time (the one connection takes them one by one anyway);
//   - postgres 1 at a time: one writer, one transaction in flight, the same shape as sqlite's;
//   - postgres W: W writers, each its own HubSql with its own pool (as W replica processes would have,
//     here in one process), each sending for the nodes whose shard (shardOf(node, --shards)) it holds,
//     --concurrency transactions in flight per writer (the pool's size);
//   - postgres W contended: every writer sends every batch of every node; all but one are refused as
//     duplicates by the row lock and the sequence check.
// One private PostgreSQL (test/support/postgres.ts, fsync on) and a fresh database per run; settings
// interleaved round by round, the order reversed every other round. After each run every node is
// checked: its stored seqs are exactly 1..last_seq, each once, with the bytes and samples sent, last_seq
// is the highest seq any writer had answered, and the counters match the verdicts. Exit 1 if not.
import { closeSync, fdatasyncSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { agentFields } from "../agent/config/index.ts";
import {
  acceptBatch,
  type BatchRow,
  type HubSql,
  migrate,
  openPostgres,
  openSqlite,
  shardOf,
} from "../hub/store/sql/index.ts";
import { parseDuration } from "../shared/config/index.ts";
import { startPostgres } from "../test/support/postgres.ts";
import { batchPool, type EncodedBatch, POOL, TICK_MS } from "./_batch-pool.ts";
import { loadRecording } from "./_host-recording.ts";
import { machineInfo, pct, printMachine, table } from "./_machine.ts";
import { CLK_TCK } from "./_proc-stats.ts";
import { allProcessTicks, machineCpu } from "./_system-cpu.ts";

const ROOT = resolve(import.meta.dir, "..");
const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: {
    nodes: { type: "string", default: "1000" },
    rounds: { type: "string", default: "3" },
    seconds: { type: "string", default: "10" },
    writers: { type: "string", default: "1,2,3" },
    concurrency: { type: "string", default: "10" },
    shards: { type: "string", default: "64" },
    recording: { type: "string", default: "bench/out/wire-recording.json" },
    fsync: { type: "string", default: "on" },
  },
});
const int = (name: keyof typeof opts, lo: number, hi: number): number => {
  const n = Number(opts[name]);
  if (!Number.isInteger(n) || n < lo || n > hi)
    throw new Error(`--${name} must be an integer in ${lo}..${hi}, got ${opts[name]}`);
  return n;
};
const NODES = int("nodes", 1, 100_000);
const ROUNDS = int("rounds", 1, 20);
const CONCURRENCY = int("concurrency", 1, 30);
const SHARDS = int("shards", 1, 4096);
const SECONDS = Number(opts.seconds);
if (!(SECONDS > 0 && SECONDS <= 120)) throw new Error(`--seconds must be in (0, 120], got ${opts.seconds}`);
if (opts.fsync !== "on" && opts.fsync !== "off") throw new Error("--fsync takes on or off");
const WRITERS = opts.writers!.split(",").map((x) => {
  const n = Number(x);
  if (!Number.isInteger(n) || n < 1 || n > 3) throw new Error(`--writers takes 1, 2 or 3, got ${x}`);
  return n;
});

const BATCH_MS = parseDuration(String(agentFields.find((f) => f.key === "batch_interval")?.default))!;
const TICKS = BATCH_MS / TICK_MS;
const recPath = resolve(ROOT, opts.recording!);
const rec = loadRecording(recPath);
if (!rec)
  throw new Error(`no host recording at ${recPath}: run bench/wire.ts once, or pass --recording PATH`);
const { pool } = batchPool(rec, TICKS);
const T0 = Date.UTC(2026, 0, 1);

/** Batch `seq` of node number `i`: the same bytes whoever sends it, so a check can recompute them. */
const blobOf = (i: number, seq: number): EncodedBatch => pool[(i + seq) % POOL]!;
function rowOf(i: number, seq: number): BatchRow {
  const b = blobOf(i, seq);
  const start = T0 + (seq - 1) * BATCH_MS;
  return {
    start,
    end: start + (TICKS - 1) * TICK_MS,
    interval: TICK_MS,
    ticks: TICKS,
    samples: b.samples,
    z: b.z,
    data: b.data,
  };
}

interface Setting {
  name: string;
  backend: "sqlite" | "postgres";
  writers: number;
  contended: boolean;
  /** Transactions in flight per writer. */
  inFlight: number;
}
const settings: Setting[] = [
  // One connection: a second caller would only wait for the first (and the fsync blocks the thread).
  { name: "sqlite, 1 writer", backend: "sqlite", writers: 1, contended: false, inFlight: 1 },
  // The same one-at-a-time shape on PostgreSQL: what a transaction costs there, like for like.
  { name: "postgres, 1 writer, 1 at a time", backend: "postgres", writers: 1, contended: false, inFlight: 1 },
  ...WRITERS.map((w) => ({
    name: `postgres, ${w} writer${w > 1 ? "s" : ""}`,
    backend: "postgres" as const,
    writers: w,
    contended: false,
    inFlight: CONCURRENCY,
  })),
  ...WRITERS.filter((w) => w > 1).map((w) => ({
    name: `postgres, ${w} writers, contended`,
    backend: "postgres" as const,
    writers: w,
    contended: true,
    inFlight: CONCURRENCY,
  })),
];

const nodeIds = Array.from({ length: NODES }, (_, i) => `node-${String(i).padStart(5, "0")}`);

/** What the writers were told, per node: the checks compare the store with it. */
interface Tally {
  accepted: Int32Array;
  duplicates: Int32Array;
  gaps: Int32Array;
  /** The highest seq any writer had an answer for. */
  answered: Int32Array;
  /** Every transaction's time, µs. */
  times: number[];
}

/**
 * One writer: `concurrency` transactions in flight over its nodes, each node's batches in order
 * (a node is handed to one transaction at a time, then queued again), until `deadline`.
 */
async function drive(sql: HubSql, mine: number[], concurrency: number, deadline: number, t: Tally) {
  const next = new Map(mine.map((i) => [i, 1]));
  const ready = [...mine];
  const worker = async () => {
    while (performance.now() < deadline) {
      const i = ready.shift();
      if (i === undefined) return;
      const seq = next.get(i)!;
      const began = performance.now();
      const verdict = await acceptBatch(sql, nodeIds[i]!, seq, rowOf(i, seq));
      t.times.push((performance.now() - began) * 1000);
      if (verdict === "accepted") t.accepted[i]!++;
      else if (verdict === "duplicate") t.duplicates[i]!++;
      else t.gaps[i]!++;
      // A gap would be a bug (every seq follows one that was answered): the same seq is sent again.
      if (verdict !== "gap") {
        if (seq > t.answered[i]!) t.answered[i] = seq;
        next.set(i, seq + 1);
      }
      ready.push(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, mine.length) }, worker));
}

interface NodeRow {
  id: string;
  last_seq: number;
  batches: number;
  duplicates: number;
  gaps: number;
  samples: number;
}
interface StoredRow {
  node: string;
  n: number;
  lo: number;
  hi: number;
  bytes: number;
}

/** Every way the store can disagree with what the writers were answered; empty when it agrees. */
async function check(sql: HubSql, t: Tally): Promise<string[]> {
  const nodes = new Map(
    (await sql.all<NodeRow>("SELECT id, last_seq, batches, duplicates, gaps, samples FROM nodes")).map(
      (r) => [r.id, r],
    ),
  );
  const stored = new Map(
    (
      await sql.all<StoredRow>(
        "SELECT node, count(*) AS n, min(seq) AS lo, max(seq) AS hi, sum(length(data)) AS bytes FROM batches GROUP BY node",
      )
    ).map((r) => [r.node, r]),
  );
  const bad: string[] = [];
  for (let i = 0; i < NODES; i++) {
    const id = nodeIds[i]!;
    const node = nodes.get(id);
    if (!node) {
      bad.push(`${id}: no node row`);
      continue;
    }
    const s = stored.get(id) ?? { n: 0, lo: 0, hi: 0, bytes: 0 };
    let bytes = 0;
    let samples = 0;
    for (let seq = 1; seq <= node.last_seq; seq++) {
      bytes += blobOf(i, seq).data.length;
      samples += blobOf(i, seq).samples;
    }
    const want: [string, number, number][] = [
      // With (node, seq) the primary key, count = max = last_seq and min = 1 mean 1..last_seq, each once.
      ["stored rows", Number(s.n), node.last_seq],
      ["lowest seq", Number(s.lo), node.last_seq > 0 ? 1 : 0],
      ["highest seq", Number(s.hi), node.last_seq],
      ["last_seq against the highest seq answered", node.last_seq, t.answered[i]!],
      ["stored rows against accepted verdicts", Number(s.n), t.accepted[i]!],
      ["batches counter", node.batches, node.last_seq],
      ["duplicates counter against duplicate verdicts", node.duplicates, t.duplicates[i]!],
      ["gaps", node.gaps + t.gaps[i]!, 0],
      ["stored bytes", Number(s.bytes), bytes],
      ["samples counter", node.samples, samples],
    ];
    for (const [what, got, expected] of want)
      if (got !== expected) bad.push(`${id}: ${what} is ${got}, expected ${expected}`);
  }
  return bad;
}

interface Result {
  batchesPerS: number;
  samplesPerS: number;
  refusedPerS: number;
  p50: number;
  p99: number;
  /** The whole machine's busy share during the run (100 = every CPU). */
  busyPct: number;
}

printMachine(machineInfo());
const cpuBefore = machineCpu();
const benchStart = performance.now();
await using pg = await startPostgres({ fsync: opts.fsync === "on" });
// CPU seconds of every other process, by name, sampled each second so that processes that came and
// went during the bench are counted (one that lived less than a second is missed).
const otherCpu = new Map<string, number>();
let lastTicks = allProcessTicks();
const sampler = setInterval(() => {
  const now = allProcessTicks();
  const ours = new Set([process.pid, ...ourPostgres(pg.dir, now)]);
  for (const [pid, a] of now) {
    const d = a.ticks - (lastTicks.get(pid)?.ticks ?? 0);
    if (!ours.has(pid) && d > 0) otherCpu.set(a.name, (otherCpu.get(a.name) ?? 0) + d / CLK_TCK);
  }
  lastTicks = now;
}, 1000);
const pgVersion = await (async () => {
  const sql = openPostgres(pg.url, { max: 1 });
  try {
    return (await sql.get<{ v: string }>("SELECT current_setting('server_version') AS v"))?.v ?? "unknown";
  } finally {
    await sql.close();
  }
})();
console.log(
  `postgres ${pgVersion}: ${pg.url} (fsync ${opts.fsync}); sqlite: a fresh file per run in ${tmpdir()} (WAL, synchronous=FULL)`,
);
console.log(
  `${NODES} nodes; a batch is ${TICKS} ticks × 11 series = ${pool[0]!.samples} samples, ` +
    `${Math.min(...pool.map((b) => b.data.length))}-${Math.max(...pool.map((b) => b.data.length))} B ` +
    `(zstd ${pool.filter((b) => b.z).length}/${POOL}); ${ROUNDS} rounds of ${SECONDS} s per setting, interleaved; ` +
    `postgres: ${CONCURRENCY} in flight per writer (pool of ${CONCURRENCY}) unless "1 at a time", ${SHARDS} shards; sqlite: 1 in flight`,
);
console.log(
  "This is the store's transaction alone, one batch per transaction, not the hub: the hub on SQLite groups\n" +
    "many batches in one transaction and the hub ported to HubSql is not built yet. The figures bound what\n" +
    "replicas on PostgreSQL could ingest, not what they do.\n",
);

// What one flush costs on this disk: both stores wait for one per commit, so it bounds one-at-a-time
// rates. In place (a reused WAL: SQLite's after a checkpoint, PostgreSQL's preallocated segments) and
// appended (the file grows, so the file system's journal is flushed too).
for (const mode of ["in place", "appended"] as const) {
  const dir = mkdtempSync(join(tmpdir(), "novacron-store-ingest-"));
  const fd = openSync(join(dir, "probe"), "w");
  const page = new Uint8Array(4096).fill(7);
  if (mode === "in place") {
    for (let i = 0; i < 256; i++) writeSync(fd, page);
    fdatasyncSync(fd);
  }
  const times: number[] = [];
  for (let i = 0; i < 200; i++) {
    if (mode === "in place") writeSync(fd, page, 0, page.length, (i % 256) * page.length);
    else writeSync(fd, page);
    const t = performance.now();
    fdatasyncSync(fd);
    times.push((performance.now() - t) * 1000);
  }
  closeSync(fd);
  rmSync(dir, { recursive: true, force: true });
  times.sort((x, y) => x - y);
  console.log(
    `fdatasync of 4 KB written ${mode} in ${tmpdir()}, 200 times: p50 ${pct(times, 0.5).toFixed(0)} µs, p99 ${pct(times, 0.99).toFixed(0)} µs`,
  );
}
console.log();

let runSerial = 0;
/** One run of one setting on a fresh database: the measured figures, and what the check found. */
async function runOnce(s: Setting): Promise<Result & { bad: string[] }> {
  const serial = ++runSerial;
  let dir: string | undefined;
  let admin: HubSql;
  const writers: HubSql[] = [];
  if (s.backend === "sqlite") {
    dir = mkdtempSync(join(tmpdir(), "novacron-store-ingest-"));
    admin = openSqlite(join(dir, "hub.db"));
    writers.push(admin);
  } else {
    const url = await pg.newDatabase(`ingest_${serial}`);
    admin = openPostgres(url, { max: 1 });
    for (let w = 0; w < s.writers; w++) writers.push(openPostgres(url, { max: CONCURRENCY }));
  }
  try {
    await migrate(admin);
    await admin.tx(async (tx) => {
      for (const id of nodeIds)
        await tx.run("INSERT INTO nodes (id, first_seen, last_seen) VALUES (?, ?, ?)", [id, T0, T0]);
    });
    // Connections opened (and the pool filled) before the clock starts.
    await Promise.all(
      writers.flatMap((w) => Array.from({ length: CONCURRENCY }, () => w.get("SELECT 1 AS one"))),
    );
    const t: Tally = {
      accepted: new Int32Array(NODES),
      duplicates: new Int32Array(NODES),
      gaps: new Int32Array(NODES),
      answered: new Int32Array(NODES),
      times: [],
    };
    const all = nodeIds.map((_, i) => i);
    const shares = writers.map((_, w) =>
      s.contended ? all : all.filter((i) => shardOf(nodeIds[i]!, SHARDS) % writers.length === w),
    );
    const cpu0 = machineCpu();
    const began = performance.now();
    const deadline = began + SECONDS * 1000;
    await Promise.all(writers.map((w, k) => drive(w, shares[k]!, s.inFlight, deadline, t)));
    const elapsed = (performance.now() - began) / 1000;
    const cpu1 = machineCpu();
    const bad = await check(admin, t);
    const sum = (a: Int32Array) => a.reduce((x, y) => x + y, 0);
    const accepted = sum(t.accepted);
    const times = t.times.sort((a, b) => a - b);
    return {
      batchesPerS: accepted / elapsed,
      samplesPerS: (accepted * pool[0]!.samples) / elapsed,
      refusedPerS: sum(t.duplicates) / elapsed,
      p50: pct(times, 0.5) / 1000,
      p99: pct(times, 0.99) / 1000,
      busyPct: ((cpu1.busy - cpu0.busy) / (cpu1.total - cpu0.total)) * 100,
      bad,
    };
  } finally {
    for (const w of writers) if (w !== admin) await w.close();
    await admin.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

const results = new Map<string, Result[]>();
const failures: string[] = [];
const rows: (string | number)[][] = [
  ["round", "setting", "batches/s", "samples/s", "refused dup/s", "tx p50 ms", "tx p99 ms", "machine busy %"],
];
for (let round = 1; round <= ROUNDS; round++) {
  const order = round % 2 === 1 ? settings : [...settings].reverse();
  for (const s of order) {
    const r = await runOnce(s);
    if (r.bad.length > 0)
      failures.push(`round ${round}, ${s.name}: ${r.bad.length} problems; ${r.bad.slice(0, 5).join("; ")}`);
    results.set(s.name, [...(results.get(s.name) ?? []), r]);
    rows.push([
      round,
      s.name,
      r.batchesPerS.toFixed(0),
      r.samplesPerS.toFixed(0),
      r.refusedPerS.toFixed(0),
      r.p50.toFixed(2),
      r.p99.toFixed(2),
      r.busyPct.toFixed(0),
    ]);
    console.error(`round ${round}: ${s.name} done (${r.batchesPerS.toFixed(0)} batches/s)`);
  }
}
console.log(table(rows));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const sqlite = results.get(settings[0]!.name)!;
const summary: (string | number)[][] = [
  [
    `median of ${ROUNDS}`,
    "batches/s",
    "samples/s",
    "refused dup/s",
    "tx p50 ms",
    "tx p99 ms",
    "÷ sqlite (per round)",
  ],
];
for (const s of settings) {
  const rs = results.get(s.name)!;
  const med = (k: keyof Result) => median(rs.map((r) => r[k]));
  // The ratio within each round (the same minutes of a noisy machine), then the median of those.
  const ratio = median(rs.map((r, i) => r.batchesPerS / sqlite[i]!.batchesPerS));
  summary.push([
    s.name,
    med("batchesPerS").toFixed(0),
    med("samplesPerS").toFixed(0),
    med("refusedPerS").toFixed(0),
    med("p50").toFixed(2),
    med("p99").toFixed(2),
    `${ratio.toFixed(2)}×`,
  ]);
}
console.log(`\n${table(summary)}`);

// Who else used the machine while this ran: the figures are only as quiet as it was.
const seconds = (performance.now() - benchStart) / 1000;
const cpuAfter = machineCpu();
const busy = (cpuAfter.busy - cpuBefore.busy) / (cpuAfter.total - cpuBefore.total);
clearInterval(sampler);
const others = [...otherCpu]
  .map(([name, s]) => ({ name, pct: (s / seconds) * 100 }))
  .filter((o) => o.pct >= 1)
  .sort((a, b) => b.pct - a.pct)
  .map((o) => `${o.name} ${o.pct.toFixed(0)}%`);
console.log(
  `\nmachine busy ${(busy * 100).toFixed(0)}% over ${seconds.toFixed(0)} s (100% = every CPU); ` +
    `other processes (by name, sampled each second) above 1% of a CPU: ${others.join(", ") || "none"}`,
);

if (failures.length > 0) {
  console.error(`\nFAILED: the store disagrees with what the writers were answered:\n${failures.join("\n")}`);
  process.exit(1);
}
console.log(
  "checked after every run: each node's stored seqs are 1..last_seq, each once, with the bytes sent; counters match the verdicts",
);

/** Our server's postmaster and its backends (other PostgreSQL servers on the machine are not ours). */
function ourPostgres(dir: string, procs: Map<number, unknown>): number[] {
  let pid: number;
  try {
    pid = Number(readFileSync(join(dir, "data", "postmaster.pid"), "utf8").split("\n")[0]);
  } catch {
    return [];
  }
  const out = [pid];
  for (const p of procs.keys()) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid) out.push(p);
    } catch {}
  }
  return out;
}

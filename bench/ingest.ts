// Hub ingest benchmark: samples per second stored durably, with N simulated agents over loopback WebSockets.
//
//   bun bench/ingest.ts [--agents 10,100,1000] [--ticks-per-batch 60] [--window 64] [--samples 9504000]
//                       [--heartbeat-ms 5000] [--timeout-s 300] [--out bench/out/ingest.json] [--profile-dir DIR]
//                       [--store sqlite|postgres] [--replicas 1,2,3]
//
// Starts a real hub process (test/support/processes.ts startHub) on a temp dir on disk, then, in this
// process, N agents (bench/_sim-agent.ts) that each: open ws://127.0.0.1:PORT/v1/agent, say hello with the
// join token, wait for welcome, then stream metrics_batch messages q = 1, 2, 3, ... (base = lowest unacked)
// with at most --window unacked, advancing on the hub's cumulative acks, exactly as shared/link/link.ts
// does; plus a live heartbeat every --heartbeat-ms whose ack round trip is recorded. Batches are
// encodeMetrics() of --ticks-per-batch ticks × 11 series from the host recording of bench/wire.ts
// (bench/out/wire-recording.json), pre-encoded before the clock starts (an agent encodes its own). The
// clock runs from the first byte sent to the last ack received; the hub acks only after its commit
// (SQLite synchronous=FULL; with --store postgres a private PostgreSQL started here with fsync on, a new
// database per run), so acked = durable. Afterwards every node is read back through GET /api/v1/nodes/{id}.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { encodeCbor } from "../shared/protocol/index.ts";
import { type Postgres, startPostgres } from "../test/support/postgres.ts";
import { type HubHandle, startHub } from "../test/support/processes.ts";
import type { NodeJson } from "../test/support/telemetry.ts";
import { batchPool, type EncodedBatch, SERIES, TICK_MS } from "./_batch-pool.ts";
import { loadRecording } from "./_host-recording.ts";
import { machineInfo, pct, printMachine, table } from "./_machine.ts";
import { CLK_TCK, cpuTicksOf, memoryOf } from "./_proc-stats.ts";
import { SimAgent } from "./_sim-agent.ts";
import { allProcessTicks, machineCpu, topOthers } from "./_system-cpu.ts";

const ROOT = resolve(import.meta.dir, "..");
const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: {
    agents: { type: "string", default: "10,100,1000" },
    "ticks-per-batch": { type: "string", default: "60" },
    window: { type: "string", default: "64" },
    samples: { type: "string", default: "9504000" },
    "heartbeat-ms": { type: "string", default: "5000" },
    "timeout-s": { type: "string", default: "300" },
    recording: { type: "string", default: "bench/out/wire-recording.json" },
    out: { type: "string", default: "bench/out/ingest.json" },
    "profile-dir": { type: "string" },
    store: { type: "string", default: "sqlite" },
    replicas: { type: "string", default: "1" },
  },
});
if (opts.store !== "sqlite" && opts.store !== "postgres") throw new Error("--store is sqlite or postgres");
// One server for every run, started on first use, stopped when the process exits.
let pgServer: Promise<Postgres> | undefined;
const postgresUrl = async () => {
  pgServer ??= startPostgres({ fsync: true });
  return (await pgServer).newDatabase();
};
const intList = (s: string, what: string) =>
  s.split(",").map((x) => {
    const n = Number(x);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${what} takes positive integers, got ${x}`);
    return n;
  });
const AGENT_COUNTS = intList(opts.agents, "agents");
// Several hub processes on one PostgreSQL (hub replicas), agents spread over them round-robin.
const REPLICA_COUNTS = intList(opts.replicas, "replicas");
if (REPLICA_COUNTS.some((n) => n > 1) && opts.store !== "postgres")
  throw new Error("--replicas above 1 needs --store postgres (replicas share one PostgreSQL)");
const TICKS_PER_BATCH = intList(opts["ticks-per-batch"], "ticks-per-batch");
const WINDOW = Number(opts.window);
const TOTAL_SAMPLES = Number(opts.samples);
const HEARTBEAT_MS = Number(opts["heartbeat-ms"]);
const TIMEOUT_MS = Number(opts["timeout-s"]) * 1000;
if (AGENT_COUNTS.some((n) => n > 5000)) throw new Error("--agents is capped at 5000");
if (!(WINDOW >= 1 && WINDOW <= 1024)) throw new Error("--window must be in 1..1024");
if (!(TOTAL_SAMPLES >= 1000 && TOTAL_SAMPLES <= 500_000_000))
  throw new Error("--samples must be in 1e3..5e8");
if (!(TIMEOUT_MS > 0 && TIMEOUT_MS <= 1_800_000)) throw new Error("--timeout-s must be in 1..1800");

const TARGET_SAMPLES_PER_S = 1_000_000;
const log = (msg: string) => console.error(`[ingest ${new Date().toISOString().slice(11, 19)}] ${msg}`);

function fileSize(path: string): number {
  return existsSync(path) ? statSync(path).size : 0;
}

const dbBytes = (dir: string) =>
  fileSize(join(dir, "hub.db")) + fileSize(join(dir, "hub.db-wal")) + fileSize(join(dir, "hub.db-shm"));

interface RunResult {
  store: string;
  replicas: number;
  agents: number;
  ticks_per_batch: number;
  samples_per_batch: number;
  window: number;
  batches_per_agent: number;
  samples_per_agent: number;
  total_samples: number;
  total_batches: number;
  wire_bytes: number;
  connect_s: number;
  elapsed_s: number;
  samples_per_s: number;
  batches_per_s: number;
  acks_per_s: number;
  commits: number;
  commits_per_s: number;
  hub_cpu_pct: number;
  generator_cpu_pct: number;
  machine_busy_pct_of_all_cores: number;
  other_cpu_pct: number;
  irq_softirq_cpu_pct: number;
  iowait_pct: number;
  steal_pct: number;
  top_other_processes: { pid: number; name: string; cpu_pct: number }[];
  hub_rss_mib: { start: number; mean: number; peak: number };
  generator_rss_mib_peak: number;
  db_bytes: { before: number; live_with_wal: number; after_close: number; per_sample: number };
  heartbeat_rtt_ms: { n: number; p50: number; p99: number; max: number };
  verified: { ok: boolean; mismatches: string[] };
  target_ratio: number;
  error?: string;
}

async function runOnce(
  agentsN: number,
  ticksPerBatch: number,
  pool: EncodedBatch[],
  replicasN = 1,
): Promise<RunResult> {
  const perAgentTicks = Math.max(
    ticksPerBatch,
    Math.round(TOTAL_SAMPLES / SERIES / agentsN / ticksPerBatch) * ticksPerBatch,
  );
  const batchesPerAgent = perAgentTicks / ticksPerBatch;
  const samplesPerBatch = ticksPerBatch * SERIES;
  const dir = mkdtempSync(join(tmpdir(), "novacron-ingest-"));
  let hub: HubHandle | undefined;
  const hubs: HubHandle[] = [];
  const sims: SimAgent[] = [];
  try {
    log(
      `N=${agentsN} T=${ticksPerBatch}: ${batchesPerAgent} batches × ${samplesPerBatch} samples per agent; starting hub in ${dir}`,
    );
    // --profile-dir: the hub (only) runs under Bun's sampling profiler, written as markdown when it exits.
    const profileDir = opts["profile-dir"]
      ? resolve(opts["profile-dir"], `n${agentsN}-t${ticksPerBatch}`)
      : undefined;
    const bunOptions = process.env.BUN_OPTIONS;
    if (profileDir) process.env.BUN_OPTIONS = `--cpu-prof-md --cpu-prof-dir=${profileDir}`;
    try {
      const store = opts.store === "postgres" ? ["--store", await postgresUrl()] : [];
      hub = await startHub({ data: join(dir, "hub"), args: [...store, "--hub-id", "bench-hub"] });
      hubs.push(hub);
      // The other replicas share the first one's key (agents pin it) and tokens.
      for (let r = 1; r < replicasN; r++) {
        const data = join(dir, `hub-${r}`);
        mkdirSync(data, { recursive: true });
        writeFileSync(join(data, "hub.key"), readFileSync(join(dir, "hub", "hub.key")), { mode: 0o600 });
        hubs.push(await startHub({ data, args: [...store, "--hub-id", "bench-hub"] }));
      }
    } finally {
      if (bunOptions === undefined) delete process.env.BUN_OPTIONS;
      else process.env.BUN_OPTIONS = bunOptions;
    }
    const hubPids = hubs.map((h) => h.proc.pid!);
    const rssOf = () => hubPids.reduce((a, pid) => a + (memoryOf(pid)?.rss ?? 0), 0);
    const ticksOf = () => hubPids.reduce((a, pid) => a + (cpuTicksOf(pid) ?? 0), 0);
    const dataDir = join(dir, "hub");
    const t24h = Date.now() - 86_400_000;
    for (let i = 0; i < agentsN; i++) {
      const node = `bench-${String(i).padStart(6, "0")}`;
      const bodies: Uint8Array[] = [];
      for (let q = 1; q <= batchesPerAgent; q++) {
        const enc = pool[(i + q) % pool.length]!;
        bodies.push(
          encodeCbor({
            start: t24h + (q - 1) * ticksPerBatch * TICK_MS,
            interval: TICK_MS,
            ticks: ticksPerBatch,
            samples: enc.samples,
            data: enc.data,
            z: enc.z,
          }),
        );
      }
      sims.push(new SimAgent(node, bodies, { window: WINDOW, heartbeatMs: HEARTBEAT_MS }));
    }
    // Hellos in waves of 100, so that connecting is not what we measure.
    const tc = performance.now();
    for (let i = 0; i < sims.length; i += 100) {
      await Promise.all(
        sims
          .slice(i, i + 100)
          .map((s, j) => s.connect(`${hubs[(i + j) % hubs.length]!.wsUrl}/v1/agent`, hub!.joinToken)),
      );
    }
    const connectS = (performance.now() - tc) / 1000;
    const dbBefore = dbBytes(dataDir);
    log(`N=${agentsN}: all ${sims.length} agents welcomed in ${connectS.toFixed(2)} s; streaming`);

    const hubRss: number[] = [];
    let genRssPeak = 0;
    const rssStart = rssOf();
    const sampler = setInterval(() => {
      hubRss.push(rssOf());
      genRssPeak = Math.max(genRssPeak, process.memoryUsage.rss());
    }, 250);
    const hubTicks0 = ticksOf();
    const gen0 = process.cpuUsage();
    const procs0 = allProcessTicks();
    const mc0 = machineCpu();
    const t0 = performance.now();
    let error: string | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        Promise.all(sims.map((s) => s.run())),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`not done within ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS);
        }),
      ]);
    } catch (err) {
      error = (err as Error).message;
      log(`N=${agentsN}: FAILED: ${error}`);
    } finally {
      clearTimeout(timer);
    }
    const t1 = performance.now();
    const hubTicks1 = ticksOf();
    const gen1 = process.cpuUsage(gen0);
    const mc1 = machineCpu();
    const procs1 = allProcessTicks();
    clearInterval(sampler);
    for (const s of sims) s.stop();
    const elapsedS = (t1 - t0) / 1000;
    const dbLive = dbBytes(dataDir);

    // Grouped commits (one fsync each), from the hub's own counter.
    let commits = 0;
    for (const h of hubs) {
      const metricsText = await fetch(`${h.url}/metrics`).then((r) => r.text());
      commits += Number(
        /^novacron_hub_ingest_commits_total(?:\{\})? (\d+)/m.exec(metricsText)?.[1] ?? Number.NaN,
      );
    }

    // Read back what the hub holds, 20 requests at a time.
    const mismatches: string[] = [];
    let storedSamples = 0;
    for (let i = 0; i < sims.length; i += 20) {
      const chunk = sims.slice(i, i + 20);
      const got = await Promise.all(chunk.map((s) => hub!.api<NodeJson>(`/api/v1/nodes/${s.node}`)));
      chunk.forEach((s, j) => {
        const r = got[j]!;
        if (r.status !== 200) {
          mismatches.push(`${s.node}: HTTP ${r.status}`);
          return;
        }
        const g = r.body.ingest;
        storedSamples += g.samples;
        const want = {
          samples: s.total * samplesPerBatch,
          batches: s.total,
          last_seq: s.total,
          duplicates: 0,
          gaps: 0,
        };
        for (const k of Object.keys(want) as (keyof typeof want)[]) {
          if (g[k] !== want[k] && mismatches.length < 20)
            mismatches.push(`${s.node}: ${k} ${g[k]} != ${want[k]}`);
        }
      });
    }
    const totalSamples = agentsN * batchesPerAgent * samplesPerBatch;
    if (storedSamples !== totalSamples)
      mismatches.push(`hub holds ${storedSamples} samples, sent ${totalSamples}`);

    for (const s of sims) s.close();
    for (const h of hubs) await h.proc.kill("SIGTERM");
    hub = undefined;
    const dbAfter = dbBytes(dataDir);
    const rtts = sims.flatMap((s) => s.rtts);
    const sortedRtts = rtts.toSorted((a, b) => a - b);
    const ackedBatches = sims.reduce((a, s) => a + s.acked, 0);
    const cpuWallTicks = elapsedS * CLK_TCK;
    const hubCpu = ((hubTicks1 - hubTicks0) / cpuWallTicks) * 100;
    const genCpu = ((gen1.user + gen1.system) / 1e6 / elapsedS) * 100;
    const machineBusy = ((mc1.busy - mc0.busy) / (mc1.total - mc0.total)) * 100;
    const cpuShare = (k: "softirq" | "iowait" | "steal") =>
      ((mc1[k] - mc0[k]) / (mc1.total - mc0.total)) * 100 * navigator.hardwareConcurrency;
    const others = topOthers(procs0, procs1, [...hubPids, process.pid], elapsedS);
    const cores = navigator.hardwareConcurrency;
    const acked = ackedBatches * samplesPerBatch;
    const result: RunResult = {
      store: opts.store!,
      replicas: replicasN,
      agents: agentsN,
      ticks_per_batch: ticksPerBatch,
      samples_per_batch: samplesPerBatch,
      window: WINDOW,
      batches_per_agent: batchesPerAgent,
      samples_per_agent: batchesPerAgent * samplesPerBatch,
      total_samples: totalSamples,
      total_batches: agentsN * batchesPerAgent,
      wire_bytes: sims.reduce((a, s) => a + s.sentBytes, 0),
      connect_s: connectS,
      elapsed_s: elapsedS,
      samples_per_s: acked / elapsedS,
      batches_per_s: ackedBatches / elapsedS,
      acks_per_s: sims.reduce((a, s) => a + s.acks, 0) / elapsedS,
      commits,
      commits_per_s: commits / elapsedS,
      hub_cpu_pct: hubCpu,
      generator_cpu_pct: genCpu,
      machine_busy_pct_of_all_cores: machineBusy,
      other_cpu_pct: Math.max(0, machineBusy * cores - hubCpu - genCpu),
      irq_softirq_cpu_pct: cpuShare("softirq"),
      iowait_pct: cpuShare("iowait"),
      steal_pct: cpuShare("steal"),
      top_other_processes: others,
      hub_rss_mib: {
        start: rssStart / 1048576,
        mean: (hubRss.length ? hubRss.reduce((a, b) => a + b, 0) / hubRss.length : rssStart) / 1048576,
        peak: Math.max(rssStart, ...hubRss) / 1048576,
      },
      generator_rss_mib_peak: genRssPeak / 1048576,
      db_bytes: {
        before: dbBefore,
        live_with_wal: dbLive,
        after_close: dbAfter,
        per_sample: dbAfter / totalSamples,
      },
      heartbeat_rtt_ms: {
        n: rtts.length,
        p50: pct(sortedRtts, 0.5),
        p99: pct(sortedRtts, 0.99),
        max: Math.max(0, ...rtts),
      },
      verified: { ok: mismatches.length === 0 && !error, mismatches },
      target_ratio: acked / elapsedS / TARGET_SAMPLES_PER_S,
    };
    if (error) result.error = error;
    log(
      `N=${agentsN} T=${ticksPerBatch}: ${Math.round(result.samples_per_s).toLocaleString("en")} samples/s, ` +
        `${replicasN} hub process(es) ${hubCpu.toFixed(0)}% CPU, generator ${genCpu.toFixed(0)}%, verified ${result.verified.ok}`,
    );
    return result;
  } finally {
    for (const s of sims) s.close();
    if (hub) for (const h of hubs) await h.proc.kill("SIGKILL");
    if (!process.env.KEEP_BENCH_DIRS) rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const machine = machineInfo();
  const recPath = resolve(ROOT, opts.recording);
  const rec = loadRecording(recPath);
  log(
    rec
      ? `batches from the host recording ${recPath} (${rec.host.length} s)`
      : "no host recording: synthetic values",
  );
  const results: RunResult[] = [];
  for (const t of TICKS_PER_BATCH) {
    const { pool, names } = batchPool(rec, t);
    log(
      `T=${t}: pool of ${pool.length} batches, ${(pool.reduce((a, p) => a + p.data.byteLength, 0) / pool.length).toFixed(0)} B of data each; series: ${names.join(", ")}`,
    );
    for (const r of REPLICA_COUNTS) for (const n of AGENT_COUNTS) results.push(await runOnce(n, t, pool, r));
  }

  printMachine(machine);
  console.log(
    `\nhub: real process (bun hub/main.ts serve), ${opts.store === "postgres" ? "PostgreSQL (private server, fsync on, data dir on " : "SQLite WAL synchronous=FULL on "}${tmpdir()}${opts.store === "postgres" ? ")" : " (ext4 here)"}; ` +
      `agents: ${AGENT_COUNTS.join("/")} WebSockets in this one process, window ${WINDOW}, ` +
      `heartbeat every ${HEARTBEAT_MS} ms; data: ${rec ? `host recording (${rec.host.length} s, ping-pong)` : "synthetic"}; ` +
      `${SERIES} series every tick${rec && !rec.host.some((h) => "temp.cpu_c" in h) ? " (temp.cpu_c synthesized: this VM has no thermal zone)" : ""}.`,
  );
  const mib = (n: number) => n.toFixed(0);
  console.log(
    `\n${table([
      [
        "store",
        "replicas",
        "agents",
        "ticks/batch",
        "samples",
        "batches",
        "elapsed s",
        "samples/s",
        "÷ target",
        "batches/s",
        "acks/s",
        "commits/s",
        "hub CPU%",
        "gen CPU%",
        "other CPU%",
        "hub RSS MiB start/mean/peak",
        "DB B/sample",
        "hb RTT ms p50/p99/max",
        "verified",
      ],
      ...results.map((r) => [
        r.store,
        r.replicas,
        r.agents,
        r.ticks_per_batch,
        r.total_samples,
        r.total_batches,
        r.elapsed_s.toFixed(2),
        Math.round(r.samples_per_s),
        r.target_ratio.toFixed(2),
        Math.round(r.batches_per_s),
        Math.round(r.acks_per_s),
        Math.round(r.commits_per_s),
        r.hub_cpu_pct.toFixed(0),
        r.generator_cpu_pct.toFixed(0),
        r.other_cpu_pct.toFixed(0),
        `${mib(r.hub_rss_mib.start)}/${mib(r.hub_rss_mib.mean)}/${mib(r.hub_rss_mib.peak)}`,
        r.db_bytes.per_sample.toFixed(2),
        r.heartbeat_rtt_ms.n === 0
          ? "none"
          : `${r.heartbeat_rtt_ms.p50}/${r.heartbeat_rtt_ms.p99}/${r.heartbeat_rtt_ms.max} (n=${r.heartbeat_rtt_ms.n})`,
        r.verified.ok ? "yes" : `NO ${r.error ?? ""} ${r.verified.mismatches.slice(0, 3).join("; ")}`,
      ]),
    ])}`,
  );
  console.log(
    "  CPU% = 100 per core (this machine has " +
      `${navigator.hardwareConcurrency}); other = whole-machine busy time not taken by hub or generator; ` +
      "DB B/sample = hub.db after a clean shutdown (WAL checkpointed) ÷ samples; target ≥ 1,000,000 samples/s on 2 cores; " +
      "with replicas, hub CPU% and RSS are the sums over the replica processes.",
  );
  console.log(
    "\nwho else used the CPU during each run (CPU% per core; irq/softirq is not in any process's time):",
  );
  for (const r of results) {
    const top = r.top_other_processes.map((p) => `${p.name}[${p.pid}] ${p.cpu_pct.toFixed(0)}%`).join(", ");
    console.log(
      `  N=${r.agents} T=${r.ticks_per_batch}: irq+softirq ${r.irq_softirq_cpu_pct.toFixed(0)}%, iowait ${r.iowait_pct.toFixed(0)}%, ` +
        `steal ${r.steal_pct.toFixed(0)}%; busiest others: ${top || "none"}`,
    );
  }
  const outPath = resolve(ROOT, opts.out);
  mkdirSync(dirname(outPath), { recursive: true });
  writeFileSync(
    outPath,
    `${JSON.stringify({ machine, store: opts.store, recording: rec ? recPath : null, window: WINDOW, heartbeat_ms: HEARTBEAT_MS, runs: results }, null, 2)}\n`,
  );
  log(`wrote ${outPath}`);
}

await main();
if (pgServer) await (await pgServer)[Symbol.asyncDispose]();

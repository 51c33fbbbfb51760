// Reconnect storm: N simulated agents reconnect at once to a SIGKILLed and restarted hub, each with a catch-up backlog.
//
//   bun bench/storm.ts [--agents 1000] [--backlog 300] [--ticks-per-batch 10] [--window 64] [--in-flight 8192,65536]
//                      [--heartbeat-ms 2000] [--hub-args="--suspect-after 6s ..."] [--base-root DIR]
//
// A real hub process on a temp dir. Phase 1: N agents (bench/_sim-agent.ts: the agent's secure session
// and the link's windowed send loop, each with its own node key) join and heartbeat. Then the hub is
// SIGKILLed and started again on the same data, and all N reconnect at once (a busy answer is honoured
// as the agent's link honours it) and send their backlog (--backlog batches of --ticks-per-batch ticks ×
// 11 series each) while heartbeating every --heartbeat-ms. Printed: time until all are admitted and
// until all are caught up, heartbeat reply p50/p99/max during the storm, the hub's peak RSS, every
// node's status polled once a second (false `down`: target 0), and every node read back (exactly once).
//
// --base-root DIR runs the same storm first against the hub of another checkout (e.g. the commit before
// the bulk lane, `git archive <commit> | tar -x -C DIR` with node_modules linked), so the two are
// compared in one run on the same machine.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { encodeCbor } from "../shared/protocol/index.ts";
import { encodeMetrics } from "../shared/protocol/metrics-codec.ts";
import { freePort } from "../test/support/ports.ts";
import { Proc } from "../test/support/processes.ts";
import { machineInfo, pct, printMachine, table } from "./_machine.ts";
import { CLK_TCK, cpuTicksOf, memoryOf } from "./_proc-stats.ts";
import { SimAgent } from "./_sim-agent.ts";

const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: {
    agents: { type: "string", default: "1000" },
    backlog: { type: "string", default: "300" },
    "ticks-per-batch": { type: "string", default: "10" },
    window: { type: "string", default: "64" },
    "heartbeat-ms": { type: "string", default: "2000" },
    "hub-args": {
      type: "string",
      default: "--heartbeat-interval 2s --suspect-after 6s --down-after 12s --restart-grace 10s",
    },
    "base-root": { type: "string" },
    "in-flight": { type: "string", default: "8192" },
    "timeout-s": { type: "string", default: "300" },
  },
});
const N = Number(opts.agents);
const BACKLOG = Number(opts.backlog);
const TICKS = Number(opts["ticks-per-batch"]);
const WINDOW = Number(opts.window);
const BEAT_MS = Number(opts["heartbeat-ms"]);
const TIMEOUT_MS = Number(opts["timeout-s"]) * 1000;
if (!(N >= 1 && N <= 5000)) throw new Error("--agents must be in 1..5000");
if (!(BACKLOG >= 1 && BACKLOG <= 100_000)) throw new Error("--backlog must be in 1..100000");
const SERIES = 11;
const ROOT = resolve(import.meta.dir, "..");
const log = (msg: string) => console.error(`[storm ${new Date().toISOString().slice(11, 19)}] ${msg}`);

/** A hub process from a checkout (`root`), restartable on the same data and port. */
function hubAt(root: string, data: string, extra: string[]) {
  const port = freePort();
  const cmd = [
    process.execPath,
    join(root, "hub/main.ts"),
    "serve",
    "--data",
    data,
    "--listen",
    `127.0.0.1:${port}`,
    "--admin-token",
    "bench-admin",
    "--join-token",
    "bench-join",
    ...extra,
  ];
  let proc = new Proc("hub", cmd);
  const url = `http://127.0.0.1:${port}`;
  return {
    get pid() {
      return proc.pid!;
    },
    url,
    ws: `ws://127.0.0.1:${port}/v1/agent`,
    async start() {
      proc = new Proc("hub", cmd);
      proc.start();
      await proc.waitForLine(/hub listening/, 30_000);
    },
    kill: () => proc.kill("SIGKILL"),
    stop: () => proc.kill("SIGTERM"),
    async api<T>(path: string): Promise<T> {
      const r = await fetch(`${url}${path}`, { headers: { authorization: "Bearer bench-admin" } });
      return (await r.json()) as T;
    },
    async metrics(): Promise<string> {
      return (await fetch(`${url}/metrics`)).text();
    },
  };
}

function metric(text: string, name: string, labels = ""): number {
  let total = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(\\{[^}]*\\})? (\\d+(?:\\.\\d+)?)$`, "gm"))) {
    if (!labels || (m[1] ?? "").includes(labels)) total += Number(m[2]);
  }
  return total;
}

/** The backlog of one agent: BACKLOG batches of TICKS ticks × 11 series (a deterministic walk). */
function backlog(agent: number): Uint8Array[] {
  const t0 = Date.now() - 86_400_000;
  const out: Uint8Array[] = [];
  let x = agent + 1;
  const rand = () => {
    x = (x * 48271) % 2147483647;
    return x / 2147483647;
  };
  for (let q = 1; q <= BACKLOG; q++) {
    const start = t0 + (q - 1) * TICKS * 1000;
    const series = Array.from({ length: SERIES }, (_, s) => ({
      name: `bench.s${s}`,
      values: Array.from({ length: TICKS }, () => Math.round(rand() * 1000) / 10),
    }));
    const enc = encodeMetrics({ start, interval: 1000, ticks: TICKS, series });
    out.push(encodeCbor({ start, interval: 1000, ticks: TICKS, ...enc }));
  }
  return out;
}

interface StormResult {
  hub: string;
  admittedS: number;
  caughtUpS: number;
  beats: number;
  p50: number;
  p99: number;
  max: number;
  rssPeakMiB: number;
  rssBeforeMiB: number;
  downSeen: number;
  suspectPeak: number;
  busy: number;
  bulkPeak: number;
  ahead: number;
  mismatches: string[];
  duplicates: number;
  commits: number;
  hubCpuS: number;
  benchCpuS: number;
}

async function storm(
  label: string,
  root: string,
  hubArgs: string[],
  bodies: Uint8Array[][],
): Promise<StormResult> {
  const dir = mkdtempSync(join(tmpdir(), "novacron-storm-"));
  const hub = hubAt(root, join(dir, "hub"), hubArgs);
  const sims = bodies.map(
    (b, i) =>
      new SimAgent(`storm-${String(i).padStart(5, "0")}`, b, {
        window: WINDOW,
        heartbeatMs: BEAT_MS,
        resume: true,
        keepBeating: true,
      }),
  );
  try {
    await hub.start();
    log(`${label}: phase 1, ${N} agents join`);
    await Promise.all(sims.map((s) => s.connectRetrying(hub.ws, "bench-join", TIMEOUT_MS)));
    for (const s of sims) s.idle();
    await Bun.sleep(2 * BEAT_MS);
    log(`${label}: all joined; SIGKILL the hub and start it again`);
    await hub.kill();
    for (const s of sims) s.close();
    await hub.start();
    const rssBefore = memoryOf(hub.pid)?.rss ?? 0;
    const hubTicks0 = cpuTicksOf(hub.pid) ?? 0;
    const bench0 = process.cpuUsage();
    const t0 = performance.now();
    for (const s of sims) {
      s.busy = 0;
      s.rtts.length = 0;
    }
    let rssPeak = rssBefore;
    const sampler = setInterval(() => {
      rssPeak = Math.max(rssPeak, memoryOf(hub.pid)?.rss ?? 0);
    }, 100);
    let admitted = 0;
    let admittedAt = 0;
    // Every node's status once a second while the storm lasts.
    let downSeen = 0;
    let suspectPeak = 0;
    const downNodes = new Set<string>();
    let polling = true;
    const poller = (async () => {
      while (polling) {
        try {
          const r = await hub.api<{ nodes: { id: string; status: string }[] }>("/api/v1/nodes");
          let suspect = 0;
          for (const n of r.nodes) {
            if (n.status === "down") {
              downSeen += 1;
              downNodes.add(n.id);
            } else if (n.status === "suspect") suspect += 1;
          }
          // Before every agent is back, the ones still waiting are rightly suspect; count after.
          if (admittedAt > 0) suspectPeak = Math.max(suspectPeak, suspect);
        } catch {}
        await Bun.sleep(1000);
      }
    })();
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(
        sims.map(async (s) => {
          await s.connectRetrying(hub.ws, "bench-join", TIMEOUT_MS);
          admitted += 1;
          if (admitted === N) admittedAt = performance.now();
          await s.run();
        }),
      ),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`not caught up within ${TIMEOUT_MS / 1000} s`)),
          TIMEOUT_MS,
        );
      }),
    ]).finally(() => clearTimeout(timer));
    const caughtUp = performance.now();
    const hubCpuS = ((cpuTicksOf(hub.pid) ?? hubTicks0) - hubTicks0) / CLK_TCK;
    const benchCpu = process.cpuUsage(bench0);
    const benchCpuS = (benchCpu.user + benchCpu.system) / 1e6;
    // Heartbeats during the storm: sent after the restart and before the last agent caught up.
    const rtts = sims.flatMap((s) => s.rtts).sort((a, b) => a - b);
    // Two more status polls after the storm (a node must not go down once it is over, either).
    await Bun.sleep(2 * BEAT_MS + 1000);
    polling = false;
    await poller;
    clearInterval(sampler);
    const text = await hub.metrics();
    const mismatches: string[] = [];
    let duplicates = 0;
    for (let i = 0; i < sims.length; i += 50) {
      const got = await Promise.all(
        sims
          .slice(i, i + 50)
          .map((s) =>
            hub.api<{ ingest: { batches: number; last_seq: number; duplicates: number } }>(
              `/api/v1/nodes/${s.node}`,
            ),
          ),
      );
      got.forEach((g, j) => {
        const s = sims[i + j]!;
        duplicates += g.ingest.duplicates;
        if (g.ingest.batches !== BACKLOG || g.ingest.last_seq !== BACKLOG)
          if (mismatches.length < 10)
            mismatches.push(`${s.node}: batches ${g.ingest.batches} last_seq ${g.ingest.last_seq}`);
      });
    }
    if (downNodes.size > 0) log(`${label}: nodes seen down: ${[...downNodes].slice(0, 10).join(", ")}`);
    return {
      hub: label,
      admittedS: (admittedAt - t0) / 1000,
      caughtUpS: (caughtUp - t0) / 1000,
      beats: rtts.length,
      p50: pct(rtts, 0.5),
      p99: pct(rtts, 0.99),
      max: rtts.at(-1) ?? Number.NaN,
      rssPeakMiB: rssPeak / 1048576,
      rssBeforeMiB: rssBefore / 1048576,
      downSeen,
      suspectPeak,
      busy: sims.reduce((n, s) => n + s.busy, 0),
      bulkPeak: metric(text, "novacron_hub_bulk_queued_peak"),
      ahead: metric(text, "novacron_hub_heartbeats_ahead_of_bulk_total"),
      mismatches,
      duplicates,
      commits: metric(text, "novacron_hub_ingest_commits_total"),
      hubCpuS,
      benchCpuS,
    };
  } finally {
    for (const s of sims) s.close();
    await hub.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

printMachine(machineInfo());
log(`encoding ${N} × ${BACKLOG} batches of ${TICKS * SERIES} samples`);
const bodies = Array.from({ length: N }, (_, i) => backlog(i));
const hubArgs = opts["hub-args"].split(/\s+/).filter(Boolean);
const results: StormResult[] = [];
if (opts["base-root"]) {
  results.push(await storm("base", resolve(opts["base-root"]), hubArgs, bodies));
}
for (const budget of opts["in-flight"].split(",")) {
  results.push(await storm(`this, --in-flight ${budget}`, ROOT, [...hubArgs, "--in-flight", budget], bodies));
}
console.log(
  `\n${N} agents, each ${BACKLOG} batches × ${TICKS * SERIES} samples (window ${WINDOW}), heartbeat every ${BEAT_MS} ms; hub ${hubArgs.join(" ")}\n`,
);
console.log(
  table([
    [
      "hub",
      "all admitted s",
      "all caught up s",
      "heartbeats",
      "hb p50 ms",
      "hb p99 ms",
      "hb max ms",
      "RSS before MiB",
      "RSS peak MiB",
      "down seen",
      "suspect after admitted",
      "busy answers",
      "bulk peak",
      "hb ahead of bulk",
      "duplicates",
      "commits",
      "hub CPU s",
      "bench CPU s",
    ],
    ...results.map((r) => [
      r.hub,
      r.admittedS.toFixed(2),
      r.caughtUpS.toFixed(2),
      r.beats,
      r.p50.toFixed(0),
      r.p99.toFixed(0),
      r.max.toFixed(0),
      r.rssBeforeMiB.toFixed(0),
      r.rssPeakMiB.toFixed(0),
      r.downSeen,
      r.suspectPeak,
      r.busy,
      r.bulkPeak,
      r.ahead,
      r.duplicates,
      r.commits,
      r.hubCpuS.toFixed(1),
      r.benchCpuS.toFixed(1),
    ]),
  ]),
);
for (const r of results) {
  console.log(
    `${r.hub}: every node read back: ${r.mismatches.length === 0 ? "exact" : r.mismatches.join("; ")}`,
  );
}
const base = results.find((r) => r.hub === "base");
for (const t of results) {
  if (!base || t === base) continue;
  console.log(
    `${t.hub} / base: heartbeat p99 ${(t.p99 / base.p99).toFixed(3)}, caught up ${(t.caughtUpS / base.caughtUpS).toFixed(3)}, hub CPU ${(t.hubCpuS / base.hubCpuS).toFixed(3)}, RSS peak ${(t.rssPeakMiB / base.rssPeakMiB).toFixed(3)}`,
  );
}

// Soak: the shipped agent, connected to a real hub with 1 s sampling, watched for an hour; is its memory flat?
//
//   bun bench/agent-soak.ts [--duration 3600] [--warmup 300] [--binary PATH] [--bun-run]
//                           [--env K=V]... [--out bench/out/agent-soak.json]
//
// Builds the agent as `npm run build` does (or takes --binary; --bun-run runs agent/main.ts under
// bun instead), starts a real hub over WebSocket, and reads the agent's /proc once a second: RSS,
// its anonymous and file-backed parts, PSS (smaps_rollup) and CPU. Prints, every 5 minutes and at
// the end, the medians, the peak and the RSS slope in MiB per hour, fitted by least squares over the
// whole run and over the run after --warmup seconds (JIT and page-touching settle in the first
// minutes). The summary is also written to --out every minute, so a run cut short still leaves it.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { startHub, tempDir } from "../test/support/processes.ts";
import { machineInfo, printMachine } from "./_machine.ts";
import { CLK_TCK, cpuTicksOf, median, memoryOf, mib } from "./_proc-stats.ts";
import { pssOf, runAgent, shippedAgent, slope } from "./_shipped-agent.ts";

const ROOT = resolve(import.meta.dir, "..");
const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: {
    duration: { type: "string", default: "3600" },
    warmup: { type: "string", default: "300" },
    binary: { type: "string" },
    "bun-run": { type: "boolean", default: false },
    env: { type: "string", multiple: true, default: [] },
    out: { type: "string", default: "bench/out/agent-soak.json" },
  },
});
const durationS = Number(opts.duration);
const warmupS = Number(opts.warmup);
if (!(durationS >= 10) || !(warmupS >= 0)) {
  console.error("agent-soak: --duration must be at least 10 (seconds) and --warmup a number of seconds");
  process.exit(2);
}
const env = Object.fromEntries(
  (opts.env ?? []).map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
);
const outPath = resolve(ROOT, opts.out);
const log = (m: string) => console.error(`[soak ${new Date().toISOString().slice(11, 19)}] ${m}`);

interface Reading {
  t: number;
  rss: number;
  anon: number;
  file: number;
  pss: number;
  ticks: number;
}

function summary(rs: Reading[]) {
  const after = rs.filter((r) => r.t >= warmupS);
  const hours = (r: Reading) => r.t / 3600;
  const cpuPct = (xs: Reading[]) =>
    xs.length < 2
      ? Number.NaN
      : ((xs.at(-1)!.ticks - xs[0]!.ticks) / CLK_TCK / (xs.at(-1)!.t - xs[0]!.t)) * 100;
  const first = rs.filter((r) => r.t < Math.min(600, durationS / 4));
  const last = rs.filter((r) => r.t > rs.at(-1)!.t - Math.min(600, durationS / 4));
  const f = (x: number, d = 2) => Number(x.toFixed(d));
  return {
    seconds: rs.length > 0 ? f(rs.at(-1)!.t, 0) : 0,
    readings: rs.length,
    rss_median_mib: f(mib(median(rs.map((r) => r.rss)))),
    rss_max_mib: f(mib(Math.max(...rs.map((r) => r.rss)))),
    pss_median_mib: f(mib(median(rs.map((r) => r.pss)))),
    anon_median_mib: f(mib(median(rs.map((r) => r.anon)))),
    file_median_mib: f(mib(median(rs.map((r) => r.file)))),
    cpu_pct_of_a_core: f(cpuPct(rs), 3),
    slope_all_mib_per_h: f(
      slope(
        rs.map(hours),
        rs.map((r) => mib(r.rss)),
      ),
      3,
    ),
    slope_after_warmup_mib_per_h: f(
      slope(
        after.map(hours),
        after.map((r) => mib(r.rss)),
      ),
      3,
    ),
    anon_slope_after_warmup_mib_per_h: f(
      slope(
        after.map(hours),
        after.map((r) => mib(r.anon)),
      ),
      3,
    ),
    first_window_rss_median_mib: f(mib(median(first.map((r) => r.rss)))),
    last_window_rss_median_mib: f(mib(median(last.map((r) => r.rss)))),
  };
}

async function main() {
  const info = machineInfo();
  printMachine(info);
  using dir = tempDir("novacron-soak-");
  const binary = opts["bun-run"]
    ? [process.execPath, "agent/main.ts"]
    : [shippedAgent(join(dir.path, "dist"), opts.binary)];
  log(`agent: ${binary.join(" ")}${Object.keys(env).length ? ` with ${opts.env!.join(" ")}` : ""}`);
  await using hub = await startHub({ data: join(dir.path, "hub") });
  const agent = await runAgent({
    binary,
    data: join(dir.path, "agent"),
    nodeId: "soak",
    hub: { url: hub.wsUrl, joinToken: hub.joinToken },
    env,
  });
  const pid = agent.proc.pid!;
  const rs: Reading[] = [];
  const write = (done: boolean, extra: object = {}) => {
    mkdirSync(dirname(outPath), { recursive: true });
    const s = summary(rs);
    writeFileSync(
      outPath,
      `${JSON.stringify({ ...info, agent: binary.join(" "), env, done, duration_s: durationS, warmup_s: warmupS, ...s, ...extra, series: rs.filter((_, i) => i % 10 === 0).map((r) => [r.t, Number(mib(r.rss).toFixed(2))]) }, null, 1)}\n`,
    );
    return s;
  };
  process.on("SIGINT", () => {
    log("interrupted: the summary so far is in the output file");
    write(false);
    void agent.proc.kill("SIGKILL").finally(() => process.exit(130));
  });
  log(`reading pid ${pid} once a second for ${durationS} s`);
  const t0 = performance.now();
  for (let i = 0; i <= durationS; i++) {
    const m = memoryOf(pid);
    const ticks = cpuTicksOf(pid);
    const pss = pssOf(pid);
    if (!m || ticks === undefined || pss === undefined || !agent.proc.running)
      throw new Error(`the agent exited: ${agent.proc.lines.slice(-5).join(" | ")}`);
    rs.push({ t: (performance.now() - t0) / 1000, ...m, pss, ticks });
    if (i > 0 && i % 60 === 0) {
      const s = write(false);
      if (i % 300 === 0)
        log(
          `${i} s: RSS median ${s.rss_median_mib} max ${s.rss_max_mib} MiB, PSS ${s.pss_median_mib}, slope after warm-up ${s.slope_after_warmup_mib_per_h} MiB/h`,
        );
    }
    await Bun.sleep(Math.max(0, t0 + (i + 1) * 1000 - performance.now()));
  }
  const st = (await (await fetch(`${agent.apiUrl}/v1/status`)).json()) as {
    connected: boolean;
    samples: { produced: number; dropped: number };
    outbox: { pending: number };
  };
  const node = await hub.api<{ ingest?: { samples: number } }>("/api/v1/nodes/soak");
  const s = write(true, {
    connected_at_end: st.connected,
    samples_produced: st.samples.produced,
    samples_dropped: st.samples.dropped,
    outbox_pending: st.outbox.pending,
    hub_stored_samples: node.body.ingest?.samples ?? null,
  });
  await agent.proc.kill("SIGTERM");
  console.log(`\nagent ${binary.join(" ")}, WebSocket to a local hub, 1 s sampling, ${s.seconds} s`);
  for (const [k, v] of Object.entries(s)) console.log(`  ${k.padEnd(34)} ${v}`);
  console.log(
    `  produced ${st.samples.produced}, dropped ${st.samples.dropped}, pending ${st.outbox.pending}, stored at the hub ${node.body.ingest?.samples ?? "?"}`,
  );
  console.log(`\nwrote ${outPath}`);
}

try {
  await main();
} catch (err) {
  console.error(`agent-soak: ${(err as Error).stack ?? err}`);
  process.exit(1);
}
process.exit(0);

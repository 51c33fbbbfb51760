// The agent's memory targets (docs/targets.md, issue 13), measured side by side with collectd and node_exporter in one run.
//
//   bun bench/agent-memory-targets.ts [--settle 60] [--duration 300] [--binary PATH] [--tasks 0]
//                                     [--out bench/out/agent-memory-targets.json]
//
// Builds the agent as `npm run build` does (or takes --binary) and runs, all at once on this machine:
// a private Mosquitto and a real hub (bun run); the shipped agent connected over WebSocket with 1 s
// sampling (the only process running that executable, so its PSS is its PSS alone); Debian's collectd
// at Interval 1 publishing to the broker (bench/_collectd.ts); and Debian's node_exporter, scraped
// once a second by this script as a Prometheus would be. With --tasks N a second shipped agent runs N
// supervised `sleep` workloads (its PSS then shares the executable with the first). After --settle
// seconds every process is read once a second for --duration seconds: RSS, PSS (smaps_rollup),
// anonymous memory, CPU of the process and its children. Prints the table, the ratios and the targets.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { startMosquitto } from "../test/support/mosquitto.ts";
import { freePort } from "../test/support/ports.ts";
import { Proc, startHub, tempDir } from "../test/support/processes.ts";
import { waitFor } from "../test/support/wait.ts";
import { assignTasks } from "./_assign-tasks.ts";
import { COLLECTD, collectdConfig } from "./_collectd.ts";
import { machineInfo, printMachine, table } from "./_machine.ts";
import { CLK_TCK, descendantsOf, median, mib, sampleTree } from "./_proc-stats.ts";
import { pssOf, runAgent, shippedAgent } from "./_shipped-agent.ts";

const ROOT = resolve(import.meta.dir, "..");
const NODE_EXPORTER = "/usr/bin/prometheus-node-exporter";
const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: {
    settle: { type: "string", default: "60" },
    duration: { type: "string", default: "300" },
    binary: { type: "string" },
    tasks: { type: "string", default: "0" },
    out: { type: "string", default: "bench/out/agent-memory-targets.json" },
  },
});
const log = (m: string) => console.error(`[targets ${new Date().toISOString().slice(11, 19)}] ${m}`);

interface Subject {
  name: string;
  proc: Proc;
  reads: { rss: number; pss: number; anon: number; ticks: number; t: number }[];
}

function peakOf(pid: number): number {
  try {
    return Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]) * 1024;
  } catch {
    return Number.NaN;
  }
}

async function main() {
  if (!existsSync(COLLECTD)) throw new Error(`${COLLECTD} is missing: apt-get install collectd-core`);
  const info = machineInfo();
  printMachine(info);
  using dir = tempDir("novacron-memory-targets-");
  const binary = shippedAgent(join(dir.path, "dist"), opts.binary);
  await using broker = await startMosquitto(dir.path);
  await using hub = await startHub({ data: join(dir.path, "hub"), mqtt: broker.url });
  const subjects: Subject[] = [];
  const owned: Proc[] = [];
  const kids = new Set<number>();
  try {
    const agent = await runAgent({
      binary: [binary],
      data: join(dir.path, "agent"),
      nodeId: "shipped",
      hub: { url: hub.wsUrl, joinToken: hub.joinToken },
    });
    owned.push(agent.proc);
    subjects.push({ name: "shipped agent, ws, 1 s", proc: agent.proc, reads: [] });
    const tasks = Number(opts.tasks);
    if (tasks > 0) {
      const busy = await runAgent({
        binary: [binary],
        data: join(dir.path, "agent-tasks"),
        nodeId: "tasks",
        hub: { url: hub.wsUrl, joinToken: hub.joinToken },
      });
      owned.push(busy.proc);
      await assignTasks(hub, busy.apiUrl, "tasks", tasks);
      for (const k of descendantsOf(busy.proc.pid!)) kids.add(k);
      subjects.push({ name: `shipped agent, ws, ${tasks} tasks`, proc: busy.proc, reads: [] });
    }
    const cdir = join(dir.path, "collectd");
    mkdirSync(cdir, { recursive: true });
    writeFileSync(join(cdir, "collectd.conf"), collectdConfig(cdir, broker.port));
    const cd = new Proc("collectd", [COLLECTD, "-f", "-C", join(cdir, "collectd.conf")]);
    cd.start();
    owned.push(cd);
    subjects.push({ name: "collectd 5.12 (Interval 1, mqtt)", proc: cd, reads: [] });
    let scrape: ReturnType<typeof setInterval> | undefined;
    if (existsSync(NODE_EXPORTER)) {
      const addr = `127.0.0.1:${freePort()}`;
      const ne = new Proc("node_exporter", [NODE_EXPORTER, `--web.listen-address=${addr}`]);
      ne.start();
      owned.push(ne);
      subjects.push({ name: "node_exporter 1.5 (scraped every 1 s)", proc: ne, reads: [] });
      await waitFor(async () => (await fetch(`http://${addr}/metrics`).catch(() => undefined))?.ok, {
        what: "node_exporter up",
        timeoutMs: 15_000,
      });
      scrape = setInterval(
        () =>
          void fetch(`http://${addr}/metrics`).then(
            (r) => r.arrayBuffer(),
            () => {},
          ),
        1000,
      );
    } else log(`${NODE_EXPORTER} is missing: apt-get install prometheus-node-exporter; left out`);
    log(`all up; settling ${opts.settle} s, then reading every second for ${opts.duration} s`);
    await Bun.sleep(Number(opts.settle) * 1000);
    const t0 = performance.now();
    for (let i = 0; i <= Number(opts.duration); i++) {
      for (const s of subjects) {
        const pid = s.proc.pid!;
        const tree = sampleTree(pid, performance.now() - t0);
        const pss = pssOf(pid);
        if (!tree || pss === undefined)
          throw new Error(`${s.name} exited: ${s.proc.lines.slice(-5).join(" | ")}`);
        s.reads.push({ rss: tree.rss, pss, anon: tree.anon, ticks: tree.ticks, t: tree.t / 1000 });
      }
      if (i > 0 && i % 60 === 0) log(`${i} s`);
      await Bun.sleep(Math.max(0, t0 + (i + 1) * 1000 - performance.now()));
    }
    clearInterval(scrape);
    const rows = subjects.map((s) => {
      const r = s.reads;
      const secs = r.at(-1)!.t - r[0]!.t;
      return {
        name: s.name,
        rss: mib(median(r.map((x) => x.rss))),
        rssMax: mib(Math.max(...r.map((x) => x.rss))),
        hwm: mib(peakOf(s.proc.pid!)),
        pss: mib(median(r.map((x) => x.pss))),
        anon: mib(median(r.map((x) => x.anon))),
        cpu: ((r.at(-1)!.ticks - r[0]!.ticks) / CLK_TCK / secs) * 100,
      };
    });
    const cdRow = rows.find((r) => r.name.startsWith("collectd"))!;
    const neRow = rows.find((r) => r.name.startsWith("node_exporter"));
    const f = (x: number | undefined, d = 1) => (x !== undefined && Number.isFinite(x) ? x.toFixed(d) : "-");
    const ratio = (a: number, b: number | undefined) => (b ? `${(a / b).toFixed(1)}×` : "-");
    console.log(
      `\nall at once, ${opts.duration} s after ${opts.settle} s; 1 s sampling everywhere; loadavg ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")} at the end`,
    );
    console.log(
      table([
        [
          "process",
          "RSS median",
          "RSS max",
          "peak (VmHWM)",
          "PSS",
          "anon",
          "CPU % core",
          "÷ collectd RSS/PSS/CPU",
          "÷ node_exporter RSS/PSS/CPU",
        ],
        ...rows.map((r) => [
          r.name,
          f(r.rss),
          f(r.rssMax),
          f(r.hwm),
          f(r.pss),
          f(r.anon),
          f(r.cpu, 3),
          `${ratio(r.rss, cdRow.rss)} / ${ratio(r.pss, cdRow.pss)} / ${ratio(r.cpu, cdRow.cpu)}`,
          neRow
            ? `${ratio(r.rss, neRow.rss)} / ${ratio(r.pss, neRow.pss)} / ${ratio(r.cpu, neRow.cpu)}`
            : "-",
        ]),
      ]),
    );
    const a = rows[0]!;
    const verdict = (ok: boolean) => (ok ? "met" : "MISSED");
    console.log(`\ntargets for the shipped agent, connected, 1 s sampling (MiB):`);
    console.log(`  RSS median < 35: ${f(a.rss)} ${verdict(a.rss < 35)}`);
    console.log(
      `  RSS peak < 40:   ${f(Math.max(a.rssMax, a.hwm))} ${verdict(Math.max(a.rssMax, a.hwm) < 40)} (VmHWM counts start-up too)`,
    );
    console.log(
      `  PSS alone < 35:  ${f(a.pss)} ${verdict(a.pss < 35)}${tasks > 0 ? " (shares the executable with the tasks agent here)" : ""}`,
    );
    console.log(`  CPU < 0.5%:      ${f(a.cpu, 3)} ${verdict(a.cpu < 0.5)}`);
    const t = rows.find((r) => r.name.includes(" tasks"));
    if (t)
      console.log(
        `  ${tasks} tasks < 45:   ${f(t.rss)} ${verdict(t.rss < 45)}; ${(((t.rss - a.rss) * 1024) / tasks).toFixed(0)} KiB a task over the idle agent`,
      );
    const out = resolve(ROOT, opts.out);
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify({ ...info, binary, rows }, null, 2)}\n`);
    console.log(`wrote ${out}`);
  } finally {
    for (const p of owned) await p.kill("SIGTERM");
    for (const k of kids) {
      try {
        process.kill(k, "SIGKILL");
      } catch {}
    }
  }
}

await main();
process.exit(0);

// Regression guard: warns when the shipped agent's median RSS rises past the figure last recorded in bench/agent-memory-baseline.json.
//
//   bun bench/agent-memory-guard.ts [--settle 60] [--measure 60] [--tolerance 1] [--binary PATH]
//                                   [--record] [--strict]
//
// Builds the agent as `npm run build` does (or takes --binary), connects it to a real hub over
// WebSocket with 1 s sampling, lets it settle, then reads its RSS and PSS once a second. The median
// RSS is compared with the recorded one: more than --tolerance MiB above it prints a WARNING line
// (and exits 1 with --strict). --record writes this run's figures as the new baseline; do that only
// with a change whose cost or saving is understood and written up in BENCHMARKS.md.
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { startHub, tempDir } from "../test/support/processes.ts";
import { machineInfo, printMachine } from "./_machine.ts";
import { median, memoryOf, mib } from "./_proc-stats.ts";
import { pssOf, runAgent, shippedAgent } from "./_shipped-agent.ts";

const BASELINE = resolve(import.meta.dir, "agent-memory-baseline.json");
const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: {
    settle: { type: "string", default: "60" },
    measure: { type: "string", default: "60" },
    tolerance: { type: "string", default: "1" },
    binary: { type: "string" },
    record: { type: "boolean", default: false },
    strict: { type: "boolean", default: false },
  },
});

interface Baseline {
  rss_median_mib: number;
  rss_max_mib: number;
  pss_median_mib: number;
  commit: string;
  date: string;
  command: string;
  note: string;
}

function readBaseline(): Baseline | undefined {
  try {
    return JSON.parse(readFileSync(BASELINE, "utf8")) as Baseline;
  } catch {
    return undefined;
  }
}

const info = machineInfo();
printMachine(info);
using dir = tempDir("novacron-memory-guard-");
const binary = shippedAgent(join(dir.path, "dist"), opts.binary);
await using hub = await startHub({ data: join(dir.path, "hub") });
const agent = await runAgent({
  binary: [binary],
  data: join(dir.path, "agent"),
  nodeId: "guard",
  hub: { url: hub.wsUrl, joinToken: hub.joinToken },
});
const pid = agent.proc.pid!;
let rss: number[] = [];
let pss: number[] = [];
try {
  await Bun.sleep(Number(opts.settle) * 1000);
  for (let i = 0; i < Number(opts.measure); i++) {
    const m = memoryOf(pid);
    const p = pssOf(pid);
    if (!m || p === undefined) throw new Error(`the agent exited: ${agent.proc.lines.slice(-5).join(" | ")}`);
    rss.push(mib(m.rss));
    pss.push(mib(p));
    await Bun.sleep(1000);
  }
} finally {
  await agent.proc.kill("SIGTERM");
}
rss = rss.sort((a, b) => a - b);
pss = pss.sort((a, b) => a - b);
const now: Baseline = {
  rss_median_mib: Number(median(rss).toFixed(2)),
  rss_max_mib: Number(rss.at(-1)!.toFixed(2)),
  pss_median_mib: Number(median(pss).toFixed(2)),
  commit: info.commit,
  date: info.date,
  command: info.command,
  note: "shipped agent (npm run build, linux-x64), WebSocket to a local hub, 1 s sampling, alone on the machine apart from the hub",
};
const before = readBaseline();
console.log(
  `\nshipped agent, connected, 1 s sampling: RSS median ${now.rss_median_mib} MiB, max ${now.rss_max_mib}, PSS median ${now.pss_median_mib} (${rss.length} readings after ${opts.settle} s)`,
);
let warned = false;
if (!before) {
  console.log(`no recorded figure in ${BASELINE}; run with --record to keep this one`);
} else {
  const rise = now.rss_median_mib - before.rss_median_mib;
  console.log(
    `recorded: RSS median ${before.rss_median_mib} MiB at ${before.commit} (${before.date.slice(0, 10)}); now ${rise >= 0 ? "+" : ""}${rise.toFixed(2)} MiB`,
  );
  if (rise > Number(opts.tolerance)) {
    warned = true;
    console.log(
      `WARNING: the shipped agent's median RSS rose ${rise.toFixed(2)} MiB past the recorded ${before.rss_median_mib} MiB (tolerance ${opts.tolerance} MiB): find the change that did it, or record a new figure with --record and say why in BENCHMARKS.md`,
    );
  }
}
if (opts.record) {
  writeFileSync(BASELINE, `${JSON.stringify(now, null, 2)}\n`);
  console.log(`recorded in ${BASELINE}`);
}
// exitCode, not exit(): the hub above is stopped when this module's `await using` scope ends.
process.exitCode = warned && opts.strict ? 1 : 0;

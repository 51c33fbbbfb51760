// What each memory cut saves: the shipped agent under runtime settings side by side, connected, 1 s sampling.
//
//   bun bench/agent-memory-cuts.ts [--settle 60] [--measure 60] [--binary PATH]
//                                  [--variant 'NAME|K=V,K=V|--flag value[|BINARY]']... [--out bench/out/agent-memory-cuts.json]
//
// Builds the agent as `npm run build` does (or takes --binary), starts a real hub, then one agent
// per variant at once, each over WebSocket with 1 s sampling. A variant is a name, environment
// settings (BUN_JSC_*, MIMALLOC_*, NOVACRON_*), extra agent flags and optionally another binary (a
// build with other compile options); with no --variant the default
// set below runs. After --settle seconds every agent is read once a second for --measure seconds:
// RSS (median and max), PSS, anonymous and file-backed parts, and CPU as a share of one core. Every
// row is compared with the first one ("shipped"), measured in the same run.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { type Proc, startHub, tempDir } from "../test/support/processes.ts";
import { machineInfo, printMachine, table } from "./_machine.ts";
import { CLK_TCK, cpuTicksOf, median, memoryOf, mib } from "./_proc-stats.ts";
import { pssOf, runAgent, shippedAgent } from "./_shipped-agent.ts";

const ROOT = resolve(import.meta.dir, "..");
const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: {
    settle: { type: "string", default: "60" },
    measure: { type: "string", default: "60" },
    binary: { type: "string" },
    variant: { type: "string", multiple: true, default: [] },
    out: { type: "string", default: "bench/out/agent-memory-cuts.json" },
  },
});

interface Variant {
  name: string;
  env: Record<string, string>;
  args: string[];
  binary?: string;
}

const DEFAULTS = [
  "shipped||",
  "useDFGJIT=false|BUN_JSC_useDFGJIT=false|",
  "useJIT=false (interpreter only)|BUN_JSC_useJIT=false|",
  "mimalloc purge at once|MIMALLOC_PURGE_DELAY=0|",
];

function parseVariant(spec: string): Variant {
  const [name, env = "", args = "", binary] = spec.split("|");
  if (!name) throw new Error(`--variant ${spec}: give NAME|K=V,...|--flags`);
  return {
    name,
    env: Object.fromEntries(
      env
        .split(",")
        .filter(Boolean)
        .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
    ),
    args: args.split(" ").filter(Boolean),
    ...(binary ? { binary: resolve(binary) } : {}),
  };
}

interface Row {
  name: string;
  rss: number;
  rssMax: number;
  pss: number;
  anon: number;
  file: number;
  cpuPct: number;
  error?: string;
}

async function main() {
  const info = machineInfo();
  printMachine(info);
  const variants = (opts.variant!.length > 0 ? opts.variant! : DEFAULTS).map(parseVariant);
  using dir = tempDir("novacron-memory-cuts-");
  const binary = shippedAgent(join(dir.path, "dist"), opts.binary);
  await using hub = await startHub({ data: join(dir.path, "hub") });
  const procs: Proc[] = [];
  const rows: Row[] = [];
  try {
    const agents = [];
    for (const [i, v] of variants.entries()) {
      const a = await runAgent({
        binary: [v.binary ?? binary],
        data: join(dir.path, `a${i}`),
        nodeId: `cut-${i}`,
        hub: { url: hub.wsUrl, joinToken: hub.joinToken },
        env: v.env,
        args: v.args,
      });
      procs.push(a.proc);
      agents.push(a);
    }
    console.error(`${agents.length} agents up; settling ${opts.settle} s, then measuring ${opts.measure} s`);
    await Bun.sleep(Number(opts.settle) * 1000);
    const reads = agents.map(() => [] as { rss: number; pss: number; anon: number; file: number }[]);
    const ticks0 = agents.map((a) => cpuTicksOf(a.proc.pid!) ?? Number.NaN);
    const t0 = performance.now();
    for (let s = 0; s < Number(opts.measure); s++) {
      for (const [i, a] of agents.entries()) {
        const m = memoryOf(a.proc.pid!);
        const pss = pssOf(a.proc.pid!);
        if (m && pss !== undefined) reads[i]!.push({ ...m, pss });
      }
      await Bun.sleep(Math.max(0, t0 + (s + 1) * 1000 - performance.now()));
    }
    const seconds = (performance.now() - t0) / 1000;
    for (const [i, a] of agents.entries()) {
      const r = reads[i]!;
      const ticks = (cpuTicksOf(a.proc.pid!) ?? Number.NaN) - ticks0[i]!;
      rows.push({
        name: variants[i]!.name,
        rss: mib(median(r.map((x) => x.rss))),
        rssMax: mib(Math.max(...r.map((x) => x.rss))),
        pss: mib(median(r.map((x) => x.pss))),
        anon: mib(median(r.map((x) => x.anon))),
        file: mib(median(r.map((x) => x.file))),
        cpuPct: (ticks / CLK_TCK / seconds) * 100,
        ...(a.proc.running ? {} : { error: "exited" }),
      });
    }
  } finally {
    for (const p of procs) await p.kill("SIGTERM");
  }
  const base = rows[0]!;
  const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : "-");
  const d = (x: number) => (Number.isFinite(x) ? `${x >= 0 ? "+" : ""}${x.toFixed(1)}` : "-");
  console.log(
    `\n${binary}, WebSocket to one local hub, 1 s sampling; all at once; settle ${opts.settle} s, measure ${opts.measure} s`,
  );
  console.log(
    table([
      ["variant", "RSS median", "Δ", "RSS max", "PSS", "Δ PSS", "anon", "file", "CPU % core", "CPU ×"],
      ...rows.map((r) => [
        r.error ? `${r.name} (${r.error})` : r.name,
        f(r.rss),
        r === base ? "base" : d(r.rss - base.rss),
        f(r.rssMax),
        f(r.pss),
        r === base ? "base" : d(r.pss - base.pss),
        f(r.anon),
        f(r.file),
        f(r.cpuPct, 3),
        f(r.cpuPct / base.cpuPct, 2),
      ]),
    ]),
  );
  console.log(
    "MiB. PSS shares the executable's pages among the agents here, so it is lower than one agent alone.",
  );
  const out = resolve(ROOT, opts.out);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify({ ...info, binary, variants, rows }, null, 2)}\n`);
  console.log(`wrote ${out}`);
}

await main();
process.exit(0);

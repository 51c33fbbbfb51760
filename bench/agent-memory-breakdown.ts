// Where every MiB of the agent's resident memory goes: mappings, JS heap, and each module's share by config.
//
//   bun bench/agent-memory-breakdown.ts [--settle 45] [--measure 20] [--parallel 0] [--tasks 50]
//                                       [--no-compiled] [--set all|modules] [--out bench/out/agent-memory-breakdown.json]
//
// Every agent is the real one (`bun agent/main.ts run`, and the compiled agent), with 1 s sampling,
// connected to a real hub over WebSocket or through a private Mosquitto, or standalone. It runs through
// bench/_agent-with-probe.ts, which answers SIGUSR2 with its JSC heap figures and imports
// agent/main.ts with the same argv; one variant of each kind runs without the probe to show what the
// probe costs. Modules are switched on and off through config, and each one is also left out in turn
// (bench/_agent-without.ts, compiled: the rows "compiled, ws, without X"; their Δ against "compiled,
// ws, all modules" is that module's running share; its code stays loaded). `--set modules` runs only
// those rows.
//
// After --settle seconds (tasks are assigned and running before the settle starts), each process is
// read once a second for --measure seconds: /proc/<pid>/smaps split by mapping (bench/_smaps.ts) and
// one probe reading. The table shows medians. Variants run --parallel at a time (0: all at once):
// resident pages do not depend on neighbours, only start-up time does, which is not measured here.
import { mkdirSync, readlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { startMosquitto } from "../test/support/mosquitto.ts";
import { freePort } from "../test/support/ports.ts";
import { type HubHandle, Proc, startHub, tempDir } from "../test/support/processes.ts";
import { waitFor } from "../test/support/wait.ts";
import { assignTasks } from "./_assign-tasks.ts";
import { EXAMPLE } from "./_example-pipeline.ts";
import { residentSections, sectionsOf } from "./_exe-pages.ts";
import { type HeapReading, PROBE_PREFIX } from "./_heap-probe.ts";
import { machineInfo, printMachine, table } from "./_machine.ts";
import { descendantsOf, median, mib } from "./_proc-stats.ts";
import { BREAKDOWN_KEYS, breakDown, type RssBreakdown, readVmas, type Vma } from "./_smaps.ts";

const ROOT = resolve(import.meta.dir, "..");
const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: {
    settle: { type: "string", default: "45" },
    measure: { type: "string", default: "20" },
    parallel: { type: "string", default: "0" },
    tasks: { type: "string", default: "50" },
    "no-compiled": { type: "boolean", default: false },
    set: { type: "string", default: "all" },
    out: { type: "string", default: "bench/out/agent-memory-breakdown.json" },
  },
});
const settleS = Number(opts.settle);
const measureS = Math.max(1, Number(opts.measure));
const tasks = Number(opts.tasks);
const bun = process.execPath;
const HEAP_KEYS = [
  "heapSize",
  "heapCapacity",
  "extraMemorySize",
  "objectCount",
  "protectedObjectCount",
  "mallocInUse",
  "mallocCommitted",
] as const satisfies readonly (keyof HeapReading)[];

interface Variant {
  name: string;
  /** The row its Δ is taken against. */
  base: string;
  cmd: string[];
  env?: Record<string, string>;
  /** Data directory of an agent (its SQLite files are counted apart). */
  data?: string;
  /** The process answers SIGUSR2 with heap figures. */
  probe: boolean;
  /** Log line that says the process is up. */
  ready?: RegExp;
  /** Run after it is up, before the settle period (e.g. assign workloads). */
  prepare?: (pid: number) => Promise<void>;
}

interface Result {
  name: string;
  base: string;
  /** Medians, MiB. */
  rss: Partial<Record<keyof RssBreakdown, number>>;
  /** Medians (bytes and counts), when the process has the probe. */
  heap?: Partial<Record<(typeof HEAP_KEYS)[number], number>>;
  topTypes?: [string, number][];
  /** Resident file pages of the executable per ELF section at the end of the window, MiB. */
  exeSections?: Record<string, number>;
  /** The largest anonymous mappings at the last reading, for checking the classification. */
  largestAnon?: { start: string; size_mib: number; perms: string; rss_mib: number }[];
  readings: number;
  error?: string;
}

const live = new Set<Proc>();
const strays = new Set<number>();
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    for (const p of live) void p.kill("SIGKILL");
    for (const pid of strays) killQuietly(pid);
    process.exit(130);
  });
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {}
}

/** Compiles `entry` like packaging/build/compile.ts does (for this machine); returns the binary's path. */
function compile(entry: string, outfile: string): string {
  const cmd = [
    bun,
    "build",
    "--compile",
    "--minify",
    "--no-compile-autoload-dotenv",
    "--no-compile-autoload-bunfig",
    entry,
    "--outfile",
    outfile,
  ];
  const r = Bun.spawnSync(cmd, { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} failed: ${r.stderr}`);
  return outfile;
}

function probeReadings(lines: string[]): HeapReading[] {
  return lines
    .filter((l) => l.startsWith(PROBE_PREFIX))
    .map((l) => JSON.parse(l.slice(PROBE_PREFIX.length)) as HeapReading);
}

async function measure(v: Variant): Promise<Result> {
  const proc = new Proc(v.name, v.cmd, v.env ?? {});
  proc.start();
  live.add(proc);
  const result: Result = { name: v.name, base: v.base, rss: {}, readings: 0 };
  try {
    if (v.ready) await proc.waitForLine(v.ready, 60_000);
    const pid = proc.pid!;
    await v.prepare?.(pid);
    for (const kid of descendantsOf(pid)) strays.add(kid);
    await Bun.sleep(settleS * 1000);
    const exe = readlinkSync(`/proc/${pid}/exe`);
    const parts: RssBreakdown[] = [];
    const from = proc.lines.length;
    let last: Vma[] | undefined;
    for (let i = 0; i < measureS; i++) {
      const vmas = readVmas(pid);
      if (!vmas || !proc.running) throw new Error(`exited: ${proc.lines.slice(-5).join(" | ")}`);
      parts.push(breakDown(vmas, exe, v.data));
      last = vmas;
      if (v.probe) process.kill(pid, "SIGUSR2");
      await Bun.sleep(1000);
    }
    result.readings = parts.length;
    for (const k of BREAKDOWN_KEYS) result.rss[k] = mib(median(parts.map((p) => p[k])));
    const sections = residentSections(pid, last ?? [], exe, sectionsOf(exe));
    result.exeSections = Object.fromEntries(
      Object.entries(sections)
        .filter(([, b]) => b >= 64 * 1024)
        .map(([name, b]) => [name, mib(b)]),
    );
    result.largestAnon = (last ?? [])
      .filter((m) => m.anon > 0 && (m.path === "" || m.path.startsWith("[")))
      .sort((a, b) => b.anon - a.anon)
      .slice(0, 8)
      .map((m) => ({
        start: m.start.toString(16),
        size_mib: mib(m.end - m.start),
        perms: m.perms,
        rss_mib: mib(m.anon),
      }));
    if (v.probe) {
      process.kill(pid, "SIGUSR1");
      await waitFor(() => probeReadings(proc.lines.slice(from)).some((r) => r.topTypes), {
        what: `${v.name}: heap probe`,
        timeoutMs: 5_000,
      });
      const readings = probeReadings(proc.lines.slice(from));
      const plain = readings.filter((r) => !r.topTypes);
      result.heap = {};
      for (const k of HEAP_KEYS) result.heap[k] = median(plain.map((r) => r[k]));
      result.topTypes = readings.find((r) => r.topTypes)?.topTypes;
    }
  } catch (err) {
    result.error = (err as Error).message.split("\n")[0]!;
  } finally {
    const kids = proc.pid ? descendantsOf(proc.pid) : [];
    await proc.kill("SIGKILL");
    live.delete(proc);
    // Supervised tasks run in their own session and outlive the agent by design.
    for (const kid of [...kids, ...strays]) killQuietly(kid);
  }
  return result;
}

const IDLE = "setInterval(() => {}, 1000);";
const PROBE = `import { installHeapProbe } from "./bench/_heap-probe.ts"; installHeapProbe();`;
const CRYPTO_USE = [
  `import { createCipheriv, createHash, createHmac, diffieHellman, generateKeyPairSync, randomBytes } from "node:crypto";`,
  `const a = generateKeyPairSync("x25519"); const b = generateKeyPairSync("x25519");`,
  `const k = diffieHellman({ privateKey: a.privateKey, publicKey: b.publicKey });`,
  `const c = createCipheriv("aes-256-gcm", createHash("sha256").update(k).digest(), randomBytes(12));`,
  `c.update(Buffer.alloc(600)); c.final(); c.getAuthTag(); createHmac("sha256", k).update("x").digest();`,
].join("\n");

function bareVariants(): Variant[] {
  const e = (name: string, code: string): Variant => ({
    name,
    base: "bun -e idle",
    cmd: [bun, "-e", `${PROBE}\n${code}\n${IDLE}`],
    probe: true,
  });
  return [
    e("bun -e idle", ""),
    e("bun -e + import node:crypto", `import "node:crypto";`),
    e("bun -e + node:crypto used as the agent does", CRYPTO_USE),
    e("bun -e + import agent/agent.ts (not started)", `import "./agent/agent.ts";`),
  ];
}

interface Links {
  tmp: string;
  hub: HubHandle;
  brokerUrl: string;
}

interface Binaries {
  probe: string;
  plain: string;
  without: string;
}

/** Modules that can be left out one at a time (the store cannot: every other module needs it). */
const MODULES = ["tasks", "cache", "stream", "rules", "collect", "link", "api"] as const;

function agentVariants(l: Links, bins: Binaries | undefined): Variant[] {
  let n = 0;
  const agent = (
    name: string,
    base: string,
    cmd: string[],
    o: { hub?: string; args?: string[]; env?: Record<string, string>; probe?: boolean; tasks?: number } = {},
  ): Variant => {
    n++;
    const data = join(l.tmp, `agent-${n}`);
    const nodeId = `mem-${n}`;
    const api = `127.0.0.1:${freePort()}`;
    const args = ["run", "--data", data, "--node-id", nodeId, "--sample-interval", "1s", "--api", api];
    if (o.hub) args.push("--hub", o.hub, "--join-token", l.hub.joinToken);
    const v: Variant = {
      name,
      base,
      cmd: [...cmd, ...args, ...(o.args ?? [])],
      env: o.env,
      data,
      probe: o.probe ?? true,
      ready: o.env?.AGENT_WITHOUT ? /agent started/ : /local API listening/,
    };
    if (o.tasks) v.prepare = () => assignTasks(l.hub, `http://${api}`, nodeId, o.tasks!);
    return v;
  };
  const run = [bun, "bench/_agent-with-probe.ts"];
  const ws = l.hub.wsUrl;
  const B = "bun run, ws";
  const out = [
    agent("bun run, standalone", B, run),
    agent(B, B, run, { hub: ws }),
    agent("bun run, ws, no probe", B, [bun, "agent/main.ts"], { hub: ws, probe: false }),
    agent("bun run, mqtt", B, run, { hub: l.brokerUrl }),
    agent("bun run, ws + pipeline", B, run, {
      hub: ws,
      args: ["--pipelines", JSON.stringify(EXAMPLE.pipelines)],
    }),
    agent("bun run, ws + ingest_mqtt", B, run, {
      hub: ws,
      args: ["--ingest-mqtt", JSON.stringify({ url: l.brokerUrl, topics: ["sensors/#"] })],
    }),
    agent("bun run, ws, no rules", B, run, { hub: ws, args: ["--rules", "[]"] }),
    agent(`bun run, ws + ${tasks} tasks`, B, run, { hub: ws, tasks }),
    agent("bun --smol run, ws", B, [bun, "--smol", "bench/_agent-with-probe.ts"], { hub: ws }),
    agent("bun run, ws, useDFGJIT=false", B, run, { hub: ws, env: { BUN_JSC_useDFGJIT: "false" } }),
  ];
  if (bins) out.push(...moduleVariants(agent, bins, ws));
  if (opts.set === "modules") return out.filter((v) => v.base === M);
  if (bins) {
    const C = "compiled, ws";
    out.push(
      agent("compiled, standalone", C, [bins.probe]),
      agent(C, C, [bins.probe], { hub: ws }),
      agent("compiled, ws, no probe", C, [bins.plain], { hub: ws, probe: false }),
      agent("compiled, mqtt", C, [bins.probe], { hub: l.brokerUrl }),
    );
  }
  return out;
}

const M = "compiled, ws, all modules";

/** The compiled agent with every module, then without each one in turn. */
function moduleVariants(
  agent: (
    name: string,
    base: string,
    cmd: string[],
    o?: { hub?: string; env?: Record<string, string> },
  ) => Variant,
  bins: Binaries,
  ws: string,
): Variant[] {
  return [
    agent(M, M, [bins.without], { hub: ws }),
    ...MODULES.map((m) =>
      agent(`compiled, ws, without ${m}`, M, [bins.without], { hub: ws, env: { AGENT_WITHOUT: m } }),
    ),
  ];
}

async function runAll(variants: Variant[], parallel: number): Promise<Result[]> {
  const results: Result[] = [];
  const step = parallel > 0 ? parallel : variants.length;
  for (let i = 0; i < variants.length; i += step) {
    const batch = variants.slice(i, i + step);
    console.error(`measuring ${batch.length}: ${batch.map((v) => v.name).join("; ")}`);
    results.push(...(await Promise.all(batch.map(measure))));
  }
  return results;
}

function render(results: Result[]): string {
  const f = (x: number | undefined, d = 1) => (x === undefined || Number.isNaN(x) ? "-" : x.toFixed(d));
  const signed = (x: number) => (Number.isNaN(x) ? "-" : `${x >= 0 ? "+" : ""}${x.toFixed(1)}`);
  const rows: (string | number)[][] = [
    [
      "variant",
      "RSS",
      "Δ RSS",
      "exe file",
      "of it .text",
      "libs, db",
      "anon",
      "arena",
      "JS heap cap",
      "JS heap live",
      "extra",
      "malloc in use",
      "JIT",
      "shapes",
      "stacks",
      "glibc",
      "exe data",
      "other anon",
      "objects",
    ],
  ];
  for (const r of results) {
    const base = results.find((x) => x.name === r.base);
    const h = r.heap;
    const m = (b: number | undefined) => (b === undefined ? undefined : mib(b));
    rows.push([
      r.error ? `${r.name} (failed: ${r.error})` : r.name,
      f(r.rss.rss),
      r === base ? "base" : base ? signed((r.rss.rss ?? Number.NaN) - (base.rss.rss ?? Number.NaN)) : "-",
      f(r.rss.exeFile),
      f(r.exeSections?.[".text"]),
      f((r.rss.libFile ?? 0) + (r.rss.dataFile ?? 0) + (r.rss.otherFile ?? 0)),
      f(r.rss.anon),
      f(r.rss.anonArena),
      f(m(h?.heapCapacity)),
      f(m(h?.heapSize)),
      f(m(h?.extraMemorySize)),
      f(m(h?.mallocInUse)),
      f(r.rss.anonJit, 2),
      f(r.rss.anonStructures, 2),
      f(r.rss.anonStacks, 2),
      f(r.rss.anonGlibc, 2),
      f(r.rss.anonExe),
      f(r.rss.anonOther, 2),
      h?.objectCount === undefined ? "-" : `${(h.objectCount / 1000).toFixed(1)}k`,
    ]);
  }
  return [
    table(rows),
    "MiB, medians of one reading a second. RSS = exe file + libs, db + anon. Δ RSS: bare processes against",
    "`bun -e idle`, `bun run` agents against `bun run, ws`, compiled agents against `compiled, ws`.",
    "exe file: clean pages of the bun binary or the compiled agent (.text: its machine code, read at the end",
    "of the window from pagemap; the rest is mostly .rodata); libs, db: shared libraries and the",
    "SQLite -shm. anon = arena + JIT + shapes + stacks + glibc + exe data + other anon, where arena is",
    "Bun's allocator (mimalloc) reservation, which holds the JS heap (JS heap cap/live, from the probe)",
    "and Bun's native allocations (malloc in use, mimalloc's own counter); extra: memory outside the",
    "GC heap that JS objects own; shapes: JSC's Structure heap; exe data: .data/.bss of the executable.",
  ].join("\n");
}

async function main() {
  const info = machineInfo();
  mkdirSync(join(ROOT, "bench/out"), { recursive: true });
  using dir = tempDir("novacron-agent-memory-breakdown-");
  let bins: Binaries | undefined;
  if (!opts["no-compiled"]) {
    const t0 = performance.now();
    bins = {
      probe: compile("bench/_agent-with-probe.ts", join(dir.path, "novacron-agent-probe")),
      plain: compile("agent/main.ts", join(dir.path, "novacron-agent")),
      without: compile("bench/_agent-without.ts", join(dir.path, "novacron-agent-without")),
    };
    console.error(`compiled three agents in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  await using broker = await startMosquitto(dir.path);
  await using hub = await startHub({ data: join(dir.path, "hub"), mqtt: broker.url });
  const agents = agentVariants({ tmp: dir.path, hub, brokerUrl: broker.url }, bins);
  const variants = opts.set === "modules" ? agents : [...bareVariants(), ...agents];
  const t0 = performance.now();
  const results = await runAll(variants, Number(opts.parallel));
  printMachine(info);
  console.log(
    `settle ${settleS} s, measure ${measureS} s, ${Number(opts.parallel) || variants.length} at a time, ` +
      `${((performance.now() - t0) / 1000).toFixed(0)} s in all\n`,
  );
  console.log(render(results));
  const out = resolve(ROOT, opts.out);
  writeFileSync(
    out,
    `${JSON.stringify({ ...info, settle_s: settleS, measure_s: measureS, tasks, results }, null, 2)}\n`,
  );
  console.log(`\nwrote ${out}`);
}

await main();

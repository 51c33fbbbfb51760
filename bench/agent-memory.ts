// Where the agent's resident memory goes: bare Bun, each dependency alone, our modules, and the agent under runtime options.
//
//   bun bench/agent-memory.ts [--settle 60] [--measure 10] [--parallel 6] [--out bench/out/agent-memory.json]
//
// Every variant is its own process that stays alive (a 1 s interval, like the agent's tick). After
// --settle seconds its VmRSS/RssAnon/RssFile are read every 500 ms for --measure seconds and the
// medians are reported, with the difference to the bare runtime (imports) or to the agent under
// `bun run` (runtime options). Agents run with 1 s sampling, connected to a real hub (WebSocket) or
// through a private Mosquitto, like bench/footprint.ts. Variants run --parallel at a time; memory
// does not depend on the neighbours, only start-up time does, and that is not measured here.
import { mkdirSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { startMosquitto } from "../test/support/mosquitto.ts";
import { freePort } from "../test/support/ports.ts";
import { Proc, startHub, tempDir } from "../test/support/processes.ts";
import { machineInfo, printMachine, table } from "./_machine.ts";
import { CLK_TCK, cpuTicksOf, median, memoryOf, mib } from "./_proc-stats.ts";

const ROOT = resolve(import.meta.dir, "..");
const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: {
    settle: { type: "string", default: "60" },
    measure: { type: "string", default: "10" },
    parallel: { type: "string", default: "6" },
    out: { type: "string", default: "bench/out/agent-memory.json" },
  },
});
const settleS = Number(opts.settle);
const measureS = Number(opts.measure);
const parallel = Math.max(1, Math.min(32, Number(opts.parallel)));
const bun = process.execPath;
const IDLE = "setInterval(() => {}, 1000);";
const MiB = 1024 * 1024;

interface Variant {
  name: string;
  group: "runtime" | "import" | "ours" | "agent";
  cmd: string[];
  env?: Record<string, string>;
  /** Log line that says the process is up; default: spawned is enough. */
  ready?: RegExp;
}

interface Result {
  name: string;
  group: string;
  rss_mib: number;
  anon_mib: number;
  file_mib: number;
  rss_max_mib: number;
  cpu_pct: number;
  error?: string;
}

/** Builds a compiled agent with extra `bun build` flags; returns its path. */
function compile(name: string, extra: string[]): string {
  const outfile = join(ROOT, "bench/out", name);
  const cmd = [bun, "build", "--compile", "--minify", ...extra, "agent/main.ts", "--outfile", outfile];
  const r = Bun.spawnSync(cmd, { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} failed: ${r.stderr}`);
  console.error(`built ${name}: ${(statSync(outfile).size / 1e6).toFixed(1)} MB`);
  return outfile;
}

const live = new Set<Proc>();
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    for (const p of live) void p.kill("SIGKILL");
    process.exit(130);
  });
}

async function measure(v: Variant): Promise<Result> {
  const proc = new Proc(v.name, v.cmd, v.env ?? {});
  proc.start();
  live.add(proc);
  try {
    if (v.ready) await proc.waitForLine(v.ready, 30_000);
    await Bun.sleep(settleS * 1000);
    const pid = proc.pid!;
    const rss: number[] = [];
    const anon: number[] = [];
    const file: number[] = [];
    const t0 = performance.now();
    const ticks0 = cpuTicksOf(pid) ?? 0;
    const n = Math.max(1, Math.round(measureS * 2));
    for (let i = 0; i < n; i++) {
      const m = memoryOf(pid);
      if (!m || !proc.running) throw new Error(`exited: ${proc.lines.slice(-5).join(" | ")}`);
      rss.push(m.rss);
      anon.push(m.anon);
      file.push(m.file);
      await Bun.sleep(500);
    }
    const cpu = (((cpuTicksOf(pid) ?? ticks0) - ticks0) / CLK_TCK / ((performance.now() - t0) / 1000)) * 100;
    return {
      name: v.name,
      group: v.group,
      rss_mib: mib(median(rss)),
      anon_mib: mib(median(anon)),
      file_mib: mib(median(file)),
      rss_max_mib: mib(Math.max(...rss)),
      cpu_pct: cpu,
    };
  } catch (err) {
    const nan = Number.NaN;
    const error = (err as Error).message.split("\n")[0]!;
    return {
      name: v.name,
      group: v.group,
      rss_mib: nan,
      anon_mib: nan,
      file_mib: nan,
      rss_max_mib: nan,
      cpu_pct: nan,
      error,
    };
  } finally {
    await proc.kill("SIGKILL");
    live.delete(proc);
  }
}

const CBOR_SUBPATHS = `import { Encoder } from "cbor-x/encode"; import { Decoder } from "cbor-x/decode";`;
const CBOR_USE = `const e = new Encoder(); e.encode({ a: 1, b: [1, 2] });`;

/** What the WebSocket agent loads, one line each, for leave-one-out: the marginal cost of each in company. */
function agentDeps(tmp: string): Record<string, string> {
  return {
    hono: `import { Hono } from "hono"; const app = new Hono().get("/", (c) => c.text("x")); Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch });`,
    "cbor-x": `${CBOR_SUBPATHS} ${CBOR_USE} new Decoder().decode(e.encode([1]));`,
    valibot: `import * as v from "valibot"; v.parse(v.object({ a: v.number() }), { a: 1 });`,
    "bun:sqlite": `import { Database } from "bun:sqlite"; const db = new Database("${tmp}/deps-" + process.pid + ".db"); db.exec("PRAGMA journal_mode=WAL"); db.exec("create table t(a)"); const q = db.prepare("insert into t values (?)"); setInterval(() => q.run(Date.now()), 1000);`,
    "node:zlib": `import { zstdDecompressSync } from "node:zlib"; void zstdDecompressSync;`,
    "node:crypto": `import { randomUUID } from "node:crypto"; randomUUID();`,
  };
}

function importVariants(tmp: string, brokerUrl: string): Variant[] {
  const AGENT_DEPS = agentDeps(tmp);
  const e = (name: string, group: Variant["group"], code: string, flags: string[] = []): Variant => ({
    name,
    group,
    cmd: [bun, ...flags, "-e", `${code}\n${IDLE}`],
  });
  return [
    e("bun -e idle", "runtime", ""),
    e("bun --smol -e idle", "runtime", "", ["--smol"]),
    e(
      "+ hono (new Hono, 1 route)",
      "import",
      `import { Hono } from "hono"; new Hono().get("/", (c) => c.text("x"));`,
    ),
    e("+ mqtt (import only)", "import", `import "mqtt";`),
    e(
      "+ mqtt connected, subscribed",
      "import",
      `import mqtt from "mqtt"; const c = await mqtt.connectAsync("${brokerUrl}"); await c.subscribeAsync("x/#");`,
    ),
    e("+ cbor-x (main entry)", "import", `import { Encoder } from "cbor-x"; ${CBOR_USE}`),
    {
      ...e("+ cbor-x (main), native addon off", "import", `import { Encoder } from "cbor-x"; ${CBOR_USE}`),
      env: { CBOR_NATIVE_ACCELERATION_DISABLED: "true" },
    },
    e("+ cbor-x/encode + cbor-x/decode", "import", `${CBOR_SUBPATHS} ${CBOR_USE}`),
    e(
      "+ valibot (schema, parse)",
      "import",
      `import * as v from "valibot"; v.parse(v.object({ a: v.number() }), { a: 1 });`,
    ),
    e("+ systeminformation (import)", "import", `import "systeminformation";`),
    e("+ systeminformation osInfo()", "import", `import si from "systeminformation"; await si.osInfo();`),
    e(
      "+ bun:sqlite WAL, 1 insert/s",
      "import",
      `import { Database } from "bun:sqlite"; const db = new Database("${tmp}/m.db"); db.exec("PRAGMA journal_mode=WAL"); db.exec("create table if not exists t(a)"); const q = db.prepare("insert into t values (?)"); setInterval(() => q.run(Date.now()), 1000);`,
    ),
    e(
      "+ Bun.serve (listening)",
      "import",
      `Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("ok") });`,
    ),
    e("+ node:crypto randomUUID", "import", `import { randomUUID } from "node:crypto"; randomUUID();`),
    e("+ node:zlib", "import", `import { zstdDecompressSync } from "node:zlib"; void zstdDecompressSync;`),
    e("agent's deps together (no mqtt)", "import", Object.values(AGENT_DEPS).join("\n")),
    ...Object.keys(AGENT_DEPS).map((k) =>
      e(
        `  together without ${k}`,
        "import",
        Object.entries(AGENT_DEPS)
          .filter(([name]) => name !== k)
          .map(([, code]) => code)
          .join("\n"),
      ),
    ),
    e(
      "  together + mqtt connected",
      "import",
      `${Object.values(AGENT_DEPS).join("\n")}\nconst { default: mqtt } = await import("mqtt"); await (await mqtt.connectAsync("${brokerUrl}")).subscribeAsync("x/#");`,
    ),
    e("import shared/protocol", "ours", `import "./shared/protocol/index.ts";`),
    e("import shared/link", "ours", `import "./shared/link/index.ts";`),
    e("import agent/agent.ts (no start)", "ours", `import "./agent/agent.ts";`),
  ];
}

function agentVariants(
  tmp: string,
  hubWs: string,
  brokerUrl: string,
  joinToken: string,
  bins: Record<string, string>,
) {
  let n = 0;
  const agent = (
    name: string,
    cmd: string[],
    hub: string | null,
    env: Record<string, string> = {},
  ): Variant => {
    n++;
    const args = [
      "run",
      "--data",
      join(tmp, `agent-${n}`),
      "--node-id",
      `mem-${n}`,
      "--sample-interval",
      "1s",
    ];
    args.push("--api", `127.0.0.1:${freePort()}`);
    if (hub) args.push("--hub", hub, "--join-token", joinToken);
    return { name, group: "agent", cmd: [...cmd, ...args], env, ready: /local API listening/ };
  };
  const run = [bun, "agent/main.ts"];
  const ram = (m: number) => ({ BUN_JSC_forceRAMSize: String(m * MiB) });
  return [
    agent("agent bun run, ws", run, hubWs),
    agent("agent bun run, standalone", run, null),
    agent("agent bun --smol run, ws", [bun, "--smol", "agent/main.ts"], hubWs),
    agent("agent bun run, ws, forceRAMSize=64MiB", run, hubWs, ram(64)),
    agent("agent bun run, ws, forceRAMSize=256MiB", run, hubWs, ram(256)),
    agent("agent compiled, ws", [bins.plain!], hubWs),
    agent("agent compiled, standalone", [bins.plain!], null),
    agent("agent compiled, ws, forceRAMSize=64MiB", [bins.plain!], hubWs, ram(64)),
    agent("agent compiled --smol (exec-argv), ws", [bins.smol!], hubWs),
    agent("agent compiled --bytecode, ws", [bins.bytecode!], hubWs),
    agent("agent compiled, ws, useJIT=false", [bins.plain!], hubWs, { BUN_JSC_useJIT: "false" }),
    agent("agent compiled, ws, useFTLJIT=false", [bins.plain!], hubWs, { BUN_JSC_useFTLJIT: "false" }),
    agent("agent compiled, ws, useDFGJIT=false", [bins.plain!], hubWs, { BUN_JSC_useDFGJIT: "false" }),
    agent("agent compiled, mqtt", [bins.plain!], brokerUrl),
    agent("agent compiled --smol, mqtt", [bins.smol!], brokerUrl),
  ];
}

async function runAll(variants: Variant[]): Promise<Result[]> {
  const results: Result[] = [];
  for (let i = 0; i < variants.length; i += parallel) {
    const batch = variants.slice(i, i + parallel);
    console.error(`measuring ${batch.map((v) => v.name).join("; ")}`);
    results.push(...(await Promise.all(batch.map(measure))));
  }
  return results;
}

function print(results: Result[]): string {
  const bare = results.find((r) => r.name === "bun -e idle")!;
  const agentBase = results.find((r) => r.name === "agent bun run, ws")!;
  const f = (x: number, d = 1) => (Number.isNaN(x) ? "-" : x.toFixed(d));
  const signed = (x: number) => (Number.isNaN(x) ? "-" : `${x >= 0 ? "+" : ""}${x.toFixed(1)}`);
  const rows: (string | number)[][] = [["variant", "RSS", "anon", "file", "Δ RSS", "Δ anon", "max", "CPU %"]];
  for (const r of results) {
    const base = r.group === "agent" ? agentBase : bare;
    const self = r === base;
    rows.push([
      r.error ? `${r.name} (failed: ${r.error})` : r.name,
      f(r.rss_mib),
      f(r.anon_mib),
      f(r.file_mib),
      self ? "base" : signed(r.rss_mib - base.rss_mib),
      self ? "base" : signed(r.anon_mib - base.anon_mib),
      f(r.rss_max_mib),
      f(r.cpu_pct, 2),
    ]);
  }
  return [
    table(rows),
    "MiB, medians over the measure window. Δ: against `bun -e idle` for runtime/imports/our modules, against",
    "`agent bun run, ws` for agents. anon = RssAnon (heap, JIT code, malloc); file = RssFile+RssShmem",
    "(pages of the bun binary or compiled executable that were touched; clean and shared, but they count in RSS).",
  ].join("\n");
}

async function main() {
  const info = machineInfo();
  mkdirSync(join(ROOT, "bench/out"), { recursive: true });
  const bins = {
    plain: compile("novacron-agent", []),
    smol: compile("novacron-agent-smol", ["--compile-exec-argv=--smol"]),
    bytecode: compile("novacron-agent-bytecode", ["--bytecode", "--format=esm"]),
  };
  using dir = tempDir("novacron-agent-memory-");
  await using broker = await startMosquitto(dir.path);
  await using hub = await startHub({ data: join(dir.path, "hub"), mqtt: broker.url });
  const variants = [
    ...importVariants(dir.path, broker.url),
    ...agentVariants(dir.path, hub.wsUrl, broker.url, hub.joinToken, bins),
  ];
  const results = await runAll(variants);
  printMachine(info);
  console.log(`settle ${settleS} s, measure ${measureS} s, ${parallel} at a time\n`);
  const text = print(results);
  console.log(text);
  const out = resolve(ROOT, opts.out);
  writeFileSync(
    out,
    `${JSON.stringify({ ...info, settle_s: settleS, measure_s: measureS, results }, null, 2)}\n`,
  );
  console.log(`\nwrote ${out}`);
}

await main();

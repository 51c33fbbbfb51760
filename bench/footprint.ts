// Footprint benchmark: our agent (bun run, compiled, over WS and MQTT) and collectd side by side, one run.
//
//   bun bench/footprint.ts [--duration 300] [--out bench/out/footprint.json] [--no-mqtt-agent]
//                          [--extra-env K=V[,K=V]]...
//
// Builds the compiled agent, starts a private Mosquitto and a real hub, three agents and collectd
// (Interval 1, publishing to the same broker), plus one more compiled WebSocket agent per --extra-env
// (runtime settings such as BUN_JSC_useDFGJIT=false, compared in the same run), then samples every process tree once a second:
// RSS from VmRSS, CPU from utime+stime(+cutime+cstime) of the root and all live descendants.
// Prints the machine, a table and the ratios ours/collectd (docs/targets.md); writes JSON.
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import mqtt from "mqtt";
import { startMosquitto } from "../test/support/mosquitto.ts";
import { freePort } from "../test/support/ports.ts";
import { Proc, startHub, tempDir } from "../test/support/processes.ts";
import { waitFor } from "../test/support/wait.ts";
import { COLLECTD, collectdConfig } from "./_collectd.ts";
import { type Binary, renderFootprint, type Subject, summarise } from "./_footprint-report.ts";
import { machineInfo } from "./_machine.ts";
import { CLK_TCK, descendantsOf, sampleTree, startTimeOf } from "./_proc-stats.ts";

const ROOT = resolve(import.meta.dir, "..");

const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: {
    duration: { type: "string", default: "300" },
    out: { type: "string", default: "bench/out/footprint.json" },
    "no-mqtt-agent": { type: "boolean", default: false },
    "extra-env": { type: "string", multiple: true, default: [] },
  },
});
const durationS = Number(opts.duration);
if (!Number.isFinite(durationS) || durationS < 5 || durationS > 24 * 3600) {
  console.error("--duration must be a number of seconds between 5 and 86400");
  process.exit(2);
}
const outPath = resolve(ROOT, opts.out);
const binDir = join(ROOT, "bench/out");
const log = (msg: string) => console.error(`[footprint ${new Date().toISOString().slice(11, 19)}] ${msg}`);

// ---- machine and build -------------------------------------------------------------------------

function machine() {
  const head = Bun.spawnSync(["git", "rev-parse", "--short", "HEAD"], { cwd: ROOT, stdout: "pipe" });
  const dirty = Bun.spawnSync(["git", "status", "--porcelain", "--untracked-files=no"], {
    cwd: ROOT,
    stdout: "pipe",
  });
  return {
    ...machineInfo(),
    collectd: firstLine([COLLECTD, "-h"], /collectd \d[\w.]*/),
    mosquitto: firstLine(["mosquitto", "-h"], /mosquitto version \S+/),
    git: `${head.stdout.toString().trim()}${dirty.stdout.toString().trim() ? " + uncommitted changes" : ""}`,
    clk_tck: CLK_TCK,
  };
}

function loadavg(): string {
  return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
}

function firstLine(cmd: string[], re: RegExp): string {
  try {
    const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
    return re.exec(r.stdout.toString() + r.stderr.toString())?.[0] ?? "unknown";
  } catch {
    return "not installed";
  }
}

/** Builds the agent binary; returns its size, or the error when the build failed. */
function build(outfile: string, target?: string): Binary {
  const cmd = [process.execPath, "build", "--compile", "--minify", "agent/main.ts", "--outfile", outfile];
  if (target) cmd.splice(4, 0, `--target=${target}`);
  const r = Bun.spawnSync(cmd, { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) return { path: outfile, error: (r.stderr.toString() || r.stdout.toString()).trim() };
  const bytes = statSync(outfile).size;
  // A rough stand-in for the shipped archive (docs/targets.md: archive < 50 MB).
  const gzip_bytes = Bun.gzipSync(new Uint8Array(Bun.mmap(outfile)), { level: 9 }).byteLength;
  return { path: outfile, bytes, gzip_bytes };
}

// ---- the run -----------------------------------------------------------------------------------

const subjects: Subject[] = [];
const owned: Proc[] = [];
let cleaning: Promise<void> | undefined;
let stopBroker: (() => Promise<void>) | undefined;

/** Stops everything this run started: SIGTERM, then SIGKILL after 5 s, then any leftover descendants. */
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    // Descendants are remembered with their start time, so that a recycled pid is never signalled.
    const pids = owned
      .flatMap((p) => (p.pid && p.running ? [p.pid, ...descendantsOf(p.pid)] : []))
      .map((pid) => ({ pid, start: startTimeOf(pid) }));
    await Promise.all(
      owned.map(async (p) => {
        if (!p.running) return;
        const timer = setTimeout(() => void p.kill("SIGKILL"), 5_000);
        await p.kill("SIGTERM");
        clearTimeout(timer);
      }),
    );
    for (const { pid, start } of pids) {
      try {
        if (start !== undefined && startTimeOf(pid) === start) process.kill(pid, "SIGKILL");
      } catch {}
    }
    await stopBroker?.();
  })();
  return cleaning;
}

for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    log(`${sig}: stopping everything`);
    void cleanup().finally(() => process.exit(130));
  });
}

function spawn(
  name: string,
  kind: Subject["kind"],
  cmd: string[],
  env: Record<string, string> = {},
): Subject {
  const proc = new Proc(name, cmd, env);
  const spawnedMs = Date.now();
  proc.start();
  owned.push(proc);
  const s: Subject = { name, kind, proc, spawnedMs, samples: [], childPids: new Set() };
  subjects.push(s);
  return s;
}

interface StatusJson {
  connected: boolean;
  started_ms: number;
  first_sample_ms: number | null;
  samples: { produced: number; dropped: number };
  outbox: { pending: number };
}

async function agentStatus(apiUrl: string): Promise<StatusJson> {
  const res = await fetch(`${apiUrl}/v1/status`, { signal: AbortSignal.timeout(2_000) });
  return (await res.json()) as StatusJson;
}

async function startAgentSubject(
  name: string,
  cmd: string[],
  hub: string,
  joinToken: string,
  data: string,
  env: Record<string, string> = {},
) {
  const apiUrl = `http://127.0.0.1:${freePort()}`;
  const nodeId = name.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/-+$/, "");
  const args = ["run", "--data", data, "--hub", hub, "--join-token", joinToken, "--node-id", nodeId];
  args.push("--api", apiUrl.slice("http://".length), "--sample-interval", "1s");
  const s = spawn(name, "agent", [...cmd, ...args], env);
  await s.proc.waitForLine(/local API listening/, 30_000);
  const st = await waitFor(
    async () => {
      const st = await agentStatus(apiUrl);
      return st.connected && st.first_sample_ms !== null ? st : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 50, what: `${name} to connect and take a first sample` },
  );
  const first = st.first_sample_ms!;
  s.startup = {
    internalMs: first - st.started_ms,
    spawnToFirstSampleMs: first - s.spawnedMs,
    how: "first_sample_ms - started_ms (/v1/status); first_sample_ms - spawn time",
  };
  s.extra = { apiUrl, nodeId, hub };
  log(`${name}: up, pid ${s.proc.pid}, first sample ${s.startup.spawnToFirstSampleMs} ms after spawn`);
  return s;
}

async function main() {
  if (!existsSync(COLLECTD)) throw new Error(`${COLLECTD} is missing: apt-get install -y collectd-core`);
  const info = machine();
  log(`building the agent binary into ${binDir}`);
  mkdirSync(binDir, { recursive: true });
  const x64 = build(join(binDir, "novacron-agent"));
  if (x64.error || !x64.bytes) throw new Error(`bun build --compile failed: ${x64.error}`);
  const arm64 = build(join(binDir, "novacron-agent-linux-arm64"), "bun-linux-arm64");

  using dir = tempDir("novacron-footprint-");
  const broker = await startMosquitto(dir.path);
  stopBroker = () => broker.stop();
  try {
    const hub = await startHub({ data: join(dir.path, "hub"), mqtt: broker.url });
    owned.push(hub.proc);
    subjects.push({
      name: "hub (bun run)",
      kind: "infra",
      proc: hub.proc,
      spawnedMs: Date.now(),
      samples: [],
      childPids: new Set(),
    });
    log(`broker ${broker.url}, hub ${hub.wsUrl}`);

    const bun = process.execPath;
    const bin = x64.path;
    await startAgentSubject(
      "agent bun-run ws",
      [bun, "agent/main.ts"],
      hub.wsUrl,
      hub.joinToken,
      join(dir.path, "a"),
    );
    await startAgentSubject("agent compiled ws", [bin], hub.wsUrl, hub.joinToken, join(dir.path, "b"));
    if (!opts["no-mqtt-agent"]) {
      await startAgentSubject("agent compiled mqtt", [bin], broker.url, hub.joinToken, join(dir.path, "c"));
    }
    for (const [i, spec] of (opts["extra-env"] ?? []).entries()) {
      const env = Object.fromEntries(
        spec.split(",").map((kv) => [kv.split("=")[0]!, kv.slice(kv.indexOf("=") + 1)]),
      );
      await startAgentSubject(
        `agent compiled ws ${spec}`,
        [bin],
        hub.wsUrl,
        hub.joinToken,
        join(dir.path, `x${i}`),
        env,
      );
    }

    // Subscribe before collectd starts, so its first message gives its start-up time.
    const sub = await mqtt.connectAsync(broker.url, { clientId: "footprint-bench", reconnectPeriod: 0 });
    let collectdMsgs = 0;
    let firstCollectdMsgMs: number | undefined;
    const topics = new Set<string>();
    sub.on("message", (topic) => {
      collectdMsgs++;
      firstCollectdMsgMs ??= Date.now();
      if (topics.size < 10_000) topics.add(topic);
    });
    try {
      await sub.subscribeAsync("collectd/#", { qos: 0 });
      const cdir = join(dir.path, "collectd");
      mkdirSync(cdir, { recursive: true });
      const conf = join(cdir, "collectd.conf");
      writeFileSync(conf, collectdConfig(cdir, broker.port));
      const testConf = Bun.spawnSync([COLLECTD, "-t", "-C", conf], { stdout: "pipe", stderr: "pipe" });
      if (testConf.exitCode !== 0) throw new Error(`collectd -t refused the config: ${testConf.stderr}`);
      const cd = spawn("collectd", "collectd", [COLLECTD, "-f", "-C", conf]);
      await waitFor(() => firstCollectdMsgMs, {
        timeoutMs: 15_000,
        intervalMs: 20,
        what: `a collectd message on collectd/# (collectd log:\n${cd.proc.lines.slice(-10).join("\n")})`,
      });
      cd.startup = {
        spawnToFirstSampleMs: firstCollectdMsgMs! - cd.spawnedMs,
        how: "first MQTT message on collectd/# - spawn time",
      };
      log(
        `collectd: up, pid ${cd.proc.pid}, first MQTT message ${cd.startup.spawnToFirstSampleMs} ms after spawn`,
      );

      // ---- sampling window ----
      log(`sampling ${subjects.length} process trees every second for ${durationS} s`);
      const msgsAtStart = collectdMsgs;
      // The machine is shared: the load average before and after tells a reader how quiet it was.
      const loadBefore = loadavg();
      const t0 = performance.now();
      const ticks = Math.round(durationS);
      for (let i = 0; i <= ticks; i++) {
        const t = performance.now() - t0;
        for (const s of subjects) {
          if (!s.proc.pid || !s.proc.running) continue;
          const sample = sampleTree(s.proc.pid, t);
          if (!sample) continue;
          s.samples.push(sample);
          for (const k of descendantsOf(s.proc.pid)) s.childPids.add(k);
        }
        const dead = subjects.filter((s) => !s.proc.running);
        if (dead.length > 0) {
          const logs = dead.map((s) => `--- ${s.name} (last lines):\n${s.proc.lines.slice(-15).join("\n")}`);
          throw new Error(`${dead.map((s) => s.name).join(", ")} exited during the run\n${logs.join("\n")}`);
        }
        if (i > 0 && i % 60 === 0) log(`${i} s`);
        const next = t0 + (i + 1) * 1000;
        await Bun.sleep(Math.max(0, next - performance.now()));
      }
      const windowS = (performance.now() - t0) / 1000;
      const load = `loadavg ${loadBefore} at start, ${loadavg()} at end`;
      const collectdRate = (collectdMsgs - msgsAtStart) / windowS;

      // What each agent did in the window, as a check that it really was working.
      for (const s of subjects.filter((x) => x.kind === "agent")) {
        const st = await agentStatus(String(s.extra!.apiUrl));
        const node = await hub.api<{ ingest?: { samples: number } }>(`/api/v1/nodes/${s.extra!.nodeId}`);
        s.extra = {
          ...s.extra,
          connected: st.connected,
          samples_produced: st.samples.produced,
          outbox_pending: st.outbox.pending,
          hub_stored_samples: node.body.ingest?.samples ?? null,
        };
      }
      const cdSubject = subjects.find((s) => s.kind === "collectd")!;
      cdSubject.extra = {
        mqtt_messages: collectdMsgs,
        mqtt_messages_per_s: Number(collectdRate.toFixed(1)),
        mqtt_topics: topics.size,
        example_topics: [...topics].slice(0, 5),
      };
      const rows = subjects.map(summarise);
      const window = `${windowS.toFixed(1)} s, one sample per second per process tree; 1 s sampling everywhere; ${load}`;
      const printed = renderFootprint(info, { x64, arm64 }, rows, window);
      console.log(printed.join("\n"));
      mkdirSync(dirname(outPath), { recursive: true });
      const json = {
        ...info,
        window_s: windowS,
        loadavg: load,
        binaries: { x64, arm64 },
        processes: rows,
        printed,
      };
      writeFileSync(outPath, `${JSON.stringify(json, null, 2)}\n`);
      console.log(`\nwrote ${outPath}`);
    } finally {
      await sub.endAsync(true).catch(() => {});
    }
  } finally {
    await cleanup();
  }
}

try {
  await main();
} catch (err) {
  console.error(`footprint: ${(err as Error).stack ?? err}`);
  await cleanup();
  process.exit(1);
}
process.exit(0);

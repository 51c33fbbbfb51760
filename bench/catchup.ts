// Catch-up: time for a real agent to drain 24 h of 1 s metrics to a real hub on loopback (target < 10 s), the bytes it took, and the heartbeat delay meanwhile.
//
//   bun bench/catchup.ts [--hours 24] [--interval-ms 1000] [--heartbeat 1s] [--record 60]
//                        [--recording bench/out/wire-recording.json] [--timeout-s 120] [--env K=V]...
//
// 1. Samples: the host recording of bench/wire.ts (real HostCollector samples of this machine, replayed
//    ping-pong with the disk series every 30 ticks, bench/_host-recording.ts); when there is none yet,
//    --record seconds are recorded first (really waiting) and saved there for the next run.
// 2. Pre-fill: a real AgentStore + MetricBuffer on the agent's data dir, with the agent's default
//    buffer_bytes, gets add(ts, values) for every tick of the last --hours before now and flush(ts)
//    every batch_interval (the agent's default, 20 s): the outbox the agent would hold after that
//    long offline. Nothing may be dropped.
// 3. A real hub process, then a real agent process on that data dir (test/support/processes.ts). The
//    clock runs from spawning the agent until GET /api/v1/nodes/{id} (polled every 50 ms) reports
//    last_seq ≥ the last pre-filled outbox seq: the hub acks and counts only after its SQLite commit.
// 4. Wire bytes: the kernel's per-socket counters (ss, tcp_info) of the agent's connection to the hub,
//    read once the agent has the final ack: TCP payload both ways, WebSocket framing and upgrade included.
// 5. Heartbeat delay: the agent's /v1/status link.rtt_ms (its last heartbeat → ack round trip) polled
//    every 20 ms during the catch-up. The agent beats every --heartbeat (default 1 s, the minimum, so that
//    several beats fall inside the catch-up; the agent's default is 10 s).
import { readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { agentFields } from "../agent/config/index.ts";
import { AgentStore, MetricBuffer } from "../agent/store/index.ts";
import { parseBytes, parseDuration } from "../shared/config/index.ts";
import { type AgentStatusJson, startAgent, startHub, tempDir } from "../test/support/processes.ts";
import type { NodeJson } from "../test/support/telemetry.ts";
import { waitFor } from "../test/support/wait.ts";
import {
  type HostRecording,
  loadRecording,
  recordHost,
  saveRecording,
  synthesizeTicks,
} from "./_host-recording.ts";
import { machineInfo, pct, printMachine } from "./_machine.ts";
import { CLK_TCK, cpuTicksOf } from "./_proc-stats.ts";
import { socketBytes } from "./_socket-bytes.ts";

const ROOT = resolve(import.meta.dir, "..");
const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: {
    hours: { type: "string", default: "24" },
    "interval-ms": { type: "string", default: "1000" },
    heartbeat: { type: "string", default: "1s" },
    record: { type: "string", default: "60" },
    recording: { type: "string", default: "bench/out/wire-recording.json" },
    "timeout-s": { type: "string", default: "120" },
    // A budget below the day's size makes the pre-fill downsample, as a long-offline agent would.
    budget: { type: "string" },
    // Runtime settings for the agent process only (e.g. BUN_JSC_useJIT=false), to compare their cost.
    env: { type: "string", multiple: true, default: [] },
  },
});
const HOURS = Number(opts.hours);
const INTERVAL_MS = Number(opts["interval-ms"]);
const TIMEOUT_MS = Number(opts["timeout-s"]) * 1000;
if (!(HOURS > 0 && HOURS <= 24 * 30)) throw new Error("--hours must be in (0, 720]");
if (!(Number.isInteger(INTERVAL_MS) && INTERVAL_MS >= 100))
  throw new Error("--interval-ms must be an integer ≥ 100");
if (parseDuration(opts.heartbeat) === undefined) throw new Error("--heartbeat takes a duration such as 1s");

const fieldDefault = (key: string) => String(agentFields.find((f) => f.key === key)?.default);
const BATCH_MS = parseDuration(fieldDefault("batch_interval"))!;
const BUFFER_BYTES = parseBytes(opts.budget ?? fieldDefault("buffer_bytes"))!;
if (!(BUFFER_BYTES > 0)) throw new Error("--budget takes a size such as 256KB");
const TARGET_S = 10;
const NODE_ID = "catchup-node";
const log = (msg: string) => console.error(`[catchup ${new Date().toISOString().slice(11, 19)}] ${msg}`);

async function hostRecording(): Promise<HostRecording> {
  const path = resolve(ROOT, opts.recording);
  const loaded = loadRecording(path);
  if (loaded) {
    log(`loaded ${loaded.host.length} s recorded at ${loaded.recorded_at} from ${path}`);
    return loaded;
  }
  log(`no recording at ${path}: recording ${opts.record} s of real HostCollector samples at 1 s`);
  const rec = await recordHost(Number(opts.record), log);
  saveRecording(path, rec);
  return rec;
}

/** Fills DIR/agent.db as an agent offline for the whole span would have; returns what it holds. */
function prefill(dataDir: string, rec: HostRecording) {
  const ticks = Math.round((HOURS * 3_600_000) / INTERVAL_MS);
  const everyTicks = Math.max(1, Math.round(BATCH_MS / INTERVAL_MS));
  const rows = synthesizeTicks(rec, ticks);
  const series = new Set(rows.flatMap((r) => Object.keys(r)));
  const end = Math.floor(Date.now() / INTERVAL_MS) * INTERVAL_MS;
  const start = end - ticks * INTERVAL_MS;
  const t0 = performance.now();
  const store = new AgentStore(dataDir, { bufferBytes: BUFFER_BYTES });
  const buffer = new MetricBuffer(store, INTERVAL_MS);
  for (let i = 0; i < ticks; i++) {
    const ts = start + i * INTERVAL_MS;
    buffer.add(ts, rows[i]!);
    if ((i + 1) % everyTicks === 0) buffer.flush(ts);
  }
  buffer.flush(end);
  const stats = store.outbox.stats();
  const result = {
    ticks,
    series: series.size,
    produced: buffer.produced(),
    staged: buffer.stagedTicks(),
    entries: stats.pending,
    outboxBytes: stats.bytes,
    // Wire numbers are handed out as entries are sent: the last one held will get this one.
    lastSeq: store.outbox.lastSeq() + stats.pending,
    droppedMessages: stats.droppedMessages,
    droppedSamples: stats.droppedSamples,
    downsampled: stats.downsampledSamples,
    fillS: (performance.now() - t0) / 1000,
    everyTicks,
  };
  store.close();
  return { ...result, dbBytes: statSync(join(dataDir, "agent.db")).size };
}

printMachine(machineInfo());
const rec = await hostRecording();
using dir = tempDir("novacron-catchup-");
const agentData = join(dir.path, "agent");
log(`pre-filling ${HOURS} h at ${INTERVAL_MS} ms into ${agentData}/agent.db`);
const fill = prefill(agentData, rec);
if (fill.droppedSamples !== 0 || fill.staged !== 0)
  throw new Error(`pre-fill lost data: ${JSON.stringify(fill)}`);
console.log(
  `\npre-filled outbox: ${fill.ticks} ticks × ${fill.series} series (${INTERVAL_MS} ms ticks, flush every ${fill.everyTicks} ticks = ${BATCH_MS / 1000} s batch interval) in ${fill.fillS.toFixed(1)} s`,
);
console.log(
  `  ${fill.produced} samples in ${fill.entries} entries (seq 1..${fill.lastSeq}), outbox ${fill.outboxBytes} bytes (${(fill.outboxBytes / fill.produced).toFixed(3)} B/sample), agent.db ${fill.dbBytes} bytes; dropped: ${fill.droppedMessages} messages, ${fill.droppedSamples} samples; downsampled into 1-minute rollups: ${fill.downsampled} samples (budget ${BUFFER_BYTES} bytes)`,
);

await using hub = await startHub({ data: join(dir.path, "hub") });
const hubPid = hub.proc.pid!;
const hubCpu0 = cpuTicksOf(hubPid) ?? 0;
const nodeInfo = async () => {
  const r = await hub.api<NodeJson>(`/api/v1/nodes/${NODE_ID}`);
  return r.status === 200 ? r.body : undefined;
};

log("starting the agent");
const tSpawn = performance.now();
await using agent = await startAgent({
  data: agentData,
  nodeId: NODE_ID,
  hub: hub.wsUrl,
  joinToken: hub.joinToken,
  args: ["--heartbeat-interval", opts.heartbeat, "--buffer-bytes", String(BUFFER_BYTES)],
  env: Object.fromEntries(
    opts.env!.map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
  ),
});
const tApi = performance.now();
const agentPid = agent.proc.pid!;
// The link part of the agent's /v1/status.
const status = async () =>
  (await agent.status()) as AgentStatusJson & {
    link: { last_acked: number; rtt_ms: number | null; rtt_max_ms: number | null };
  };

// The agent's last RTT, sampled every 20 ms until `until` resolves.
async function sampleRtt(until: { done: boolean }): Promise<{ at: number; rtt: number | null }[]> {
  const seen: { at: number; rtt: number | null }[] = [];
  while (!until.done) {
    try {
      seen.push({ at: performance.now(), rtt: (await status()).link.rtt_ms });
    } catch {}
    await Bun.sleep(20);
  }
  return seen;
}

const during = { done: false };
const rttPromise = sampleRtt(during);
let firstSeen: number | undefined;
let done: NodeJson | undefined;
const deadline = tSpawn + TIMEOUT_MS;
while (performance.now() < deadline) {
  const n = await nodeInfo();
  if (n && firstSeen === undefined) firstSeen = performance.now();
  if (n && n.ingest.last_seq >= fill.lastSeq) {
    done = n;
    break;
  }
  await Bun.sleep(50);
}
const tDone = performance.now();
during.done = true;
const rttDuring = await rttPromise;
if (!done) throw new Error(`the hub did not reach seq ${fill.lastSeq} within ${TIMEOUT_MS / 1000} s`);
const agentCpu = (cpuTicksOf(agentPid) ?? 0) / CLK_TCK;
// The agent's resident memory now and at its peak (VmHWM): what reading a day's backlog costs it.
const agentMem = (() => {
  const status = readFileSync(`/proc/${agentPid}/status`, "utf8");
  const mib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0) / 1024;
  return `RSS ${mib("VmRSS").toFixed(1)} MiB, peak ${mib("VmHWM").toFixed(1)} MiB`;
})();
const hubCpu = ((cpuTicksOf(hubPid) ?? 0) - hubCpu0) / CLK_TCK;

// Bytes once the agent holds the final ack, so the ack is counted too.
await waitFor(async () => (await status()).link.last_acked >= fill.lastSeq, {
  intervalMs: 10,
  what: "the agent to see the final ack",
});
const sockets = socketBytes(agentPid, hub.port);
if (sockets.length !== 1)
  throw new Error(`expected one agent connection to the hub, found ${sockets.length}`);
const wire = sockets[0]!;
const st = await status();

// A few idle beats after the catch-up, for comparison.
const idle = { done: false };
const idlePromise = sampleRtt(idle);
await Bun.sleep(3_500);
idle.done = true;
const rttIdle = await idlePromise;

const secs = (tDone - tSpawn) / 1000;
const samples = done.ingest.samples;
type Poll = { at: number; rtt: number | null };
// Each heartbeat's RTT as first seen: the first value, then every change (two equal beats in a row count once).
const beats = (seen: Poll[]) =>
  seen.filter((s, i) => s.rtt !== null && (i === 0 || s.rtt !== seen[i - 1]!.rtt)).map((s) => s.rtt!);
const during_ = rttDuring.map((s) => s.rtt).filter((r): r is number => r !== null);
// The idle polls start with the catch-up's last value still showing: keep them from the first new beat on.
const firstNew = rttIdle.findIndex((s, i) => i > 0 && s.rtt !== rttIdle[0]!.rtt);
const idlePolls = firstNew < 0 ? [] : rttIdle.slice(firstNew);
const idle_ = idlePolls.map((s) => s.rtt).filter((r): r is number => r !== null);

console.log(
  `\ncatch-up over loopback WebSocket, one real agent → one real hub (hub acks after its SQLite commit)`,
);
console.log(
  `  catch-up time:       ${secs.toFixed(2)} s from spawning the agent (local API up after ${((tApi - tSpawn) / 1000).toFixed(2)} s, node first seen at the hub after ${(((firstSeen ?? tDone) - tSpawn) / 1000).toFixed(2)} s; timed by polling every 50 ms)`,
);
console.log(`  target:              < ${TARGET_S} s: ${secs < TARGET_S ? "met" : "MISSED"}`);
console.log(
  `  hub stored:          ${samples} samples in ${done.ingest.batches} batches, last_seq ${done.ingest.last_seq} (produced ${fill.produced}; of them as rollups ${done.ingest.rolled_up}; duplicates ${done.ingest.duplicates}, gaps ${done.ingest.gaps})`,
);
console.log(
  `  throughput:          ${Math.round(samples / secs)} samples/s, ${Math.round(done.ingest.batches / secs)} batches/s`,
);
console.log(
  `  wire (TCP payload):  agent→hub ${wire.sent} bytes, hub→agent ${wire.received} bytes, total ${wire.sent + wire.received} bytes = ${((wire.sent + wire.received) / samples).toFixed(3)} B/sample (agent→hub ${(wire.sent / samples).toFixed(3)} B/sample); retransmitted ${wire.retransmitted}; segments ${wire.segsOut} out, ${wire.segsIn} in`,
);
console.log(
  `  outbox before:       ${fill.outboxBytes} bytes (${(fill.outboxBytes / fill.produced).toFixed(3)} B/sample) in ${fill.entries} entries`,
);
console.log(
  `  agent after:         dropped ${st.samples.dropped} samples, last_acked ${st.link.last_acked}; CPU agent ${agentCpu.toFixed(2)} s (since spawn), hub ${hubCpu.toFixed(2)} s (during); agent ${agentMem}`,
);
const rttLine = (what: string, xs: number[], polls: Poll[]) =>
  xs.length === 0
    ? `  ${what} no RTT measured in ${polls.length} polls`
    : `  ${what} max ${Math.max(...xs)} ms, p99 ${pct(
        xs.toSorted((a, b) => a - b),
        0.99,
      )} ms over ${xs.length} polls with a value; beats seen (RTT ms, in order): ${beats(polls).join(", ")}`;
console.log(
  `\nheartbeat round trip, sampled: /v1/status link.rtt_ms (the agent's last heartbeat → ack RTT) polled every 20 ms; agent heartbeat every ${opts.heartbeat}`,
);
console.log(rttLine("during catch-up:  ", during_, rttDuring));
console.log(rttLine("idle, afterwards: ", idle_, idlePolls));
console.log(
  `  largest RTT of the session, as the agent counted every beat (link.rtt_max_ms): ${st.link.rtt_max_ms} ms`,
);

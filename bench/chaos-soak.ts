// Chaos soak: a hub, a broker and 12 agents under random kill -9s, freezes, silent partitions and full disks, then every sample counted.
//
//   bun bench/chaos-soak.ts [--minutes 30] [--seed N] [--event-every 12] [--events kind,kind,...]
//                           [--agents 12] [--tmpfs-agents 4] [--tmpfs-mb 16] [--tmpfs-buffer 4MB]
//                           [--pushers 2] [--push-rate 4] [--drain-timeout-s 300] [--out DIR]
//
// Must run as root (the tmpfs mounts). Everything is a real process: Mosquitto on a free port, the hub
// (hub/main.ts) and the agents (agent/main.ts) under bun, each agent in its own data directory, the
// first --tmpfs-agents of them on a tmpfs of --tmpfs-mb. Agents alternate WebSocket and MQTT; each
// reaches the hub or the broker through its own TCP proxy (bench/_chaos-proxy.ts), and so does the
// hub's MQTT client. They join with the hub's join token and pin its key (--hub-key).
//
// For --minutes, an event starts every --event-every seconds on average (exponential gaps, seeded PRNG;
// the seed is printed and logged). Kinds (--events selects some):
//   kill-agent, kill-hub, kill-broker   kill -9, down for 0.5-5 s, then started again
//   freeze-agent, freeze-hub            SIGSTOP for 2-20 s, then SIGCONT
//   partition-agent, partition-hub-broker   the proxy goes silent for 5-60 s (holds every byte, closes
//                                       nothing), then resumes (60%) or resets every connection (40%)
//   disk-fill                           a tmpfs agent's disk is filled (and topped up every 2 s) for
//                                       30-120 s, then the filler is removed
//   snapshot-restore                    an agent's link goes silent for 15-30 s (a backlog builds), its data
//                                       directory is copied while it is frozen (a VM snapshot), it runs on
//                                       5-15 s, the link heals, 10-20 s later it is killed -9, the copy
//                                       is put back and it starts again (a restored snapshot)
// A process that dies by itself is logged with its last lines and restarted with back-off (as systemd's
// Restart=on-failure would). Meanwhile --pushers agents on ordinary disks get --push-rate points a second
// on POST /v1/ingest (series chaos.sub, each point's value its push number, its own millisecond time).
//
// At the end: everything is healed, pushing stops, sampling is stopped by a live config change
// (sample_interval 1h), and the soak waits for every agent's outbox to empty (or --drain-timeout-s).
// The checker then reads every series of every node from the hub's API, counts each sample by node,
// series and timestamp, and compares with the agents' /v1/status counters; after the hub stops it
// also reads hub.db directly (read-only). Exit code 1 when, for any node, produced − dropped ≠ stored,
// anything is stored twice, a pushed point is missing, or a process died by itself.
//
// Output under --out (default bench/out/chaos-<time>/): events.log, logs/<process>.log, result.json.
import { cpSync, mkdirSync, openSync, rmSync, writeSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { mulberry32 } from "../test/support/prng.ts";
import { type AgentStatus, type CheckedAgent, checkHubDb, checkNodes, formatTable } from "./_chaos-check.ts";
import { DiskFiller, diskSpace, unmountAllSync } from "./_chaos-disk.ts";
import {
  ADMIN_TOKEN,
  type AgentMember,
  type Fleet,
  type Member,
  startFleet,
  writeAgentConfig,
} from "./_chaos-fleet.ts";
import { killAllSync } from "./_chaos-procs.ts";
import { machineInfo, printMachine } from "./_machine.ts";

const ROOT = resolve(import.meta.dir, "..");
// Agents whose data directory was put back from a copy: what the original produced after its last
// counter report to the hub and never sent is gone with it, and no one can count it (not the copy,
// which never saw it; not the hub, which was never told). Reported as such, not as a failure.
const restored = new Set<string>();
const KINDS = {
  "kill-agent": 4,
  "kill-hub": 2,
  "kill-broker": 1.5,
  "freeze-agent": 2,
  "freeze-hub": 1.5,
  "partition-agent": 3,
  "partition-hub-broker": 1,
  "disk-fill": 1.5,
  "snapshot-restore": 0.5,
} as const;
type Kind = keyof typeof KINDS;

const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: {
    minutes: { type: "string", default: "30" },
    seed: { type: "string" },
    "event-every": { type: "string", default: "12" },
    events: { type: "string", default: Object.keys(KINDS).join(",") },
    agents: { type: "string", default: "12" },
    "tmpfs-agents": { type: "string", default: "4" },
    "tmpfs-mb": { type: "string", default: "16" },
    "tmpfs-buffer": { type: "string", default: "4MB" },
    pushers: { type: "string", default: "2" },
    "push-rate": { type: "string", default: "4" },
    "drain-timeout-s": { type: "string", default: "300" },
    out: { type: "string" },
  },
});
const MINUTES = Number(opts.minutes);
const SEED = opts.seed !== undefined ? Number(opts.seed) : Math.floor(Math.random() * 2 ** 31);
const EVENT_EVERY_S = Number(opts["event-every"]);
const AGENTS = Number(opts.agents);
const TMPFS_AGENTS = Number(opts["tmpfs-agents"]);
const PUSHERS = Number(opts.pushers);
const PUSH_RATE = Number(opts["push-rate"]);
const DRAIN_TIMEOUT_MS = Number(opts["drain-timeout-s"]) * 1000;
const enabled = opts.events.split(",").filter((k) => k !== "") as Kind[];
for (const k of enabled)
  if (!(k in KINDS)) throw new Error(`--events: unknown kind ${k} (${Object.keys(KINDS)})`);
if (!(MINUTES > 0)) throw new Error("--minutes must be a positive number");
if (!Number.isInteger(SEED)) throw new Error("--seed must be an integer");
if (!(EVENT_EVERY_S > 0)) throw new Error("--event-every must be a positive number of seconds");
if (!(Number.isInteger(AGENTS) && AGENTS >= 1 && AGENTS <= 40)) throw new Error("--agents must be 1-40");
if (!(TMPFS_AGENTS >= 0 && TMPFS_AGENTS + PUSHERS <= AGENTS))
  throw new Error("--tmpfs-agents plus --pushers must not exceed --agents");
if (!(PUSH_RATE > 0 && PUSH_RATE <= 50)) throw new Error("--push-rate must be 1-50 points a second");
if (TMPFS_AGENTS > 0 && process.getuid?.() !== 0)
  throw new Error("tmpfs disks need root (mount -t tmpfs); run as root or with --tmpfs-agents 0");

const stamp = new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
const OUT = resolve(ROOT, opts.out ?? `bench/out/chaos-${stamp}`);
mkdirSync(OUT, { recursive: true });
const eventsFd = openSync(join(OUT, "events.log"), "a");
const t0 = Date.now();
const rand = mulberry32(SEED);
const counts = new Map<string, number>();

function log(kind: string, target: string, detail = ""): void {
  const rel = ((Date.now() - t0) / 1000).toFixed(1).padStart(7);
  const line = `+${rel}s ${new Date().toISOString()} ${kind.padEnd(20)} ${target.padEnd(10)} ${detail}`;
  writeSync(eventsFd, `${line}\n`);
  console.error(line);
  if (kind === "unexpected-exit" || kind === "start-failed" || kind === "counter-went-back") count(kind);
}
function count(kind: string): void {
  counts.set(kind, (counts.get(kind) ?? 0) + 1);
}

// Cleanup on every way out: no child, no mount left behind.
let cleaned = false;
function cleanupSync(): void {
  if (cleaned) return;
  cleaned = true;
  const killed = killAllSync();
  const unmounted = unmountAllSync();
  if (killed > 0 || unmounted.length > 0)
    console.error(`cleanup: killed ${killed} processes, unmounted ${unmounted.length} tmpfs`);
}
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(sig, () => {
    console.error(`\n${sig}: stopping the soak`);
    cleanupSync();
    process.exit(130);
  });
}
process.on("exit", cleanupSync);

const between = (lo: number, hi: number) => lo + (hi - lo) * rand();
const pick = <T>(xs: readonly T[]): T | undefined =>
  xs.length === 0 ? undefined : xs[Math.floor(rand() * xs.length)];

// Every event's wait ends early when the run ends, so that healing starts at once.
let endRun: () => void = () => {};
const runEnded = new Promise<void>((res) => {
  endRun = res;
});
const hold = (ms: number) => Promise.race([Bun.sleep(ms), runEnded]);

async function restartAfter(fleet: Fleet, m: Member, downMs: number): Promise<void> {
  await hold(downMs);
  const t = Date.now();
  try {
    await fleet.start(m);
    log("up", m.name, `ready ${Date.now() - t} ms after start`);
  } catch (err) {
    log("start-failed", m.name, (err as Error).message);
  }
}

/** Starts one event of `kind` if a target is free; resolves when it has healed. */
function runEvent(fleet: Fleet, kind: Kind, fillers: Map<string, DiskFiller>): Promise<void> | undefined {
  const freeAgents = fleet.agents.filter((a) => !a.busy && a.proc.running);
  switch (kind) {
    case "kill-agent":
    case "kill-hub":
    case "kill-broker": {
      const m: Member | undefined =
        kind === "kill-agent" ? pick(freeAgents) : kind === "kill-hub" ? fleet.hub : fleet.broker;
      if (!m || m.busy || !m.proc.running) return undefined;
      const down = Math.round(between(500, 5000));
      return (async () => {
        m.busy = true;
        count(kind);
        log(kind, m.name, `kill -9 pid ${m.proc.pid}; down for ${down} ms`);
        await fleet.kill(m);
        await restartAfter(fleet, m, down);
        m.busy = false;
      })();
    }
    case "freeze-agent":
    case "freeze-hub": {
      const m: Member | undefined = kind === "freeze-agent" ? pick(freeAgents) : fleet.hub;
      if (!m || m.busy || !m.proc.running) return undefined;
      const ms = Math.round(between(2000, 20_000));
      return (async () => {
        m.busy = true;
        count(kind);
        log(kind, m.name, `SIGSTOP pid ${m.proc.pid} for ${ms} ms`);
        fleet.freeze(m);
        await hold(ms);
        fleet.thaw(m);
        log("thaw", m.name, "SIGCONT");
        m.busy = false;
      })();
    }
    case "partition-agent":
    case "partition-hub-broker": {
      const target =
        kind === "partition-agent"
          ? pick(fleet.agents.filter((a) => !a.linkBusy))
          : fleet.hub.linkBusy
            ? undefined
            : fleet.hub;
      if (!target) return undefined;
      const proxy = "proxy" in target ? (target as AgentMember).proxy : fleet.hub.brokerProxy;
      const name = kind === "partition-agent" ? target.name : "hub-broker";
      const ms = Math.round(between(5000, 60_000));
      const mode = rand() < 0.6 ? "resume" : "reset";
      return (async () => {
        target.linkBusy = true;
        count(kind);
        log(kind, name, `silent for ${ms} ms (${proxy.connections()} connections held), then ${mode}`);
        proxy.partition();
        await hold(ms);
        proxy.heal(mode);
        log("heal", name, mode);
        target.linkBusy = false;
      })();
    }
    case "snapshot-restore": {
      const a = pick(fleet.agents.filter((x) => !x.tmpfs && !x.busy && !x.linkBusy && x.proc.running));
      if (!a) return undefined;
      return (async () => {
        a.busy = true;
        a.linkBusy = true;
        count(kind);
        const backlogMs = Math.round(between(15_000, 30_000));
        log(kind, a.id, `link silent for ${backlogMs} ms to build a backlog`);
        a.proxy.partition();
        await hold(backlogMs);
        const snap = `${a.data}.snapshot`;
        fleet.freeze(a);
        rmSync(snap, { recursive: true, force: true });
        cpSync(a.data, snap, { recursive: true });
        fleet.thaw(a);
        const taken = Date.now();
        const pending = (await getStatus(a))?.outbox.pending;
        log("snapshot-taken", a.id, `data directory copied while frozen; outbox pending ${pending}`);
        await hold(between(5000, 15_000));
        a.proxy.heal("reset");
        await hold(between(10_000, 20_000));
        await fleet.kill(a);
        rmSync(a.data, { recursive: true, force: true });
        cpSync(snap, a.data, { recursive: true });
        rmSync(snap, { recursive: true, force: true });
        restored.add(a.id);
        log(
          "snapshot-restored",
          a.id,
          `kill -9, data directory put back as it was ${Date.now() - taken} ms ago`,
        );
        a.linkBusy = false;
        await restartAfter(fleet, a, 500);
        a.busy = false;
      })();
    }
    case "disk-fill": {
      const a = pick(fleet.agents.filter((x) => x.tmpfs && !x.diskBusy));
      if (!a) return undefined;
      const ms = Math.round(between(30_000, 120_000));
      return (async () => {
        a.diskBusy = true;
        count(kind);
        const filler = new DiskFiller(a.data);
        fillers.set(a.id, filler);
        const before = diskSpace(a.data);
        const bytes = filler.start();
        log(
          kind,
          a.id,
          `filled ${(bytes / 1e6).toFixed(1)} MB (free before ${(before.free / 1e6).toFixed(1)} of ${(before.total / 1e6).toFixed(1)} MB) for ${ms} ms`,
        );
        await hold(ms);
        filler.stop();
        fillers.delete(a.id);
        log("disk-freed", a.id, `free now ${(diskSpace(a.data).free / 1e6).toFixed(1)} MB`);
        a.diskBusy = false;
      })();
    }
  }
}

async function getStatus(a: AgentMember, timeoutMs = 2000): Promise<AgentStatus | undefined> {
  try {
    const res = await fetch(`${a.apiUrl}/v1/status`, { signal: AbortSignal.timeout(timeoutMs) });
    return res.ok ? ((await res.json()) as AgentStatus) : undefined;
  } catch {
    return undefined;
  }
}

/** Pushes points to one agent's /v1/ingest; values are push numbers, so each can be found at the hub. */
function startPusher(a: AgentMember, series: string, stopped: () => boolean) {
  const accepted = new Set<number>();
  const ambiguous = new Set<number>();
  let n = 0;
  let refused = 0;
  const timer = setInterval(() => {
    if (stopped() || a.proc.frozen || !a.proc.running) return;
    const k = ++n;
    const body = JSON.stringify({ points: [{ series, value: k, t: Date.now() }] });
    fetch(`${a.apiUrl}/v1/ingest`, {
      method: "POST",
      body,
      headers: { "content-type": "application/json" },
      signal: AbortSignal.timeout(2000),
    }).then(
      async (res) => {
        const r = (await res.json().catch(() => ({}))) as { accepted?: number };
        if (res.status === 202 && r.accepted === 1) accepted.add(k);
        else refused += 1;
      },
      (err) => {
        // Refused connections never reached the agent; anything else may have (its answer was lost).
        if ((err as { code?: string }).code === "ConnectionRefused") refused += 1;
        else ambiguous.add(k);
      },
    );
  }, 1000 / PUSH_RATE);
  return {
    series,
    accepted,
    ambiguous,
    stats: () => ({ sent: n, accepted: accepted.size, ambiguous: ambiguous.size, refused }),
    stop: () => clearInterval(timer),
  };
}

async function main(): Promise<number> {
  const machine = machineInfo();
  printMachine(machine);
  log(
    "start",
    "soak",
    `seed=${SEED} minutes=${MINUTES} event-every=${EVENT_EVERY_S}s events=${enabled.join(",")}`,
  );
  console.error(`output: ${OUT}`);
  const baseConfig = { sample_interval: "1s", batch_interval: "5s", heartbeat_interval: "5s" };
  const fleet = await startFleet({
    out: OUT,
    agents: AGENTS,
    tmpfsAgents: TMPFS_AGENTS,
    tmpfsMb: Number(opts["tmpfs-mb"]),
    tmpfsBufferBytes: opts["tmpfs-buffer"],
    pushers: PUSHERS,
    log,
    agentConfig: baseConfig,
  });
  const runStart = Date.now();

  // Status poller: the produced counter must never go back.
  const maxProduced = new Map<string, number>();
  const wentBack = new Map<string, { from: number; to: number }>();
  const lastStatus = new Map<string, AgentStatus>();
  let polling = true;
  const poller = (async () => {
    while (polling) {
      await Promise.all(
        fleet.agents.map(async (a) => {
          if (a.proc.frozen || !a.proc.running) return;
          const s = await getStatus(a);
          if (!s) return;
          lastStatus.set(a.id, s);
          const max = maxProduced.get(a.id) ?? 0;
          if (s.samples.produced < max) {
            if (!wentBack.has(a.id))
              log("counter-went-back", a.id, `produced ${max} → ${s.samples.produced}`);
            wentBack.set(a.id, { from: max, to: s.samples.produced });
          } else maxProduced.set(a.id, s.samples.produced);
        }),
      );
      await Bun.sleep(5000);
    }
  })();

  // Pushers.
  let pushing = true;
  const pushers = fleet.agents
    .filter((a) => a.pushes)
    .map((a) => ({ a, p: startPusher(a, "chaos.sub", () => !pushing) }));

  // Events.
  const fillers = new Map<string, DiskFiller>();
  const running: Promise<void>[] = [];
  const endAt = runStart + MINUTES * 60_000;
  const weights = enabled.map((k) => [k, KINDS[k]] as const);
  const totalWeight = weights.reduce((s, [, w]) => s + w, 0);
  let skipped = 0;
  while (Date.now() < endAt && weights.length > 0) {
    const gap = -Math.log(1 - rand()) * EVENT_EVERY_S * 1000;
    await Bun.sleep(Math.min(gap, Math.max(0, endAt - Date.now())));
    if (Date.now() >= endAt) break;
    let r = rand() * totalWeight;
    let kind = weights[0]![0];
    for (const [k, w] of weights) {
      r -= w;
      if (r < 0) {
        kind = k;
        break;
      }
    }
    const p = runEvent(fleet, kind, fillers);
    if (p) running.push(p.catch((err) => log("event-failed", kind, (err as Error).message)));
    else {
      skipped += 1;
      log("skipped", kind, "no free target");
    }
  }

  // Heal everything.
  log("heal-all", "soak", `run over after ${((Date.now() - runStart) / 60_000).toFixed(1)} min; healing`);
  endRun();
  await Promise.all(running);
  for (const f of fillers.values()) f.stop();
  const members: Member[] = [fleet.broker, fleet.hub, ...fleet.agents];
  for (const m of members) {
    if (m.proc.frozen) fleet.thaw(m);
    if (!m.proc.running && m.held) await restartAfter(fleet, m, 0);
  }
  // Points pushed just now are stored at the agent's next tick: let one pass before sampling stops.
  pushing = false;
  for (const { p } of pushers) p.stop();
  await Bun.sleep(3000);

  // Stop sampling (live config change), then wait for every outbox to drain.
  fleet.endUptime();
  for (const a of fleet.agents)
    writeAgentConfig(a.config, {
      ...baseConfig,
      ...(a.tmpfs ? { buffer_bytes: opts["tmpfs-buffer"] } : {}),
      sample_interval: "1h",
    });
  const quiesceAt = Date.now();
  const applied = new Set<string>();
  while (applied.size < fleet.agents.length && Date.now() - quiesceAt < 30_000) {
    for (const a of fleet.agents) {
      if (applied.has(a.id)) continue;
      const s = await getStatus(a);
      if ((s?.config as { sample_interval_ms?: number } | undefined)?.sample_interval_ms === 3_600_000)
        applied.add(a.id);
    }
    await Bun.sleep(250);
  }
  const notApplied = fleet.agents.filter((a) => !applied.has(a.id)).map((a) => a.id);
  log(
    "quiesce",
    "agents",
    `sample_interval 1h applied by ${applied.size}/${fleet.agents.length}${notApplied.length ? ` (not: ${notApplied.join(",")})` : ""}`,
  );
  const drainStart = Date.now();
  let lastReport = 0;
  const finals = new Map<string, AgentStatus>();
  for (;;) {
    const waiting: string[] = [];
    for (const a of fleet.agents) {
      const s = await getStatus(a);
      if (s) finals.set(a.id, s);
      const done = s?.connected && s.outbox.pending === 0 && s.samples.staged_ticks === 0;
      if (!done)
        waiting.push(
          s
            ? `${a.id}(pending ${s.outbox.pending}, staged ${s.samples.staged_ticks}${s.connected ? "" : ", offline"})`
            : `${a.id}(no status)`,
        );
    }
    if (waiting.length === 0) {
      log(
        "drained",
        "agents",
        `every outbox empty ${((Date.now() - drainStart) / 1000).toFixed(1)} s after quiesce`,
      );
      break;
    }
    if (Date.now() - drainStart > DRAIN_TIMEOUT_MS) {
      log(
        "drain-timeout",
        "agents",
        `still waiting after ${DRAIN_TIMEOUT_MS / 1000} s: ${waiting.join(" ")}`,
      );
      break;
    }
    if (Date.now() - lastReport > 15_000) {
      lastReport = Date.now();
      log("draining", "agents", waiting.join(" "));
    }
    await Bun.sleep(1000);
  }
  polling = false;
  await poller;
  // The hub counts a batch once it is committed; give the last acks' commits a moment.
  await Bun.sleep(2000);

  // Check.
  const window = { from: t0 - 60_000, to: Date.now() + 2 * 3_600_000 };
  const checked: CheckedAgent[] = fleet.agents.map((a) => {
    const p = pushers.find((x) => x.a === a)?.p;
    return {
      id: a.id,
      transport: a.transport,
      tmpfs: a.tmpfs,
      status: finals.get(a.id) ?? lastStatus.get(a.id),
      ...(p ? { pushed: { series: p.series, accepted: p.accepted, ambiguous: p.ambiguous } } : {}),
      upWindows: a.upWindows,
      starts: a.proc.starts,
      unexpectedExits: a.unexpectedExits,
      producedWentBack: wentBack.get(a.id),
    };
  });
  let rows: Awaited<ReturnType<typeof checkNodes>> = [];
  try {
    rows = await checkNodes({ url: fleet.hub.url, adminToken: ADMIN_TOKEN }, checked, window);
  } catch (err) {
    log("check-failed", "hub-api", (err as Error).message);
  }
  await fleet.stopAll();
  let db: ReturnType<typeof checkHubDb> | undefined;
  try {
    db = checkHubDb(fleet.hub.data);
  } catch (err) {
    log("check-failed", "hub.db", (err as Error).message);
  }
  cleanupSync();

  // Report.
  const findings: string[] = [];
  // Notes: what the run saw that is no failure (a restored snapshot's uncountable loss, say).
  const info: string[] = [];
  // A check that could not run is a failure, never a pass.
  if (rows.length !== fleet.agents.length)
    findings.push(`the hub's API could be checked for ${rows.length} of ${fleet.agents.length} nodes`);
  if (!db) findings.push("hub.db could not be read");
  for (const r of rows) {
    if (r.diff !== 0)
      findings.push(
        `${r.node}: produced ${r.produced} − dropped ${r.dropped} − stored ${r.stored} = ${r.diff}`,
      );
    if (r.duplicatePoints > 0)
      findings.push(`${r.node}: ${r.duplicatePoints} points stored twice (same series and timestamp)`);
    if (r.overfullMinutes > 0)
      findings.push(`${r.node}: ${r.overfullMinutes} rolled-up minutes hold more than 60 samples`);
    if (r.stored !== r.hubCounter)
      findings.push(
        `${r.node}: the series API holds ${r.stored} samples, the hub's counter says ${r.hubCounter}`,
      );
    const dbSum = db?.perNode.get(r.node)?.samples;
    if (dbSum !== undefined && dbSum !== r.hubCounter)
      findings.push(
        `${r.node}: hub.db batches hold ${dbSum} samples, the hub's counter says ${r.hubCounter}`,
      );
    if (r.unexpectedExits > 0)
      findings.push(`${r.node}: died by itself ${r.unexpectedExits} times (see events.log)`);
    if (r.producedWentBack && restored.has(r.node))
      info.push(
        `${r.node}: produced counter went back from ${r.producedWentBack.from} to ${r.producedWentBack.to} after its store was restored from a copy (samples the original produced after its last counter report and never sent are lost with it, uncountable)`,
      );
    else if (r.producedWentBack)
      findings.push(
        `${r.node}: produced counter went back from ${r.producedWentBack.from} to ${r.producedWentBack.to}`,
      );
    if (r.pendingAtEnd === undefined || r.pendingAtEnd > 0)
      findings.push(`${r.node}: outbox not drained at the end (pending ${r.pendingAtEnd ?? "unknown"})`);
    // Seconds the agent ran but the hub has nothing for: sampled and lost, unless counted as dropped.
    const perTick = r.sampledSeconds > 0 ? r.stored / r.sampledSeconds : 0;
    const missingSamples = Math.round(r.missingSeconds * perTick);
    if (r.missingSeconds >= 5 && r.dropped < 0.8 * missingSamples)
      findings.push(
        `${r.node}: ${r.missingSeconds} s with no cpu.util at the hub while the agent ran unfrozen (about ${missingSamples} samples at ${perTick.toFixed(1)} a tick), but ${r.dropped} counted as dropped: lost without a count`,
      );
    const folded = Object.entries(r.droppedBy ?? {})
      .filter(([k]) => /fold/i.test(k))
      .reduce((n, [, v]) => n + v, 0);
    const pushedLost = r.pushed && r.pushed.lost > 0 && folded < r.pushed.lost;
    if (r.pushed && pushedLost && r.pushed.storedTwice === 0 && restored.has(r.node))
      info.push(
        `${r.node}: ${r.pushed.lost} of ${r.pushed.accepted} points accepted on /v1/ingest are not at the hub (e.g. push numbers ${r.pushed.lostExamples.join(", ")}); its store was restored from a copy, which never held them`,
      );
    else if (r.pushed && (pushedLost || r.pushed.storedTwice > 0))
      findings.push(
        `${r.node}: of ${r.pushed.accepted} points accepted on /v1/ingest (${r.pushed.ambiguous} more unanswered), ${r.pushed.storedAccepted} are at the hub, ${r.pushed.lost} missing (e.g. push numbers ${r.pushed.lostExamples.join(", ")}), ${r.pushed.storedTwice} stored twice; the hub holds ${r.pushed.storedPoints} points of ${r.pushed.series}; ${r.droppedBy ? `dropped_by ${JSON.stringify(r.droppedBy)}` : "no per-reason drop counter"}`,
      );
  }
  for (const m of [fleet.hub, fleet.broker])
    if (m.unexpectedExits > 0)
      findings.push(`${m.name}: died by itself ${m.unexpectedExits} times (see events.log)`);
  const identical = new Map<string, { batches: number; first: number }>();
  for (const b of db?.identicalBatches ?? []) {
    const n = identical.get(b.node) ?? { batches: 0, first: b.start };
    n.batches += b.copies - 1;
    n.first = Math.min(n.first, b.start);
    identical.set(b.node, n);
  }
  for (const [node, n] of identical)
    findings.push(
      `${node}: hub.db holds ${n.batches} extra copies of identical batches (the first starting ${new Date(n.first).toISOString()})`,
    );
  for (const r of rows) {
    if (r.missingSeconds > 0)
      info.push(
        `${r.node}: ${r.missingSeconds} s without cpu.util while the agent ran unfrozen (runs of ≥ 3 s; dropped ${r.dropped}${r.droppedBy ? ` ${JSON.stringify(r.droppedBy)}` : ""})`,
      );
  }
  for (const { a, p } of pushers) {
    const s = p.stats();
    info.push(
      `${a.id}: pushed ${s.sent} points, ${s.accepted} accepted, ${s.ambiguous} unanswered, ${s.refused} refused`,
    );
  }

  const summary = [...counts]
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(", ");
  const unexpected = [fleet.hub, fleet.broker, ...fleet.agents].reduce((s, m) => s + m.unexpectedExits, 0);
  const table = formatTable(rows, db?.perNode);
  const text = [
    "",
    `Chaos soak, seed ${SEED}, ${MINUTES} min, at ${machine.commit} (${machine.nproc} cores, shared)`,
    `events: ${summary || "none"}; unexpected exits: ${unexpected}; events skipped (no free target): ${skipped}`,
    "",
    table,
    "",
    "columns: p−d−s = produced − dropped − stored; dup pts = points stored twice; hub ctr = the hub's sample counter;",
    "db sum = sum of hub.db batches; resends = resent messages the hub recognised; miss s = seconds without cpu.util while up",
    "",
    ...(info.length ? ["notes:", ...info.map((l) => `  ${l}`), ""] : []),
    findings.length
      ? "FAILED:"
      : "PASSED: for every node produced − dropped = stored, nothing stored twice, no process died by itself",
    ...findings.map((l) => `  ${l}`),
  ].join("\n");
  console.log(text);
  writeSync(eventsFd, `${text}\n`);
  await Bun.write(
    join(OUT, "result.json"),
    JSON.stringify(
      {
        machine,
        seed: SEED,
        minutes: MINUTES,
        events: Object.fromEntries(counts),
        skipped,
        rows,
        pushers: pushers.map(({ a, p }) => ({ node: a.id, ...p.stats() })),
        identical_batches: db?.identicalBatches ?? [],
        findings,
      },
      null,
      2,
    ),
  );
  console.error(`events and logs: ${OUT}`);
  return findings.length > 0 ? 1 : 0;
}

main().then(
  (code) => {
    cleanupSync();
    process.exit(code);
  },
  (err) => {
    console.error(err);
    cleanupSync();
    process.exit(2);
  },
);

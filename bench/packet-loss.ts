// False failovers under packet loss: a real hub and real agents in their own network namespace whose
// loopback drops a share of all packets at random (iptables `statistic`), for a long run.
//
//   bun bench/packet-loss.ts [--minutes 60] [--loss 0.1] [--agents 10] [--settings defaults,fast]
//
// Needs root (it makes a network namespace and an iptables rule in it; the host is not touched). Each
// settings row gets its own hub and agents, all level 2, and one stateless service per agent (a
// `replicas: N` service, which placement spreads one per node). Nothing is killed: every node stays alive the whole time,
// so every failover the hub starts is a false one. Counted per row from the hub's failover events:
// node transitions (suspect, disconnected, lost), copies marked lost, replacements placed; and at the
// end, telemetry: produced - dropped = stored for every node (loss must not cost a sample either).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  type AgentHandle,
  type HubHandle,
  startAgent,
  startHub,
  tempDir,
} from "../test/support/processes.ts";
import { waitFor } from "../test/support/wait.ts";
import { FAILOVER_SETTINGS, type FailoverSettings } from "./_failover-settings.ts";
import { machineInfo, printMachine } from "./_machine.ts";

const { values } = parseArgs({
  options: {
    minutes: { type: "string", default: "60" },
    loss: { type: "string", default: "0.1" },
    agents: { type: "string", default: "10" },
    settings: { type: "string", default: "defaults,fast" },
  },
});

const NETNS_ENV = "NOVACRON_BENCH_NETNS";

// Outside the namespace: make it, run this script inside it, and remove it afterwards.
if (!process.env[NETNS_ENV]) {
  const loss = Number(values.loss);
  if (!(loss >= 0 && loss < 1)) throw new Error(`--loss must be a fraction from 0 to 1, got ${values.loss}`);
  const ns = `novacron-loss-${process.pid}`;
  const run = (argv: string[]) => {
    const r = Bun.spawnSync(argv, { stdout: "inherit", stderr: "inherit" });
    if (r.exitCode !== 0)
      throw new Error(`${argv.join(" ")} exited with ${r.exitCode} (this bench needs root)`);
  };
  run(["ip", "netns", "add", ns]);
  try {
    run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"]);
    // Every packet on the namespace's loopback passes INPUT once: each is dropped with probability `loss`.
    run([
      "ip",
      ...["netns", "exec", ns, "iptables", "-A", "INPUT", "-i", "lo"],
      ...["-m", "statistic", "--mode", "random", "--probability", String(loss), "-j", "DROP"],
    ]);
    const child = Bun.spawn(["ip", "netns", "exec", ns, process.execPath, ...process.argv.slice(1)], {
      env: { ...process.env, [NETNS_ENV]: ns },
      stdout: "inherit",
      stderr: "inherit",
    });
    for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => child.kill(sig));
    process.exitCode = await child.exited;
  } finally {
    Bun.spawnSync(["ip", "netns", "del", ns]);
  }
  process.exit();
}

type Settings = FailoverSettings;
const ALL = FAILOVER_SETTINGS;

interface EventJson {
  kind: string;
  node: string | null;
  change: string | null;
  reason: string;
}
interface NodeJson {
  ingest: { samples: number };
}

interface Row {
  s: Settings;
  hub: HubHandle;
  agents: AgentHandle[];
  mark: string;
}

const n = Number(values.agents);
const minutes = Number(values.minutes);
const chosen = values.settings.split(",").map((name) => {
  const s = ALL.find((x) => x.name === name);
  if (!s) throw new Error(`--settings: unknown ${name} (known: ${ALL.map((x) => x.name).join(", ")})`);
  return s;
});

printMachine(machineInfo());
console.log(
  `namespace ${process.env[NETNS_ENV]}: ${(Number(values.loss) * 100).toFixed(1)}% of loopback packets dropped; ${n} agents per row; ${minutes} min\n`,
);

using dir = tempDir("novacron-bench-loss-");
const rows: Row[] = [];
for (const s of chosen) {
  // Starting through the loss takes longer than on a clean loopback: generous waits.
  const hub = await startHub({ data: join(dir.path, `${s.name}-hub`), args: s.hubArgs });
  const agents: AgentHandle[] = [];
  for (let i = 0; i < n; i++) {
    // A config file, so that sampling can be paused at the end (hot reload) to compare counts.
    writeFileSync(join(dir.path, `${s.name}-a${i}.yaml`), "sample_interval: 1s\n");
    agents.push(
      await startAgent({
        data: join(dir.path, `${s.name}-a${i}`),
        nodeId: `${s.name}-a${i}`,
        hub: hub.wsUrl,
        joinToken: hub.joinToken,
        args: ["--level", "2", "--config", join(dir.path, `${s.name}-a${i}.yaml`), ...s.agentArgs],
      }),
    );
  }
  for (const a of agents) {
    await waitFor(async () => (await a.status()).connected, {
      what: `${a.nodeId} connected`,
      timeoutMs: 120_000,
    });
  }
  const mark = `novacron-bench-loss-${process.pid}-${s.name}`;
  const r = await hub.api("/api/v1/workloads", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      name: "svc",
      driver: "exec",
      command: "/bin/sh",
      args: ["-c", `while true; do sleep 1; done # ${mark}`],
      replicas: n,
      disconnect: s.disconnect,
    }),
  });
  if (r.status >= 300) throw new Error(`workload refused: ${JSON.stringify(r.body)}`);
  await waitFor(
    async () =>
      (await hub.api<{ allocs: { status: string }[] }>("/api/v1/workloads/svc")).body.allocs.filter(
        (x) => x.status === "running",
      ).length === n,
    { what: `${n} copies running (${s.name})`, timeoutMs: 180_000 },
  );
  rows.push({ s, hub, agents, mark });
}

// The events before the measured hour (joins, first placement) are not counted.
const baseline = new Map<string, number>();
for (const row of rows) {
  baseline.set(
    row.s.name,
    (await row.hub.api<{ events: EventJson[] }>("/api/v1/failover/events?limit=10000")).body.events.length,
  );
}
const t0 = Date.now();
const end = t0 + minutes * 60_000;
while (Date.now() < end) {
  await Bun.sleep(Math.min(60_000, end - Date.now()));
  const done = ((Date.now() - t0) / 60_000).toFixed(0);
  const line: string[] = [];
  for (const row of rows) {
    const all = (await row.hub.api<{ events: EventJson[] }>("/api/v1/failover/events?limit=10000")).body
      .events;
    line.push(`${row.s.name}: ${all.length - baseline.get(row.s.name)!} events`);
  }
  console.log(`${done} min: ${line.join(", ")}`);
}

console.log(
  "\n| settings | transitions to suspect / disconnected / lost | copies marked lost | replacements placed | nodes produced - dropped = stored |",
);
console.log("| --- | --- | --- | --- | --- |");
for (const row of rows) {
  const events = (await row.hub.api<{ events: EventJson[] }>("/api/v1/failover/events?limit=10000")).body
    .events;
  // Newest first: the ones after the baseline are the first (length - baseline) entries.
  const fresh = events.slice(0, events.length - baseline.get(row.s.name)!);
  const to = (state: string) => fresh.filter((e) => e.kind === "node" && e.change?.endsWith(state)).length;
  const lost = fresh.filter((e) => e.kind === "mark_lost").length;
  const placed = fresh.filter((e) => e.kind === "place").length;
  // Pause sampling (an hour between samples), let every backlog drain, then compare exactly.
  let exact = 0;
  for (let i = 0; i < row.agents.length; i++) {
    writeFileSync(join(dir.path, `${row.s.name}-a${i}.yaml`), "sample_interval: 1h\n");
  }
  for (const a of row.agents) {
    const ok = await waitFor(
      async () => {
        const s = await a.status();
        if (!s.connected || s.outbox.pending !== 0 || s.samples.staged_ticks !== 0) return false;
        if (s.config.sample_interval_ms !== 3_600_000) return false;
        const stored = (await row.hub.api<NodeJson>(`/api/v1/nodes/${a.nodeId}`)).body.ingest.samples;
        return s.samples.produced - s.samples.dropped === stored;
      },
      { what: `${a.nodeId}: produced - dropped = stored`, timeoutMs: 180_000 },
    ).catch((err) => {
      console.log(`    ${(err as Error).message}`);
      return false;
    });
    if (ok) exact += 1;
  }
  console.log(
    `| ${row.s.name} | ${to("suspect")} / ${to("disconnected")} / ${to("lost")} | ${lost} | ${placed} | ${exact} of ${row.agents.length} |`,
  );
  for (const e of fresh.filter((x) => x.kind !== "node" || !x.change?.endsWith("ready")).slice(0, 10)) {
    console.log(`    ${e.kind} ${e.node ?? ""} ${e.change ?? ""}: ${e.reason}`);
  }
}

for (const row of rows) {
  for (const a of row.agents) await a[Symbol.asyncDispose]();
  await row.hub[Symbol.asyncDispose]();
  for (const p of (await new Response(Bun.spawn(["pgrep", "-f", row.mark], { stdout: "pipe" }).stdout).text())
    .split("\n")
    .filter(Boolean)) {
    try {
      process.kill(Number(p), "SIGKILL");
    } catch {}
  }
}

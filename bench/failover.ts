// Node lost → replacement healthy elsewhere: real hub, real agents, a node SIGKILLed or frozen behind a black hole.
//
//   bun bench/failover.ts [--runs 20] [--silent-runs 5] [--only kill|silent] [--settings defaults|fast]
//
// Each run starts a fresh hub and two level-2 agents, places one stateless service (an `exec` loop
// with a command health check every 200 ms) on the first, then either
// - kill: SIGKILLs the agent and its workload (the kernel closes the socket: FIN), or
// - silent: freezes both with SIGSTOP and black-holes the agent's TCP link (no FIN, no RST),
// and times from that moment until the hub reports the replacement on the second node `running` and
// `healthy` (the agent's report came back). Settings:
// - defaults: the hub's defaults (heartbeat 10 s, suspect_after 25 s, disconnect_after 2 s) and the
//   default disconnect policy of a level-2 service (lost_after 5 s); agents heartbeat every 10 s;
// - fast: what we recommend when failover time matters: heartbeats every 1 s, suspect_after 3 s,
//   disconnect_after 1 s, lost_after 1 s.
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startAgent, startHub, tempDir } from "../test/support/processes.ts";
import { startTcpProxy } from "../test/support/tcp-proxy.ts";
import { waitFor } from "../test/support/wait.ts";
import { FAILOVER_SETTINGS, type FailoverSettings } from "./_failover-settings.ts";
import { machineInfo, pct, printMachine } from "./_machine.ts";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "20" },
    "silent-runs": { type: "string", default: "5" },
    only: { type: "string" },
    settings: { type: "string" },
  },
});

type Settings = FailoverSettings;
const SETTINGS = FAILOVER_SETTINGS;

async function pids(mark: string): Promise<number[]> {
  const out = await new Response(Bun.spawn(["pgrep", "-f", mark], { stdout: "pipe" }).stdout).text();
  return out.split("\n").filter(Boolean).map(Number);
}

interface AllocJson {
  node: string;
  status: string;
  healthy: boolean | null;
}

async function once(kind: "kill" | "silent", s: Settings, i: number): Promise<number> {
  using dir = tempDir("novacron-bench-failover-");
  await using hub = await startHub({ data: join(dir.path, "hub"), args: s.hubArgs });
  using proxy = startTcpProxy(hub.port);
  const args = ["--level", "2", "--batch-interval", "1s", ...s.agentArgs];
  const victim = await startAgent({
    data: join(dir.path, "a"),
    nodeId: "a",
    hub: `ws://127.0.0.1:${proxy.port}`,
    joinToken: hub.joinToken,
    args,
  });
  const mark = `novacron-bench-failover-${process.pid}-${kind}-${i}`;
  try {
    await waitFor(async () => (await victim.status()).connected, { what: "a connected" });
    await hub.api("/api/v1/workloads", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        name: "svc",
        driver: "exec",
        command: "/bin/sh",
        args: ["-c", `while true; do sleep 1; done # ${mark}`],
        health: { type: "command", command: "/bin/true", interval_ms: 200, threshold: 1 },
        disconnect: s.disconnect,
      }),
    });
    const allocs = async () =>
      (await hub.api<{ allocs: AllocJson[] }>("/api/v1/workloads/svc")).body.allocs ?? [];
    await waitFor(async () => (await allocs()).some((a) => a.node === "a" && a.healthy === true), {
      what: "the service healthy on a",
      timeoutMs: 30_000,
    });
    await using standby = await startAgent({
      data: join(dir.path, "b"),
      nodeId: "b",
      hub: hub.wsUrl,
      joinToken: hub.joinToken,
      args,
    });
    await waitFor(async () => (await standby.status()).connected, { what: "b connected" });
    const victimPid = victim.proc.pid!;
    const workload = await pids(mark);
    const t0 = performance.now();
    if (kind === "kill") {
      for (const p of [...workload, victimPid]) process.kill(p, "SIGKILL");
    } else {
      proxy.blackHole();
      for (const p of [...workload, victimPid]) process.kill(p, "SIGSTOP");
    }
    await waitFor(
      async () =>
        (await allocs()).some((a) => a.node === "b" && a.status === "running" && a.healthy === true),
      { what: "the replacement healthy on b", intervalMs: 20, timeoutMs: 180_000 },
    );
    const took = performance.now() - t0;
    for (const p of workload) {
      try {
        process.kill(p, "SIGKILL");
      } catch {}
    }
    try {
      process.kill(victimPid, "SIGKILL");
    } catch {}
    for (const p of await pids(mark)) process.kill(p, "SIGKILL");
    return took;
  } finally {
    await victim.proc.kill("SIGKILL");
  }
}

printMachine(machineInfo());
console.log("2 cores shared with other engineers' test runs: figures are noisy; compare rows of one run.\n");
const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`.padStart(8);
for (const kind of ["kill", "silent"] as const) {
  if (values.only && values.only !== kind) continue;
  for (const s of SETTINGS) {
    if (values.settings && values.settings !== s.name) continue;
    const runs =
      kind === "silent" && s.name === "defaults" ? Number(values["silent-runs"]) : Number(values.runs);
    const times: number[] = [];
    for (let i = 0; i < runs; i++) times.push(await once(kind, s, i));
    const sorted = times.toSorted((a, b) => a - b);
    console.log(
      `${kind.padEnd(6)} ${s.name.padEnd(8)} runs ${String(runs).padStart(2)}  p50 ${fmt(pct(sorted, 0.5))}  p99 ${fmt(pct(sorted, 0.99))}  min ${fmt(sorted[0]!)}  max ${fmt(sorted.at(-1)!)}`,
    );
  }
}

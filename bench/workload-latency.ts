// Time from POST /api/v1/workloads to the process running on the node, over repeated runs (real hub, real agent).
//
//   bun bench/workload-latency.ts [--runs 100]
//
// "Running" is observed two ways: the process exists on this machine (its marker appears in
// /proc/*/cmdline), and the hub's allocation record says `running` (the agent's report came back).
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startAgent, startHub, tempDir } from "../test/support/processes.ts";
import { waitFor } from "../test/support/wait.ts";
import { machineInfo, pct, printMachine } from "./_machine.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "100" } } });
const runs = Number(values.runs);

function processWith(mark: string): boolean {
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(mark)) return true;
    } catch {}
  }
  return false;
}

printMachine(machineInfo());
using dir = tempDir("novacron-bench-");
await using hub = await startHub({ data: join(dir.path, "hub") });
await using agent = await startAgent({
  data: join(dir.path, "agent"),
  nodeId: "bench",
  hub: hub.wsUrl,
  joinToken: hub.joinToken,
});
await waitFor(async () => (await agent.status()).connected, { what: "agent connected" });

const toProcess: number[] = [];
const toReported: number[] = [];
for (let i = 0; i < runs; i++) {
  const mark = `novacron-bench-latency-${process.pid}-${i}`;
  const t0 = performance.now();
  const res = await hub.api("/api/v1/workloads", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      name: `lat-${i}`,
      driver: "exec",
      command: "/bin/sh",
      args: ["-c", `sleep 600; echo ${mark}`],
      nodes: ["bench"],
    }),
  });
  if (res.status !== 201) throw new Error(`POST failed: ${res.status} ${JSON.stringify(res.body)}`);
  await waitFor(() => processWith(mark), { intervalMs: 1, timeoutMs: 10_000, what: "the process" });
  toProcess.push(performance.now() - t0);
  await waitFor(
    async () =>
      (await hub.api<{ allocs: { status: string }[] }>(`/api/v1/workloads/lat-${i}`)).body.allocs[0]
        ?.status === "running",
    { intervalMs: 1, timeoutMs: 10_000, what: "the hub to see it running" },
  );
  toReported.push(performance.now() - t0);
  await hub.api(`/api/v1/workloads/lat-${i}`, { method: "DELETE" });
  await waitFor(() => !processWith(mark), { intervalMs: 5, timeoutMs: 15_000, what: "the process to stop" });
}
const row = (name: string, xs: number[]) => {
  const sorted = xs.toSorted((a, b) => a - b);
  const ms = (v: number) => v.toFixed(1).padStart(7);
  return `${name.padEnd(34)} p50 ${ms(pct(sorted, 0.5))} ms   p99 ${ms(pct(sorted, 0.99))} ms   max ${ms(Math.max(...xs))} ms`;
};
console.log(`\n${runs} runs, one agent on loopback (WebSocket), exec driver, /bin/sh → sleep`);
console.log(row("POST → process exists on the node", toProcess));
console.log(row("POST → hub reports it running", toReported));

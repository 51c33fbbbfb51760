// Resident memory of a real agent process supervising 50 workloads (the agent's own, not its children's).
//
//   bun bench/agent-50-tasks.ts [--tasks 50] [--settle 60] [--shipped | --binary PATH]
//
// The agent runs 60 s first (JIT warm, as in bench/footprint.ts), its RSS is read; then N `exec`
// workloads (sleep) are pinned to it, it runs another --settle seconds, and its RSS is read again.
// By default the agent runs under `bun run`; --shipped builds it as `npm run build` does and runs that
// binary (--binary: one already built).
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type Proc, startAgent, startHub, tempDir } from "../test/support/processes.ts";
import { waitFor } from "../test/support/wait.ts";
import { machineInfo, printMachine } from "./_machine.ts";
import { median, memoryOf, mib } from "./_proc-stats.ts";
import { runAgent, shippedAgent } from "./_shipped-agent.ts";

const { values } = parseArgs({
  options: {
    tasks: { type: "string", default: "50" },
    settle: { type: "string", default: "60" },
    shipped: { type: "boolean", default: false },
    binary: { type: "string" },
  },
});
const n = Number(values.tasks);
const settleMs = Number(values.settle) * 1000;

/** Medians of `samples` readings one second apart, in MiB. */
async function medianMemory(pid: number, samples = 10): Promise<{ rss: number; anon: number }> {
  const xs: { rss: number; anon: number }[] = [];
  for (let i = 0; i < samples; i++) {
    const m = memoryOf(pid);
    if (m) xs.push({ rss: mib(m.rss), anon: mib(m.anon) });
    await Bun.sleep(1000);
  }
  return { rss: median(xs.map((x) => x.rss)), anon: median(xs.map((x) => x.anon)) };
}

printMachine(machineInfo());
using dir = tempDir("novacron-bench-");
await using hub = await startHub({ data: join(dir.path, "hub") });
const shipped = values.shipped || values.binary !== undefined;
let agent: { proc: Proc; apiUrl: string };
if (shipped) {
  const binary = shippedAgent(join(dir.path, "dist"), values.binary);
  agent = await runAgent({
    binary: [binary],
    data: join(dir.path, "agent"),
    nodeId: "bench",
    hub: { url: hub.wsUrl, joinToken: hub.joinToken },
  });
} else {
  const a = await startAgent({
    data: join(dir.path, "agent"),
    nodeId: "bench",
    hub: hub.wsUrl,
    joinToken: hub.joinToken,
  });
  await waitFor(async () => (await a.status()).connected, { what: "agent connected" });
  agent = a;
}
const pid = agent.proc.pid!;
await Bun.sleep(settleMs);
const before = await medianMemory(pid);
for (let i = 0; i < n; i++) {
  const res = await hub.api("/api/v1/workloads", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      name: `m-${i}`,
      driver: "exec",
      command: "/bin/sleep",
      args: ["3600"],
      nodes: ["bench"],
    }),
  });
  if (res.status !== 201) throw new Error(`POST ${i}: ${res.status}`);
}
await waitFor(
  async () => {
    const r = (await (await fetch(`${agent.apiUrl}/v1/tasks`)).json()) as { tasks: { status: string }[] };
    return r.tasks.filter((t) => t.status === "running").length === n;
  },
  { what: `${n} running tasks`, timeoutMs: 60_000 },
);
await Bun.sleep(settleMs);
const after = await medianMemory(pid);
for (let i = 0; i < n; i++) await hub.api(`/api/v1/workloads/m-${i}`, { method: "DELETE" });
console.log(
  `\nagent process (${shipped ? "the shipped binary" : "bun run"}), WebSocket to a local hub, 1 s sampling, medians of 10 readings`,
);
console.log(
  `idle, no tasks:           RSS ${before.rss.toFixed(1)} MiB   private ${before.anon.toFixed(1)} MiB`,
);
console.log(
  `${String(n).padStart(2)} supervised processes:  RSS ${after.rss.toFixed(1)} MiB   private ${after.anon.toFixed(1)} MiB`,
);
console.log(
  `per task:                 ${(((after.rss - before.rss) / n) * 1024).toFixed(0)} KiB RSS   ${(((after.anon - before.anon) / n) * 1024).toFixed(0)} KiB private`,
);
await waitFor(
  async () =>
    ((await (await fetch(`${agent.apiUrl}/v1/tasks`)).json()) as { tasks: unknown[] }).tasks.length === 0,
  { what: "tasks stopped", timeoutMs: 60_000 },
);
await agent.proc.kill("SIGTERM");

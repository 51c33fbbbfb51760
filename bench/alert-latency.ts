// Notification latency: from a node going down to a webhook receiving the alert, with a real hub, real agents and a real receiver.
//
//   bun bench/alert-latency.ts [--rounds 5] [--agents 3]
//
// Two ways down, each `--rounds` times, on one of `--agents` agents (the others stay up):
// - crash: the agent is SIGKILLed; its connection closes, so the node is suspect at once and
//   disconnected (node-down) after --disconnect-after (default 2 s, up to 20% jitter per node);
// - hang: the agent is SIGSTOPped; nothing closes, so the hub notices only when heartbeats stop
//   (here --heartbeat-interval 1s --suspect-after 3s; defaults are 10 s and 25 s).
// For each: the time from the signal to the alert's started_at at the hub (detection), and to the
// webhook request arriving at the receiver (detection + evaluation + delivery). Then the agent comes
// back, and the resolved notification is awaited before the next round.

import { join } from "node:path";
import { parseArgs } from "node:util";
import { startAgent, startHub, tempDir } from "../test/support/processes.ts";
import { waitFor } from "../test/support/wait.ts";
import { machineInfo, printMachine } from "./_machine.ts";

const { values } = parseArgs({
  options: { rounds: { type: "string", default: "5" }, agents: { type: "string", default: "3" } },
});
const rounds = Number(values.rounds);
const agentCount = Number(values.agents);

interface Received {
  at: number;
  alerts: { event: string; rule: string; node: string | null; id: number; started_at: number }[];
}

const received: Received[] = [];
const receiver = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  async fetch(req) {
    const at = Date.now();
    const body = (await req.json()) as Received;
    received.push({ at, alerts: body.alerts });
    return new Response("ok");
  },
});

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const ms = (x: number) => `${Math.round(x)} ms`;

printMachine(machineInfo());
console.log("2 cores shared with other engineers' test runs: figures are wall-clock and noisy.\n");

async function scenario(kind: "crash" | "hang", hubArgs: string[], agentArgs: string[]) {
  using dir = tempDir("novacron-bench-alerts-");
  await using hub = await startHub({ data: join(dir.path, "hub"), args: hubArgs });
  await hub.api("/api/v1/webhooks", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ url: `http://127.0.0.1:${receiver.port}/hook` }),
  });
  const agents = [];
  for (let i = 0; i < agentCount; i++) {
    agents.push(
      await startAgent({
        data: join(dir.path, `agent-${i}`),
        nodeId: `edge-${i}`,
        hub: hub.wsUrl,
        joinToken: hub.joinToken,
        args: agentArgs,
      }),
    );
  }
  const ready = async (id: string) =>
    (await hub.api<{ nodes: { id: string; status: string }[] }>("/api/v1/nodes")).body.nodes?.find(
      (n) => n.id === id,
    )?.status === "ready";
  for (const a of agents)
    await waitFor(() => ready(a.nodeId), { timeoutMs: 60_000, what: `${a.nodeId} ready` });
  const detect: number[] = [];
  const notify: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const agent = agents[r % agents.length]!;
    const node = agent.nodeId;
    const from = received.length;
    const t0 = Date.now();
    if (kind === "crash") await agent.proc.kill("SIGKILL");
    else process.kill(agent.proc.pid!, "SIGSTOP");
    const got = await waitFor(
      () =>
        received
          .slice(from)
          .flatMap((x) => x.alerts.map((a) => ({ ...a, at: x.at })))
          .find((a) => a.event === "opened" && a.rule === "node-down" && a.node === node),
      { timeoutMs: 120_000, intervalMs: 5, what: `the node-down notification of ${node}` },
    );
    detect.push(got.started_at - t0);
    notify.push(got.at - t0);
    console.log(
      `${kind} ${r + 1}: ${node} alert opened after ${ms(got.started_at - t0)}, webhook got it after ${ms(got.at - t0)}`,
    );
    if (kind === "crash") await agent.restart();
    else process.kill(agent.proc.pid!, "SIGCONT");
    await waitFor(
      () => received.slice(from).some((x) => x.alerts.some((a) => a.event === "resolved" && a.id === got.id)),
      { timeoutMs: 120_000, what: `the resolved notification of ${node}` },
    );
  }
  for (const a of agents) await a[Symbol.asyncDispose]();
  return { kind, detect, notify };
}

const results = [
  await scenario("crash", [], []),
  await scenario(
    "hang",
    ["--heartbeat-interval", "1s", "--suspect-after", "3s", "--down-after", "6s"],
    ["--heartbeat-interval", "1s"],
  ),
];
console.log("\nway down   rounds   to alert p50 / max      to webhook p50 / max");
for (const r of results) {
  console.log(
    `${r.kind.padEnd(10)} ${String(r.detect.length).padEnd(8)} ${`${ms(pct(r.detect, 50))} / ${ms(Math.max(...r.detect))}`.padEnd(23)} ${ms(pct(r.notify, 50))} / ${ms(Math.max(...r.notify))}`,
  );
}
receiver.stop(true);

// Detection time against fleet size: a node goes silent (no FIN) among N idle simulated agents; time to `suspect` and `down`.
//
//   bun bench/detection.ts [--agents 100,1000,10000] [--victims 20] [--hub-args="..."] [--poll-ms 250]
//
// For each N: a real hub process on a temp dir and N simulated agents in this process
// (bench/_sim-agent.ts, the agent's secure session over WebSocket, each with its own node key) that
// only heartbeat, at the interval the hub asks (default hub settings unless --hub-args says otherwise).
// Once every node is `ready`, --victims of them stop heartbeating but keep their sockets open (a frozen
// host: no FIN). Each victim's GET /api/v1/nodes/{id} is polled every --poll-ms; the time from its last
// heartbeat to the first `suspect` and the first `down` is recorded. The whole fleet is polled too:
// any other node seen not `ready` is a false suspicion. Nomad's detection for the same N is printed
// beside ours: TTL = max(10 s, N / 50 per s), stagger up to one more TTL, plus a 10 s grace, so a
// silent node is down TTL + 10 s to 2 TTL + 10 s after its last heartbeat.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { freePort } from "../test/support/ports.ts";
import { Proc } from "../test/support/processes.ts";
import { machineInfo, pct, printMachine, table } from "./_machine.ts";
import { memoryOf } from "./_proc-stats.ts";
import { SimAgent } from "./_sim-agent.ts";

const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: {
    agents: { type: "string", default: "100,1000,10000" },
    victims: { type: "string", default: "20" },
    "hub-args": { type: "string", default: "" },
    "heartbeat-ms": { type: "string", default: "10000" },
    "poll-ms": { type: "string", default: "250" },
  },
});
const COUNTS = opts.agents.split(",").map(Number);
const VICTIMS = Number(opts.victims);
const BEAT_MS = Number(opts["heartbeat-ms"]);
const POLL_MS = Number(opts["poll-ms"]);
if (COUNTS.some((n) => !(Number.isInteger(n) && n >= 1 && n <= 20_000)))
  throw new Error("--agents takes integers in 1..20000");
const log = (msg: string) => console.error(`[detection ${new Date().toISOString().slice(11, 19)}] ${msg}`);

type NodeJson = { id: string; status: string };

interface Row {
  n: number;
  joinS: number;
  suspect: number[];
  down: number[];
  falseNotReady: number;
  hubRssMiB: number;
  benchRssMiB: number;
}

async function run(n: number, hubArgs: string[]): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), "novacron-detect-"));
  const port = freePort();
  const hub = new Proc("hub", [
    process.execPath,
    "hub/main.ts",
    "serve",
    "--data",
    join(dir, "hub"),
    "--listen",
    `127.0.0.1:${port}`,
    "--admin-token",
    "bench-admin",
    "--join-token",
    "bench-join",
    ...hubArgs,
  ]);
  const api = async <T>(path: string): Promise<T> =>
    (await (
      await fetch(`http://127.0.0.1:${port}${path}`, { headers: { authorization: "Bearer bench-admin" } })
    ).json()) as T;
  const sims = Array.from(
    { length: n },
    (_, i) =>
      new SimAgent(`det-${String(i).padStart(5, "0")}`, [], {
        window: 1,
        heartbeatMs: BEAT_MS,
        resume: true,
        keepBeating: true,
      }),
  );
  try {
    hub.start();
    await hub.waitForLine(/hub listening/, 30_000);
    const url = `ws://127.0.0.1:${port}/v1/agent`;
    const t0 = performance.now();
    // All at once: the hub's admission gate lets them in at its rate.
    await Promise.all(sims.map((s) => s.connectRetrying(url, "bench-join", 600_000)));
    for (const s of sims) s.idle();
    const joinS = (performance.now() - t0) / 1000;
    log(`N=${n}: all joined in ${joinS.toFixed(1)} s; waiting until every node is ready`);
    for (;;) {
      const { nodes } = await api<{ nodes: NodeJson[] }>("/api/v1/nodes");
      if (nodes.length === n && nodes.every((x) => x.status === "ready")) break;
      await Bun.sleep(1000);
    }
    // Let every node beat at least once more after its admission.
    await Bun.sleep(BEAT_MS + 1000);
    const step = Math.max(1, Math.floor(n / VICTIMS));
    const victims = sims.filter((_, i) => i % step === 0).slice(0, VICTIMS);
    const victimIds = new Set(victims.map((v) => v.node));
    for (const v of victims) v.silence();
    const lastBeat = new Map(victims.map((v) => [v.node, v.lastBeatAt]));
    const suspectAt = new Map<string, number>();
    const downAt = new Map<string, number>();
    let falseNotReady = 0;
    let polling = true;
    const fleetPoll = (async () => {
      while (polling) {
        const { nodes } = await api<{ nodes: NodeJson[] }>("/api/v1/nodes");
        for (const x of nodes) if (!victimIds.has(x.id) && x.status !== "ready") falseNotReady += 1;
        await Bun.sleep(5000);
      }
    })();
    while (downAt.size < victims.length) {
      const got = await Promise.all(victims.map((v) => api<NodeJson>(`/api/v1/nodes/${v.node}`)));
      const now = Date.now();
      for (const g of got) {
        const since = now - lastBeat.get(g.id)!;
        if ((g.status === "suspect" || g.status === "down") && !suspectAt.has(g.id))
          suspectAt.set(g.id, since);
        if (g.status === "down" && !downAt.has(g.id)) downAt.set(g.id, since);
      }
      await Bun.sleep(POLL_MS);
    }
    polling = false;
    await fleetPoll;
    return {
      n,
      joinS,
      suspect: [...suspectAt.values()].sort((a, b) => a - b),
      down: [...downAt.values()].sort((a, b) => a - b),
      falseNotReady,
      hubRssMiB: (memoryOf(hub.pid!)?.rss ?? 0) / 1048576,
      benchRssMiB: process.memoryUsage.rss() / 1048576,
    };
  } finally {
    for (const s of sims) s.close();
    await hub.kill("SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  }
}

printMachine(machineInfo());
const hubArgs = opts["hub-args"].split(/\s+/).filter(Boolean);
const rows: Row[] = [];
for (const n of COUNTS) {
  rows.push(await run(n, hubArgs));
  await Bun.sleep(2000);
}
const nomad = (n: number) => {
  const ttl = Math.max(10, n / 50);
  return `${(ttl + 10).toFixed(0)}-${(2 * ttl + 10).toFixed(0)} s`;
};
console.log(
  `\nhub ${hubArgs.join(" ") || "(defaults)"}; agents heartbeat every ${BEAT_MS} ms; ${VICTIMS} victims per N, polled every ${POLL_MS} ms; times from each victim's last heartbeat\n`,
);
console.log(
  table([
    [
      "N",
      "join s",
      "suspect p50 s",
      "suspect max s",
      "down p50 s",
      "down max s",
      "Nomad TTL s",
      "Nomad down after",
      "others not ready",
      "hub RSS MiB",
      "bench RSS MiB",
    ],
    ...rows.map((r) => [
      r.n,
      r.joinS.toFixed(1),
      (pct(r.suspect, 0.5) / 1000).toFixed(1),
      ((r.suspect.at(-1) ?? 0) / 1000).toFixed(1),
      (pct(r.down, 0.5) / 1000).toFixed(1),
      ((r.down.at(-1) ?? 0) / 1000).toFixed(1),
      Math.max(10, r.n / 50).toFixed(0),
      nomad(r.n),
      r.falseNotReady,
      r.hubRssMiB.toFixed(0),
      r.benchRssMiB.toFixed(0),
    ]),
  ]),
);

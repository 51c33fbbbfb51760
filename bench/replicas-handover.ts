// Hub replicas: connected agents per replica, and the hand-over when the leading replica is SIGKILLed.
//
//   bun bench/replicas-handover.ts [--agents 10000] [--replicas 3] [--heartbeat-ms 10000]
//                                  [--admit-rate 2000] [--out bench/out/replicas-handover.json]
//
// A private PostgreSQL (fsync on), `--replicas` real hub processes on it (one hub key, one id), and in
// this process `--agents` simulated agents (bench/_sim-agent.ts: the agent's secure session, hello and
// heartbeats), each given a replica round-robin. Once every agent is welcomed, the replica that leads
// the controllers is SIGKILLed, and each of its agents reconnects to the next replica in its list, as
// the agent's link does with an ordered hub list. Measured from the kill: when the agents saw their
// connection end, when the last was welcomed elsewhere, when the directory no longer named the dead
// replica for any node, and when another replica led. Afterwards: every liveness transition written
// since the kill (a replica's death should make no node look down).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { openPostgres } from "../hub/store/sql/index.ts";
import { startPostgres } from "../test/support/postgres.ts";
import type { HubHandle } from "../test/support/processes.ts";
import { replicaId, startReplicas } from "../test/support/replicas.ts";
import { machineInfo, pct, printMachine, table } from "./_machine.ts";
import { memoryOf } from "./_proc-stats.ts";
import { SimAgent } from "./_sim-agent.ts";

const ROOT = resolve(import.meta.dir, "..");
const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: {
    agents: { type: "string", default: "10000" },
    replicas: { type: "string", default: "3" },
    "heartbeat-ms": { type: "string", default: "10000" },
    "admit-rate": { type: "string", default: "2000" },
    out: { type: "string", default: "bench/out/replicas-handover.json" },
  },
});
const AGENTS = Number(opts.agents);
const REPLICAS = Number(opts.replicas);
const HEARTBEAT_MS = Number(opts["heartbeat-ms"]);
if (!(Number.isInteger(AGENTS) && AGENTS >= 3 && AGENTS <= 20_000)) throw new Error("--agents is 3..20000");
if (!(Number.isInteger(REPLICAS) && REPLICAS >= 2 && REPLICAS <= 5)) throw new Error("--replicas is 2..5");
const log = (msg: string) => console.error(`[handover ${new Date().toISOString().slice(11, 19)}] ${msg}`);

async function main(): Promise<void> {
  const machine = machineInfo();
  const dir = mkdtempSync(join(tmpdir(), "novacron-handover-"));
  const pg = await startPostgres({ fsync: true, settings: { max_connections: "200" } });
  const url = await pg.newDatabase();
  const store = openPostgres(url);
  const hubs: HubHandle[] = [];
  const sims: SimAgent[] = [];
  try {
    hubs.push(
      ...(await startReplicas(dir, url, REPLICAS, {
        hubId: "bench-hub",
        args: ["--admit-rate", opts["admit-rate"]!],
      })),
    );
    const replicaIds = hubs.map((h) => replicaId(h) ?? "");
    const home = new Map<SimAgent, number>();
    for (let i = 0; i < AGENTS; i++) {
      const sim = new SimAgent(`ho-${String(i).padStart(5, "0")}`, [], {
        window: 64,
        heartbeatMs: HEARTBEAT_MS,
        resume: true,
        keepBeating: true,
      });
      sims.push(sim);
      home.set(sim, i % REPLICAS);
    }
    log(`${AGENTS} agents connecting to ${REPLICAS} replicas`);
    const tc = performance.now();
    for (let i = 0; i < sims.length; i += 200)
      await Promise.all(
        sims.slice(i, i + 200).map(async (s) => {
          await s.connect(`${hubs[home.get(s)!]!.wsUrl}/v1/agent`, hubs[0]!.joinToken);
          s.idle();
        }),
      );
    const connectS = (performance.now() - tc) / 1000;
    log(`all welcomed in ${connectS.toFixed(1)} s; letting last-seen times settle`);
    await Bun.sleep(8000);
    const perReplica = await store.all<{ replica: string; n: number }>(
      "SELECT replica, count(*) AS n FROM node_sessions WHERE replica IS NOT NULL GROUP BY replica",
    );
    const rss = hubs.map((h) => (memoryOf(h.proc.pid!)?.rss ?? 0) / 1048576);
    const leaderRow = await store.get<{ holder: string; epoch: number }>(
      "SELECT holder, epoch FROM leases WHERE name = 'controller'",
    );
    const dead = replicaIds.indexOf(leaderRow?.holder ?? "");
    if (dead < 0) throw new Error("no replica leads");
    const victims = sims.filter((s) => home.get(s) === dead);
    const lastEventId = Number(
      (await store.get<{ id: number }>("SELECT max(id) AS id FROM failover_events"))?.id ?? 0,
    );

    log(`SIGKILL replica ${dead} (${replicaIds[dead]}, the leader), which holds ${victims.length} sessions`);
    const killedAt = performance.now();
    await hubs[dead]!.proc.kill("SIGKILL");
    const closedAt: number[] = [];
    const welcomedAt: number[] = [];
    const failures: string[] = [];
    let directoryClearAt: number | undefined;
    let leaderAt: number | undefined;
    // Each victim, once it sees its connection end, goes to the next replica in its list.
    await Promise.all([
      ...victims.map(async (s) => {
        while (!s.closed) await Bun.sleep(5);
        closedAt.push(performance.now() - killedAt);
        s.stop();
        const next = hubs[(dead + 1 + (Number(s.node.slice(3)) % (REPLICAS - 1))) % REPLICAS]!;
        try {
          await s.connect(`${next.wsUrl}/v1/agent`, hubs[0]!.joinToken);
          s.idle();
          welcomedAt.push(performance.now() - killedAt);
        } catch (err) {
          failures.push(`${s.node}: ${(err as Error).message}`);
        }
      }),
      (async () => {
        const deadline = performance.now() + 120_000;
        while (performance.now() < deadline && (directoryClearAt === undefined || leaderAt === undefined)) {
          if (directoryClearAt === undefined) {
            const left = await store.get<{ n: number }>(
              "SELECT count(*) AS n FROM node_sessions WHERE replica = ?",
              [replicaIds[dead]!],
            );
            if (Number(left?.n ?? 1) === 0) directoryClearAt = performance.now() - killedAt;
          }
          if (leaderAt === undefined) {
            const l = await store.get<{ holder: string }>(
              "SELECT holder FROM leases WHERE name = 'controller' AND expires_at >= ?",
              [Date.now()],
            );
            if (l && l.holder !== replicaIds[dead]) leaderAt = performance.now() - killedAt;
          }
          await Bun.sleep(50);
        }
      })(),
    ]);
    // Long enough for the leader to have judged every node once it leads.
    await Bun.sleep(15_000);
    const transitions = await store.all<{ change: string; n: number }>(
      "SELECT change, count(*) AS n FROM failover_events WHERE id > ? AND kind = 'node' GROUP BY change ORDER BY change",
      [lastEventId],
    );
    const sorted = (xs: number[]) => xs.toSorted((a, b) => a - b);
    const closed = sorted(closedAt);
    const welcomed = sorted(welcomedAt);
    const result = {
      agents: AGENTS,
      replicas: REPLICAS,
      heartbeat_ms: HEARTBEAT_MS,
      connect_s: connectS,
      sessions_per_replica: Object.fromEntries(
        perReplica.map((r) => [`replica ${replicaIds.indexOf(r.replica)}`, Number(r.n)]),
      ),
      hub_rss_mib: rss,
      killed: { replica: dead, sessions: victims.length },
      closed_ms: { p50: pct(closed, 0.5), p99: pct(closed, 0.99), max: closed.at(-1) ?? null },
      welcomed_elsewhere_ms: {
        p50: pct(welcomed, 0.5),
        p99: pct(welcomed, 0.99),
        max: welcomed.at(-1) ?? null,
      },
      reconnect_failures: failures.length,
      directory_clear_ms: directoryClearAt ?? null,
      new_leader_ms: leaderAt ?? null,
      transitions_after_kill: transitions.map((t) => ({ change: t.change, n: Number(t.n) })),
    };
    printMachine(machine);
    console.log(
      `\n${table([
        ["agents", "replicas", "sessions per replica", "hub RSS MiB", "connect s"],
        [
          AGENTS,
          REPLICAS,
          Object.values(result.sessions_per_replica).join(" / "),
          rss.map((r) => r.toFixed(0)).join(" / "),
          connectS.toFixed(1),
        ],
      ])}`,
    );
    const ms = (x: number | null | undefined) =>
      x === null || x === undefined ? "never" : `${Math.round(x)}`;
    console.log(
      `\n${table([
        [
          "killed (leader)",
          "its sessions",
          "closed ms p50/p99/max",
          "welcomed elsewhere ms p50/p99/max",
          "failed",
          "directory clear ms",
          "new leader ms",
        ],
        [
          `replica ${dead}`,
          victims.length,
          `${ms(result.closed_ms.p50)}/${ms(result.closed_ms.p99)}/${ms(result.closed_ms.max)}`,
          `${ms(result.welcomed_elsewhere_ms.p50)}/${ms(result.welcomed_elsewhere_ms.p99)}/${ms(result.welcomed_elsewhere_ms.max)}`,
          failures.length,
          ms(result.directory_clear_ms),
          ms(result.new_leader_ms),
        ],
      ])}`,
    );
    console.log(
      `\nliveness transitions written after the kill: ${
        transitions.length === 0 ? "none" : transitions.map((t) => `${t.change} ×${t.n}`).join(", ")
      }`,
    );
    if (failures.length) console.log(`first failures: ${failures.slice(0, 3).join("; ")}`);
    const outPath = resolve(ROOT, opts.out!);
    mkdirSync(dirname(outPath), { recursive: true });
    writeFileSync(outPath, `${JSON.stringify({ machine, result }, null, 2)}\n`);
    log(`wrote ${outPath}`);
  } finally {
    for (const s of sims) s.close();
    for (const h of hubs) await h.proc.kill("SIGKILL");
    await store.close();
    await pg[Symbol.asyncDispose]();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();

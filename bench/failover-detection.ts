// Detection time and monitor cost against fleet size: the hub's heartbeat monitor over a real registry, on a fake clock.
//
//   bun bench/failover-detection.ts [--sizes 100,1000,10000] [--silent 50]
//
// For each fleet size N: N nodes are admitted into a real registry (SQLite file) and connected; every
// node is heard every 10 s (the default heartbeat) except `--silent` of them, which stop at t0. The
// clock is fake, so the times printed are the monitor's decisions, not the machine's speed:
// - detection: from the last heartbeat of a silent node to `suspect`, p50 and max over the silent
//   nodes, beside Nomad's heartbeat TTL for the same N (max(10 s, N / 50 per s), plus up to the same
//   again as stagger; https://developer.hashicorp.com/nomad/docs/configuration/server#heartbeat_grace);
// - cost: wall time of one monitor evaluation of all N nodes (a tick runs every 250 ms), measured.
import { parseArgs } from "node:util";
import { HeartbeatMonitor } from "../hub/failover/index.ts";
import { Registry } from "../hub/registry/index.ts";
import { openHubDb } from "../hub/store/db.ts";
import { wrapSqlite } from "../hub/store/sql/index.ts";
import { FakeClock } from "../test/support/fake-clock.ts";
import { admitDirect, helloBody } from "../test/support/hub-core.ts";
import { tempDir } from "../test/support/processes.ts";
import { machineInfo, pct, printMachine } from "./_machine.ts";

const { values } = parseArgs({
  options: {
    sizes: { type: "string", default: "100,1000,10000" },
    silent: { type: "string", default: "50" },
  },
});
const sizes = values.sizes.split(",").map(Number);
const silentCount = Number(values.silent);

printMachine(machineInfo());
console.log("2 cores shared with other engineers' test runs: the cost column is noisy.\n");
console.log("nodes   detection p50   detection max   Nomad TTL (+stagger)    evaluate all nodes p50 / max");
for (const n of sizes) {
  using dir = tempDir("novacron-bench-detect-");
  const clock = new FakeClock();
  const db = await openHubDb(dir.path);
  const policy = {
    suspectAfterMs: 25_000,
    downAfterMs: 60_000,
    restartGraceMs: 30_000,
    keyLifetimeMs: 86_400_000,
  };
  const registry = new Registry(wrapSqlite(db), policy, () => clock.now());
  const ids = Array.from({ length: n }, (_, i) => `node-${i}`);
  for (const id of ids) await admitDirect(registry, helloBody(id));
  const suspectAt = new Map<string, number>();
  const monitor = new HeartbeatMonitor({
    source: registry,
    clock,
    policy: {
      suspectAfterMs: 25_000,
      disconnectAfterMs: 2_000,
      downAfterMs: 60_000,
      restartGraceMs: 30_000,
      jitter: 0.2,
      tickMs: 250,
    },
    onTransition: (t) => {
      if (t.to === "suspect" && !suspectAt.has(t.node)) suspectAt.set(t.node, clock.now());
    },
  });
  registry.onLiveness = (id, up) => monitor.onLiveness(id, up);
  for (const id of ids) registry.setConnected(id, "ws");
  const silent = new Set(ids.slice(0, silentCount));
  const t0 = clock.now();
  const costs: number[] = [];
  // Two minutes of fleet time in 250 ms ticks; the live nodes are heard every 10 s, spread over the period.
  for (let tick = 1; tick <= 480; tick++) {
    await clock.advance(250);
    const slot = tick % 40;
    for (let i = slot; i < n; i += 40) if (!silent.has(ids[i]!)) registry.seen(ids[i]!);
    const start = performance.now();
    monitor.evaluate();
    costs.push(performance.now() - start);
  }
  const lastHeard = t0; // the silent nodes were last heard when they connected, at t0
  const detect = [...silent].map((id) => (suspectAt.get(id) ?? Number.NaN) - lastHeard).sort((a, b) => a - b);
  const falseAlarms = [...suspectAt.keys()].filter((id) => !silent.has(id)).length;
  const nomad = Math.max(10_000, (n / 50) * 1000);
  const sorted = costs.sort((a, b) => a - b);
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  console.log(
    `${String(n).padEnd(7)} ${s(pct(detect, 0.5)).padStart(13)}   ${s(detect.at(-1)!).padStart(13)}   ${`${s(nomad)} (+${s(nomad)})`.padStart(20)}    ${pct(sorted, 0.5).toFixed(2)} ms / ${sorted.at(-1)!.toFixed(2)} ms${falseAlarms ? `   (${falseAlarms} live nodes suspected!)` : ""}`,
  );
  db.close();
}

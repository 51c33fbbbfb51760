// Cost of one alert evaluation against fleet size: the pure decision alone, and the whole pass of a real hub core.
//
//   bun bench/alert-evaluate.ts [--sizes 1000,10000] [--runs 20]
//
// For each fleet size N:
// - pure: `evaluateAlerts` with the seven built-in rules over N nodes (8 series each, 5% of them
//   down, 2% with a full disk, drop counters), 200 workloads, with the alerts of the previous run
//   live (the steady state: nothing new opens);
// - pass: `Alerter.evaluate()` in a hub core on a real SQLite file with N nodes admitted (no
//   sessions, no series: nothing fires), each with drop counters reported: gathering the facts
//   (registry, monitor, latest series, a counters query per node), the pure decision, and the
//   transaction that writes it. The hub runs one every --alert-interval (5 s) and after node
//   transitions.
import { parseArgs } from "node:util";
import { BUILTIN_RULES, emptyMemory, evaluateAlerts, type NodeFacts } from "../hub/events/index.ts";
import { FakeClock } from "../test/support/fake-clock.ts";
import { admitDirect, helloBody, openHubCore } from "../test/support/hub-core.ts";
import { tempDir } from "../test/support/processes.ts";
import { machineInfo, printMachine } from "./_machine.ts";

const { values } = parseArgs({
  options: { sizes: { type: "string", default: "1000,10000" }, runs: { type: "string", default: "20" } },
});
const sizes = values.sizes.split(",").map(Number);
const runs = Number(values.runs);
const T0 = 1_718_000_000_000;

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const ms = (x: number) => `${x.toFixed(2)} ms`;

function fleet(n: number): NodeFacts[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `node-${i}`,
    health: i % 20 === 0 ? "disconnected" : "ready",
    reason: "connection closed",
    lastSeen: T0 - (i % 20 === 0 ? 120_000 : 1000),
    dropped: i * 3,
    series: new Map([
      ["cpu.util", (i * 7) % 100],
      ["cpu.load1", 0.5],
      ["mem.used_pct", 60],
      ["mem.avail_bytes", 2e9],
      ["net.rx_bps", 1e5],
      ["net.tx_bps", 1e5],
      ['disk.used_pct{mount="/"}', i % 50 === 0 ? 95 : 40],
      ["temp.cpu_c", 55],
    ]),
  }));
}

printMachine(machineInfo());
console.log("2 cores shared with other engineers' test runs: figures are wall-clock and noisy.\n");
console.log(
  "nodes    pure evaluation p50 / max (live alerts)     whole pass (facts + decide + write) p50 / max",
);
for (const n of sizes) {
  const nodes = fleet(n);
  const workloads = Array.from({ length: 200 }, (_, i) => ({
    name: `w-${i}`,
    rollout: { state: i % 40 === 0 ? "failed" : "idle", message: "x" },
  }));
  const memory = emptyMemory();
  const facts = { now: T0, nodes, workloads, failover: [] };
  const first = evaluateAlerts(BUILTIN_RULES, facts, [], memory);
  const live = first.open.map((o, i) => ({ id: i + 1, ...o, started_at: T0, updated_at: T0 }));
  const pure: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t = performance.now();
    evaluateAlerts(BUILTIN_RULES, { ...facts, now: T0 + r * 5000 }, live, memory);
    pure.push(performance.now() - t);
  }

  using dir = tempDir("novacron-bench-alerts-");
  const clock = new FakeClock(T0);
  using core = await openHubCore(dir.path, { clock });
  for (let i = 0; i < n; i++) await admitDirect(core.registry, helloBody(`node-${i}`));
  for (let i = 0; i < n; i++)
    core.registry.epochs.report(`node-${i}`, { pending: 0, epoch: "s1", produced: 1000, dropped: i });
  await core.registry.flushSeen();
  await core.alerter.evaluate();
  const pass: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t = performance.now();
    await core.alerter.evaluate();
    pass.push(performance.now() - t);
  }
  console.log(
    `${String(n).padEnd(8)} ${`${ms(pct(pure, 50))} / ${ms(Math.max(...pure))} (${live.length})`.padEnd(43)} ${ms(pct(pass, 50))} / ${ms(Math.max(...pass))}`,
  );
}

// Summary size and uplink bytes per hour for a child hub with 10,000 nodes (simulated fleet, real reporter and codec).
//
//   bun bench/federation-summary.ts [--nodes 10000] [--regions 4] [--sites 25] [--workloads 50]
//
// The child hub's own Reporter (hub/federation/reporter.ts) over an in-memory fleet: every message it would
// send is encoded as on the wire (CBOR envelope) plus the session layer's sealing overhead per frame. One
// simulated hour per churn rate (status flips spread at random over the hour, each reported as it happens,
// a summary every 2 s when it changed); heartbeats (1 s) and their acks are counted apart.
import { parseArgs } from "node:util";
import { type LocalNode, Reporter } from "../hub/federation/index.ts";
import {
  type Body,
  encodeFrame,
  envelope,
  type MessageType,
  SUMMARY_LIMITS,
} from "../shared/protocol/index.ts";
import { DATA_OVERHEAD } from "../shared/secure/index.ts";
import { mulberry32 } from "../test/support/prng.ts";
import { machineInfo, printMachine, table } from "./_machine.ts";

const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: {
    nodes: { type: "string", default: "10000" },
    regions: { type: "string", default: "4" },
    sites: { type: "string", default: "25" },
    workloads: { type: "string", default: "50" },
  },
});
const N = Number(opts.nodes);
const REGIONS = Number(opts.regions);
const SITES = Number(opts.sites);
const WORKLOADS = Number(opts.workloads);

const wire = <T extends MessageType>(type: T, body: Body<T>) =>
  encodeFrame(envelope(type, "metro-eu-1", body, { ts: 1_800_000_000_000 })).byteLength + DATA_OVERHEAD;

function fleet(): LocalNode[] {
  const nodes: LocalNode[] = [];
  for (let i = 0; i < N; i++) {
    const region = `eu-${i % REGIONS}`;
    const site = `site-${Math.floor(i / REGIONS) % SITES}`;
    nodes.push({
      id: `edge-${region}-${site}-${String(i).padStart(5, "0")}`,
      level: i % 5 < 2 ? 4 : 5,
      region,
      site,
      status: "ready",
      cpuFree: 2000 + (i % 7) * 250,
      memFree: 4096 + (i % 5) * 512,
    });
  }
  return nodes;
}

function run(churnPerHour: number) {
  const nodes = fleet();
  const byId = new Map(nodes.map((n) => [n.id, n]));
  let now = 0;
  let bytes = { summary: 0, topology: 0 };
  let frames = { summary: 0, topology: 0 };
  let firstSummary = 0;
  const reporter = new Reporter({
    hubId: "metro-eu-1",
    level: 3,
    now: () => now,
    localNode: (id) => byId.get(id),
    localNodes: () => nodes,
    workloads: () =>
      Array.from({ length: WORKLOADS }, (_, i) => ({
        name: `svc-${i}`,
        replicas: 3,
        running: 3,
        healthy: 3,
      })),
    children: () => [],
    childRosters: () => [],
    send: (type, body) => {
      const b = wire(type, body as never);
      if (type === "summary") {
        if ((body as Body<"summary">).roster_z) firstSummary ||= b;
        bytes.summary += b;
        frames.summary += 1;
      } else {
        bytes.topology += b;
        frames.topology += 1;
      }
      return true;
    },
    // Flushed by hand below: the hour is simulated.
    setTimer: () => 0,
  });
  reporter.prime();
  reporter.onConnected();
  const plain = reporter.build(false);
  const plainBytes = wire("summary", { rev: 2, ...plain });
  bytes = { summary: 0, topology: 0 };
  frames = { summary: 0, topology: 0 };
  const rnd = mulberry32(42);
  const events = Array.from({ length: churnPerHour }, () => Math.floor(rnd() * 3_600_000)).sort(
    (a, b) => a - b,
  );
  let e = 0;
  for (let tick = 2000; tick <= 3_600_000; tick += 2000) {
    while (e < events.length && events[e]! < tick) {
      now = events[e]!;
      const n = nodes[Math.floor(rnd() * nodes.length)]!;
      n.status = n.status === "ready" ? "down" : "ready";
      reporter.markDirty(n.id);
      reporter.flush();
      e += 1;
    }
    now = tick;
    reporter.sendSummary(false);
  }
  return { firstSummary, plain, plainBytes, groups: plain.groups.length, bytes, frames };
}

printMachine(machineInfo());
const heartbeat = wire("heartbeat", { pending: 0, rtt: 1.2 });
const ack = wire("ack", { upto: 0, echo: 1_800_000_000_000 });
const base = run(0);
// Open alerts ride in the summary: at most SUMMARY_LIMITS.alerts, each message at most 256 characters.
const alerts = (n: number, len: number) =>
  Array.from({ length: n }, (_, i) => ({
    hub: "metro-eu-1",
    id: 1000 + i,
    rule: "node-down",
    node: `edge-eu-0-site-0-${String(i).padStart(5, "0")}`,
    severity: "critical",
    state: "open" as const,
    message: "m".repeat(len),
    open_ms: 123_456 + i,
  }));
const withAlerts = (n: number, len: number) =>
  wire("summary", { rev: 2, ...base.plain, alerts: alerts(n, len) });
console.log(`fleet: ${N} nodes, ${REGIONS} regions x ${SITES} sites, levels 4-5, ${WORKLOADS} workloads`);
console.log(
  table([
    ["message (bytes on the wire, sealed)", "bytes"],
    ["summary with roster (session start, resync)", base.firstSummary],
    [`summary without roster (${base.groups} groups)`, base.plainBytes],
    ["  the same with 10 open alerts (80-character messages)", withAlerts(10, 80)],
    [
      `  the same with ${SUMMARY_LIMITS.alerts} open alerts (256 characters: the most)`,
      withAlerts(SUMMARY_LIMITS.alerts, 256),
    ],
    [
      "topology change, one node",
      wire("topology", {
        rev: 3,
        changes: [
          {
            node: "edge-eu-0-site-0-00000",
            hub: "metro-eu-1",
            level: 4,
            region: "eu-0",
            site: "site-0",
            from: "ready",
            to: "down",
            at: 1_800_000_000_000,
            cpu_free: 2000,
            mem_free: 4096,
          },
        ],
      }),
    ],
    ["heartbeat up / ack down", `${heartbeat} / ${ack}`],
  ]),
);
const rows: (string | number)[][] = [
  [
    "status changes per hour",
    "summaries",
    "change msgs",
    "summary KiB",
    "changes KiB",
    "heartbeats KiB",
    "uplink KiB/h",
  ],
];
for (const churn of [0, 100, 1000, 10_000]) {
  const r = run(churn);
  const hb = 3600 * heartbeat;
  const kib = (b: number) => (b / 1024).toFixed(1);
  rows.push([
    churn,
    r.frames.summary,
    r.frames.topology,
    kib(r.bytes.summary),
    kib(r.bytes.topology),
    kib(hb),
    kib(r.bytes.summary + r.bytes.topology + hb),
  ]);
}
console.log(table(rows));
console.log("(plus one summary with roster per session; downlink: one ack per heartbeat)");

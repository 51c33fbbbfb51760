// Seeded generators of five-tier fleets and placement requests, for the placement tests and benchmarks.
import type {
  FleetNode,
  FleetState,
  NodeHealth,
  PlacementRequest,
  Resources,
} from "../hub/placement/index.ts";

export { mulberry32 as rng } from "../test/support/prng.ts";

import { mulberry32 as rng } from "../test/support/prng.ts";

export type Rand = () => number;
export const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
export const int = (r: Rand, lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));
const chance = (r: Rand, p: number) => r() < p;

const REGIONS = [
  { name: "us-east", jurisdiction: "US" },
  { name: "us-west", jurisdiction: "US" },
  { name: "eu-west", jurisdiction: "EU" },
  { name: "eu-central", jurisdiction: "EU" },
  { name: "ch-north", jurisdiction: "CH" },
  { name: "ap-south", jurisdiction: "SG" },
] as const;

/** Capacity by level: cloud VMs down to device boxes. */
const CAPACITY: Record<number, Resources> = {
  1: { cpu_millis: 32_000, mem_mb: 131_072, disk_mb: 2_000_000 },
  2: { cpu_millis: 16_000, mem_mb: 65_536, disk_mb: 1_000_000 },
  3: { cpu_millis: 8_000, mem_mb: 32_768, disk_mb: 500_000 },
  4: { cpu_millis: 4_000, mem_mb: 8_192, disk_mb: 128_000 },
  5: { cpu_millis: 1_000, mem_mb: 1_024, disk_mb: 16_000 },
};
const UPTIME: Record<number, number> = { 1: 0.9999, 2: 0.9995, 3: 0.999, 4: 0.995, 5: 0.95 };
const HUB_RTT: Record<number, [number, number]> = {
  1: [1, 8],
  2: [3, 15],
  3: [8, 25],
  4: [15, 50],
  5: [20, 90],
};

export const TARGETS = ["market:NYSE", "market:LSE", "site:plant-7"] as const;

export interface FleetOptions {
  nodes: number;
  seed: number;
  /** Share of capacity already allocated, on average (default 0.4). */
  load?: number;
}

function level(r: Rand): number {
  const x = r();
  return x < 0.02 ? 1 : x < 0.1 ? 2 : x < 0.3 ? 3 : x < 0.7 ? 4 : 5;
}

function health(r: Rand): NodeHealth {
  const x = r();
  return x < 0.95 ? "ready" : x < 0.97 ? "suspect" : x < 0.99 ? "down" : "draining";
}

/** A fleet of `nodes` nodes over six regions, three zones each, sites of about twenty nodes. */
export function generateFleet(options: FleetOptions): FleetState {
  const r = rng(options.seed);
  const load = options.load ?? 0.4;
  const sitesPerZone = Math.max(1, Math.round(options.nodes / (REGIONS.length * 3 * 20)));
  const nodes: FleetNode[] = [];
  for (let k = 0; k < options.nodes; k++) {
    const lv = level(r);
    const region = pick(r, REGIONS);
    const zone = `${region.name}-${"abc"[int(r, 0, 2)]}`;
    const site = `${zone}-s${int(r, 0, sitesPerZone - 1)}`;
    const cap = CAPACITY[lv]!;
    const taken = Math.min(0.95, r() * 2 * load);
    const capabilities: string[] = [];
    if (lv <= 3 && chance(r, 0.1)) capabilities.push("gpu");
    if (lv === 5 && chance(r, 0.3)) capabilities.push("camera");
    if (chance(r, 0.5)) capabilities.push("ssd");
    if (lv === 2 && region.name === "us-east" && chance(r, 0.5)) capabilities.push("market:NYSE");
    const rtt_ms: Record<string, number> = {};
    if (region.name === "us-east" && lv <= 3)
      rtt_ms["market:NYSE"] = round2(lv === 2 ? 0.1 + r() * 2 : 1 + r() * 8);
    if (region.name.startsWith("eu") && lv <= 3) rtt_ms["market:LSE"] = round2(0.2 + r() * 10);
    if (region.name === "eu-west" && lv >= 3 && chance(r, 0.3))
      rtt_ms["site:plant-7"] = round2(0.5 + r() * 20);
    const [lo, hi] = HUB_RTT[lv]!;
    nodes.push({
      id: `n${String(k).padStart(6, "0")}`,
      level: lv,
      status: health(r),
      arch: lv === 5 ? (chance(r, 0.6) ? "arm64" : "x64") : lv === 4 && chance(r, 0.3) ? "arm64" : "x64",
      capacity: { ...cap },
      allocated: {
        cpu_millis: Math.round(cap.cpu_millis * taken),
        mem_mb: Math.round(cap.mem_mb * Math.min(0.95, taken * (0.5 + r()))),
        disk_mb: Math.round(cap.disk_mb * taken * 0.5),
      },
      labels: {
        region: region.name,
        zone,
        site,
        jurisdiction: region.jurisdiction,
        cost: String(int(r, 1, 10) * (6 - lv)),
        ...(chance(r, 0.2) ? { tier: pick(r, ["gold", "silver"]) } : {}),
      },
      capabilities,
      availability: Math.min(1, UPTIME[lv]! - r() * (1 - UPTIME[lv]!) * 3),
      hub_rtt_ms: round2(lo + r() * (hi - lo)),
      rtt_ms,
    });
  }
  return { nodes };
}

const round2 = (x: number) => Math.round(x * 100) / 100;

/** A realistic request mix: a level band, often a selector or residency, sometimes a latency target. */
export function generateRequest(r: Rand, name: string): PlacementRequest {
  const lo = int(r, 1, 4);
  const hi = Math.min(5, lo + int(r, 0, 2));
  const placement: NonNullable<PlacementRequest["placement"]> = { levels: [lo, hi] };
  if (chance(r, 0.3)) placement.prefer_level = int(r, lo, hi);
  if (chance(r, 0.2)) placement.jurisdictions = [pick(r, ["EU", "US", "CH"])];
  if (chance(r, 0.15)) placement.labels = pick(r, ["tier in (gold,silver)", "!tier", "tier=gold"]);
  if (chance(r, 0.1)) placement.capabilities = ["ssd"];
  if (chance(r, 0.3)) placement.prefer_capabilities = ["ssd", "gpu"];
  if (chance(r, 0.1)) placement.latency = { target: "market:NYSE", max_ms: pick(r, [1, 2, 5]) };
  if (chance(r, 0.1)) placement.arch = ["x64"];
  placement.preset = pick(r, ["balanced", "balanced", "latency-first", "cost-first", "availability-first"]);
  const replicas = chance(r, 0.7) ? 1 : int(r, 2, 3);
  if (replicas > 1 && chance(r, 0.5))
    placement.spread = { by: pick(r, ["zone", "site", "node"]), max_per: 1 };
  const scale = 6 - hi;
  return {
    name,
    replicas,
    resources: {
      cpu_millis: int(r, 1, 8) * 50 * scale,
      mem_mb: int(r, 1, 8) * 64 * scale,
      disk_mb: int(r, 0, 4) * 256,
    },
    placement,
  };
}

export interface SmallInstance {
  state: FleetState;
  requests: PlacementRequest[];
}

/**
 * A tiny, tight instance that brute force can solve: 3-6 nodes over two zones, 3-6 requests with
 * 1-2 replicas (at most 8 in all), demand about equal to free capacity, varied cpu/memory shapes.
 */
export function smallInstance(seed: number): SmallInstance {
  const r = rng(seed);
  const n = int(r, 3, 6);
  const nodes: FleetNode[] = [];
  for (let k = 0; k < n; k++) {
    const lv = int(r, 2, 4);
    nodes.push({
      id: `s${k}`,
      level: lv,
      status: chance(r, 0.9) ? "ready" : "suspect",
      arch: chance(r, 0.8) ? "x64" : "arm64",
      capacity: { cpu_millis: int(r, 4, 12) * 250, mem_mb: int(r, 4, 12) * 256, disk_mb: 10_000 },
      allocated: { cpu_millis: int(r, 0, 3) * 250, mem_mb: int(r, 0, 3) * 256, disk_mb: 0 },
      labels: { zone: `z${k % 2}`, site: `site${k % 3}`, region: "r1", cost: String(int(r, 1, 9)) },
      capabilities: chance(r, 0.5) ? ["ssd"] : [],
      availability: 0.9 + r() * 0.1,
      hub_rtt_ms: round2(1 + r() * 30),
      rtt_ms: chance(r, 0.6) ? { "market:NYSE": round2(0.2 + r() * 3) } : {},
    });
  }
  const requests: PlacementRequest[] = [];
  let slots = 0;
  const count = int(r, 3, 6);
  for (let w = 0; w < count && slots < 8; w++) {
    const replicas = Math.min(8 - slots, chance(r, 0.7) ? 1 : 2);
    slots += replicas;
    const cpuHeavy = chance(r, 0.5);
    const placement: NonNullable<PlacementRequest["placement"]> = {
      preset: pick(r, ["balanced", "latency-first", "cost-first", "availability-first"]),
    };
    if (chance(r, 0.3)) placement.levels = [2, int(r, 3, 4)];
    if (chance(r, 0.3)) placement.prefer_capabilities = ["ssd"];
    if (chance(r, 0.3)) placement.prefer_level = int(r, 2, 4);
    if (chance(r, 0.2))
      placement.latency = { target: "market:NYSE", ...(chance(r, 0.5) ? { max_ms: 2.5 } : {}) };
    if (chance(r, 0.2)) placement.strategy = "spread";
    if (chance(r, 0.15)) placement.affinity = { workload: "db", by: "site" };
    if (replicas > 1) placement.spread = { by: pick(r, ["node", "zone", "site"]), max_per: 1 };
    requests.push({
      name: `w${w}`,
      replicas,
      resources: {
        cpu_millis: (cpuHeavy ? int(r, 3, 8) : int(r, 1, 3)) * 250,
        mem_mb: (cpuHeavy ? int(r, 1, 3) : int(r, 3, 8)) * 256,
      },
      placement,
    });
  }
  const db = nodes.filter((_, k) => k % 2 === 0).map((x) => ({ workload: "db", node: x.id }));
  return { state: { nodes, allocations: db }, requests };
}

/**
 * A failover re-placement that is tight on purpose: `count` requests confined to one region and
 * levels 3-4 (as if a metro site's workloads moved to its neighbours), whose total demand is
 * `tightness` times the free cpu and memory of the ready nodes there, in cpu-heavy, memory-heavy and
 * balanced shapes. One in five asks for two replicas on different nodes.
 */
export function failoverBatch(
  state: FleetState,
  count: number,
  seed: number,
  tightness: number,
): PlacementRequest[] {
  const r = rng(seed);
  const region = "eu-west";
  const eligible = state.nodes.filter(
    (n) => n.status === "ready" && n.labels.region === region && n.level >= 3 && n.level <= 4,
  );
  const free = [0, 0];
  for (const n of eligible) {
    free[0]! += n.capacity.cpu_millis - n.allocated.cpu_millis;
    free[1]! += n.capacity.mem_mb - n.allocated.mem_mb;
  }
  const replicas = Array.from({ length: count }, () => (chance(r, 0.2) ? 2 : 1));
  const total = replicas.reduce((a, b) => a + b, 0);
  const mean = free.map((f) => (tightness * f) / total);
  const shapes = [
    [1.6, 0.4],
    [0.4, 1.6],
    [1, 1],
  ] as const;
  return replicas.map((n, k) => {
    const shape = pick(r, shapes);
    const size = 0.5 + r();
    const placement: NonNullable<PlacementRequest["placement"]> = {
      regions: [region],
      levels: [3, 4],
      preset: pick(r, ["balanced", "balanced", "latency-first", "cost-first", "availability-first"]),
    };
    if (chance(r, 0.3)) placement.prefer_level = int(r, 3, 4);
    if (chance(r, 0.3)) placement.prefer_capabilities = ["ssd"];
    if (n > 1) placement.spread = { by: "node", max_per: 1 };
    return {
      name: `f${k}`,
      replicas: n,
      resources: {
        cpu_millis: Math.max(50, Math.round((mean[0]! * shape[0] * size) / 50) * 50),
        mem_mb: Math.max(64, Math.round((mean[1]! * shape[1] * size) / 64) * 64),
      },
      placement,
    };
  });
}

/** A ready level-3 x64 node with 4 cores, 8 GB and 100 GB free, no labels; override any field. */
export function fleetNode(id: string, over: Partial<FleetNode> = {}): FleetNode {
  return {
    id,
    level: 3,
    status: "ready",
    arch: "x64",
    capacity: { cpu_millis: 4000, mem_mb: 8192, disk_mb: 100_000 },
    allocated: { cpu_millis: 0, mem_mb: 0, disk_mb: 0 },
    labels: {},
    capabilities: [],
    availability: 1,
    ...over,
  };
}

// Public types of placement: the fleet as placement sees it, the request, and the explained plan.

/** Health states of a node; only `ready` nodes take new work. */
export type NodeHealth = "ready" | "suspect" | "down" | "draining";

/** Amounts of the three placed resources. */
export interface Resources {
  cpu_millis: number;
  mem_mb: number;
  disk_mb: number;
}

/** One node as placement sees it: capacity, what is taken, where it is and how well it is connected. */
export interface FleetNode {
  id: string;
  /** Tier 1 (cloud) .. 5 (device). */
  level: number;
  status: NodeHealth;
  /** CPU architecture, e.g. `x64`, `arm64`. */
  arch: string;
  capacity: Resources;
  /** Sum of the resources of the allocations this node holds. */
  allocated: Resources;
  /** Live usage from the node's metrics; when higher than `allocated`, it is what counts as taken. */
  usage?: Partial<Resources> | undefined;
  /** region, zone, site, jurisdiction, cost, ... */
  labels: Readonly<Record<string, string>>;
  /** gpu, camera, market:NYSE, ... */
  capabilities: readonly string[];
  /** Legal jurisdiction of the host; falls back to the `jurisdiction` label. */
  jurisdiction?: string | undefined;
  /** Share of time connected over the measurement window, 0..1. */
  availability: number;
  /** Hub-to-node round-trip time in ms, from heartbeats. */
  hub_rtt_ms?: number | undefined;
  /** Node-to-target round-trip times in ms from the node's probes, keyed by target (`market:NYSE`). */
  rtt_ms?: Readonly<Record<string, number>> | undefined;
}

/** A workload replica that already runs somewhere (its resources are already in its node's `allocated`). */
export interface Allocation {
  workload: string;
  node: string;
}

/** Everything placement reads: the nodes and the allocations they hold. */
export interface FleetState {
  nodes: readonly FleetNode[];
  allocations?: readonly Allocation[] | undefined;
}

/** Topology domains that replicas spread over and that affinity refers to. */
export type Domain = "node" | "site" | "zone" | "region";

/** How the resource part rates a node: fuller after placement (`binpack`) or emptier (`spread`). */
export type Strategy = "binpack" | "spread";

/** The named weight sets. */
export type PresetName = "balanced" | "latency-first" | "cost-first" | "availability-first";

/** The parts of the score, each worth 0..1 times its weight. */
export type PartName = "resources" | "latency" | "capabilities" | "level" | "availability" | "cost";

export type Weights = Record<PartName, number>;

/**
 * A label selector: `{k: "v"}` (equals), `{k: ["a","b"]}` (one of), or a selector string such as
 * `"site in (a,b), tier=gold, zone!=z1, !gpu, ssd"`.
 */
export type LabelSelector = Readonly<Record<string, string | readonly string[]>> | string;

/** The `placement` block of a workload spec. */
export interface PlacementSpec {
  /** Allowed tiers, inclusive. */
  levels?: readonly [number, number] | undefined;
  arch?: readonly string[] | undefined;
  /** Required capabilities: every one must be present. */
  capabilities?: readonly string[] | undefined;
  /** Preferred capabilities: each one present adds to the capability part. */
  prefer_capabilities?: readonly string[] | undefined;
  labels?: LabelSelector | undefined;
  /** Data residency: allowed jurisdictions. */
  jurisdictions?: readonly string[] | undefined;
  /** Data residency: allowed regions (the `region` label). */
  regions?: readonly string[] | undefined;
  /** Latency to a named target (`market:NYSE`, `site:plant-7`, or `hub`); `max_ms` makes it a hard ceiling. */
  latency?: { target: string; max_ms?: number | undefined } | undefined;
  prefer_level?: number | undefined;
  preset?: PresetName | undefined;
  /** Overrides of the preset's weights. */
  weights?: Partial<Weights> | undefined;
  strategy?: Strategy | undefined;
  /** Replicas spread over domains; `max_per` is a hard cap per domain. */
  spread?: { by: Domain; max_per?: number | undefined } | undefined;
  /** Only nodes whose domain already runs this other workload. */
  affinity?: { workload: string; by?: Domain | undefined } | undefined;
}

/** What to place: the resource and placement parts of a workload spec (DESIGN section 11). */
export interface PlacementRequest {
  /** Workload name: its existing allocations count towards spread, and others may refer to it. */
  name?: string | undefined;
  resources?: Partial<Resources> | undefined;
  /** New replicas to place (default 1). */
  replicas?: number | undefined;
  /** Pinned nodes: no scoring, but health and free resources still apply. */
  nodes?: readonly string[] | undefined;
  placement?: PlacementSpec | undefined;
}

/** Why a node was removed. Each removed node is counted once, under the first filter that removed it. */
export type FilterName =
  | "unknown_node"
  | "health"
  | "level"
  | "arch"
  | "capabilities"
  | "labels"
  | "jurisdiction"
  | "region"
  | "latency"
  | "affinity"
  | "resources";

export interface FilterCount {
  filter: FilterName;
  /** The specific reason within the filter (`capability:gpu`, `cpu`, `down`, ...). */
  detail: string;
  count: number;
  /** e.g. `3 nodes: latency to market:NYSE 1.8 ms > 1 ms` */
  text: string;
  /** The first few removed node ids, in fleet order. */
  examples: string[];
}

export interface PartScore {
  /** 0..1 */
  value: number;
  /** value times the part's normalised weight, out of 100 in all. */
  points: number;
}

export interface Candidate {
  node: string;
  /** 0..100 */
  score: number;
  parts: Record<PartName, PartScore>;
}

export interface Placement {
  node: string;
  /** 0-based index among the replicas placed by this plan. */
  replica: number;
  score: number;
  /** Placed on a pinned node, without scoring. */
  pinned: boolean;
}

/** The answer for one request: where its replicas go, and why. */
export interface Plan {
  workload: string | undefined;
  requested: number;
  placements: Placement[];
  /** Every requested replica is placed. */
  complete: boolean;
  /** Why some or all replicas are not placed; absent when complete. */
  reason?: string | undefined;
  /** Nodes that passed every filter, best first, up to the requested number. */
  candidates: Candidate[];
  considered: number;
  /** Nodes that passed every filter. */
  feasible: number;
  /** What removed the others, most first. */
  filtered: FilterCount[];
  /** One line: `12 nodes: level outside 2-3; 3 nodes: latency to market:NYSE 1.8 ms > 1 ms`. */
  summary: string;
  /** The weights used, normalised to sum to 100. */
  weights: Weights;
  strategy: Strategy;
}

export interface BatchPlan {
  /** One plan per request, in request order. */
  plans: Plan[];
  requested: number;
  placed: number;
  /** Sum of the scores of every placement (the quantity batch placement maximises after the count). */
  total_score: number;
  complete: boolean;
}

export interface PlaceOptions {
  /** How many ranked candidates a plan lists (default 10). */
  candidates?: number;
  /** How many example node ids each filter count keeps (default 3). */
  examples?: number;
}

// The fleet in columns (typed arrays, interned strings), built once and read by every placement.
import type { FleetState, NodeHealth, Resources } from "./types.ts";

/** Status codes in the `status` column; 0 is the only one that takes work. */
export const STATUS_CODES: Readonly<Record<NodeHealth, number>> = {
  ready: 0,
  suspect: 1,
  down: 2,
  draining: 3,
};
export const STATUS_NAMES: readonly NodeHealth[] = ["ready", "suspect", "down", "draining"];

/** Resource dimensions in column order: row i of `cap`/`used` is [cpu, mem, disk] at 3i..3i+2. */
export const DIMS = ["cpu_millis", "mem_mb", "disk_mb"] as const satisfies readonly (keyof Resources)[];

/** One string attribute of every node, interned: `ids[i]` is an index into `values`, or -1 when absent. */
export class Column {
  readonly values: string[] = [];
  readonly lookup = new Map<string, number>();
  readonly ids: Int32Array;
  constructor(size: number) {
    this.ids = new Int32Array(size).fill(-1);
  }
  set(node: number, value: string): void {
    let id = this.lookup.get(value);
    if (id === undefined) {
      id = this.values.length;
      this.values.push(value);
      this.lookup.set(value, id);
    }
    this.ids[node] = id;
  }
}

/** Immutable, indexed view of a FleetState; build it with `indexFleet` and reuse it across placements. */
export class FleetIndex {
  readonly size: number;
  readonly ids: readonly string[];
  /** Position of each node's id in sorted id order: the tie-breaker that keeps plans deterministic. */
  readonly rank: Uint32Array;
  readonly byId: ReadonlyMap<string, number>;
  readonly level: Uint8Array;
  readonly status: Uint8Array;
  readonly arch: Column;
  readonly jurisdiction: Column;
  /** Capacity, row-major [cpu, mem, disk] per node. */
  readonly cap: Float64Array;
  /** Taken: max(allocated, live usage) per dimension, same layout as `cap`. */
  readonly used: Float64Array;
  readonly availability: Float64Array;
  /** Hub RTT in ms; NaN when not measured. */
  readonly hubRtt: Float64Array;
  /** Numeric value of the `cost` label; NaN when absent or not a number. */
  readonly cost: Float64Array;
  /** Node-to-target RTT in ms per probe target; NaN when that node has not measured it. */
  readonly rtt: ReadonlyMap<string, Float64Array>;
  /** Per capability, 1 where the node has it. */
  readonly capabilities: ReadonlyMap<string, Uint8Array>;
  readonly labels: ReadonlyMap<string, Column>;
  /** Node indices of the existing allocations of each workload (one entry per replica). */
  readonly allocations: ReadonlyMap<string, readonly number[]>;

  constructor(fields: Omit<FleetIndex, "withPlacements" | "labelColumn" | "targets">) {
    this.size = fields.size;
    this.ids = fields.ids;
    this.rank = fields.rank;
    this.byId = fields.byId;
    this.level = fields.level;
    this.status = fields.status;
    this.arch = fields.arch;
    this.jurisdiction = fields.jurisdiction;
    this.cap = fields.cap;
    this.used = fields.used;
    this.availability = fields.availability;
    this.hubRtt = fields.hubRtt;
    this.cost = fields.cost;
    this.rtt = fields.rtt;
    this.capabilities = fields.capabilities;
    this.labels = fields.labels;
    this.allocations = fields.allocations;
  }

  /** The column of a label key; an empty column when no node has it. */
  labelColumn(key: string): Column {
    return this.labels.get(key) ?? new Column(this.size);
  }

  /** Probe targets any node has measured, plus `hub`. */
  targets(): Set<string> {
    return new Set(["hub", ...this.rtt.keys()]);
  }

  /** A new index with these placements added to `used` and to the allocations; this one is unchanged. */
  withPlacements(
    placements: readonly { node: string; workload?: string | undefined; resources: Resources }[],
  ) {
    const used = this.used.slice();
    const allocations = new Map<string, number[]>();
    for (const [w, list] of this.allocations) allocations.set(w, [...list]);
    for (const p of placements) {
      const i = this.byId.get(p.node);
      if (i === undefined) continue;
      DIMS.forEach((d, k) => {
        used[3 * i + k]! += p.resources[d];
      });
      if (p.workload !== undefined) {
        const list = allocations.get(p.workload) ?? [];
        list.push(i);
        allocations.set(p.workload, list);
      }
    }
    return new FleetIndex({ ...this, used, allocations });
  }
}

/** Builds the columns of a fleet: O(nodes × labels), done once per fleet change, not per placement. */
export function indexFleet(state: FleetState): FleetIndex {
  const nodes = state.nodes;
  const n = nodes.length;
  const ids = nodes.map((x) => x.id);
  const byId = new Map<string, number>();
  ids.forEach((id, i) => {
    byId.set(id, i);
  });
  const order = Array.from(ids.keys()).sort((a, b) => (ids[a]! < ids[b]! ? -1 : ids[a]! > ids[b]! ? 1 : 0));
  const rank = new Uint32Array(n);
  order.forEach((nodeIndex, r) => {
    rank[nodeIndex] = r;
  });
  const level = new Uint8Array(n);
  const status = new Uint8Array(n);
  const arch = new Column(n);
  const jurisdiction = new Column(n);
  const cap = new Float64Array(3 * n);
  const used = new Float64Array(3 * n);
  const availability = new Float64Array(n);
  const hubRtt = new Float64Array(n).fill(Number.NaN);
  const cost = new Float64Array(n).fill(Number.NaN);
  const rtt = new Map<string, Float64Array>();
  const capabilities = new Map<string, Uint8Array>();
  const labels = new Map<string, Column>();
  for (let i = 0; i < n; i++) {
    const node = nodes[i]!;
    level[i] = node.level;
    status[i] = STATUS_CODES[node.status] ?? STATUS_CODES.down;
    arch.set(i, node.arch);
    const j = node.jurisdiction ?? node.labels.jurisdiction;
    if (j !== undefined) jurisdiction.set(i, j);
    for (let k = 0; k < 3; k++) {
      const d = DIMS[k]!;
      cap[3 * i + k] = node.capacity[d];
      used[3 * i + k] = Math.max(node.allocated[d], node.usage?.[d] ?? 0);
    }
    availability[i] = Math.min(1, Math.max(0, node.availability));
    if (node.hub_rtt_ms !== undefined) hubRtt[i] = node.hub_rtt_ms;
    for (const [key, value] of Object.entries(node.labels)) {
      const column = labels.get(key) ?? new Column(n);
      labels.set(key, column);
      column.set(i, value);
    }
    const c = node.labels.cost?.trim();
    cost[i] = c ? Number(c) : Number.NaN;
    for (const capability of node.capabilities) {
      const column = capabilities.get(capability) ?? new Uint8Array(n);
      capabilities.set(capability, column);
      column[i] = 1;
    }
    for (const [target, ms] of Object.entries(node.rtt_ms ?? {})) {
      const column = rtt.get(target) ?? new Float64Array(n).fill(Number.NaN);
      rtt.set(target, column);
      column[i] = ms;
    }
  }
  const allocations = new Map<string, number[]>();
  for (const a of state.allocations ?? []) {
    const i = byId.get(a.node);
    if (i === undefined) continue;
    const list = allocations.get(a.workload) ?? [];
    list.push(i);
    allocations.set(a.workload, list);
  }
  return new FleetIndex({
    size: n,
    ids,
    rank,
    byId,
    level,
    status,
    arch,
    jurisdiction,
    cap,
    used,
    availability,
    hubRtt,
    cost,
    rtt,
    capabilities,
    labels,
    allocations,
  });
}

/** The index of a state, or the state itself when it is already indexed. */
export function asIndex(state: FleetState | FleetIndex): FleetIndex {
  return state instanceof FleetIndex ? state : indexFleet(state);
}

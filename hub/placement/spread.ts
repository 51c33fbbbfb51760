// Topology domains (node, site, zone, region) for spread, anti-affinity (max_per) and affinity.
import type { FleetIndex } from "./fleet-index.ts";
import type { Domain } from "./types.ts";

/**
 * Domain ids of one kind over the fleet. For `node` the domain of node i is i; for a label domain it
 * is the interned label value + 1, and 0 for nodes without that label (they share one domain for
 * spread, and never match for affinity).
 */
export interface Domains {
  by: Domain;
  /** Label value ids (-1 absent), or null for `node`. */
  ids: Int32Array | null;
  /** Number of distinct domain ids. */
  space: number;
  /** Human name of a domain id. */
  name(domain: number): string;
}

export function domainsOf(fleet: FleetIndex, by: Domain): Domains {
  if (by === "node") return { by, ids: null, space: fleet.size, name: (d) => fleet.ids[d] ?? "?" };
  const column = fleet.labelColumn(by);
  return {
    by,
    ids: column.ids,
    space: column.values.length + 1,
    name: (d) => (d === 0 ? `(no ${by})` : column.values[d - 1]!),
  };
}

/** The domain id of node i. */
export function domainOf(d: Domains, i: number): number {
  return d.ids === null ? i : d.ids[i]! + 1;
}

/** Replica counts per domain, for one workload, starting from its existing allocations. */
export function countPerDomain(d: Domains, nodes: readonly number[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const i of nodes) {
    const k = domainOf(d, i);
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return counts;
}

/**
 * The per-domain cap. An explicit `max_per` is hard. Without one the cap is ceil(all replicas /
 * domains that can take one): the fewest replicas that the loss of any one domain can take out,
 * which is what spreading is for. That cap is soft: a replica that only fits by going over it is
 * still placed, never left out for spreading alone.
 */
export function spreadCap(
  d: Domains,
  maxPer: number | undefined,
  feasible: ArrayLike<number>,
  feasibleCount: number,
  existing: ReadonlyMap<number, number>,
  replicas: number,
): { cap: number; hard: boolean } {
  if (maxPer !== undefined) return { cap: maxPer, hard: true };
  const seen = new Set<number>(existing.keys());
  for (let k = 0; k < feasibleCount; k++) seen.add(domainOf(d, feasible[k]!));
  let total = replicas;
  for (const c of existing.values()) total += c;
  return { cap: Math.max(1, Math.ceil(total / Math.max(1, seen.size))), hard: false };
}

/** Flags per domain id where the other workload runs (for affinity). Domain 0 (no label) never counts. */
export function affinityDomains(d: Domains, nodes: Iterable<number>): Uint8Array {
  const flags = new Uint8Array(d.space);
  for (const i of nodes) {
    const k = domainOf(d, i);
    if (d.ids === null || k > 0) flags[k] = 1;
  }
  return flags;
}

/**
 * Replicas of one workload share a node only when they must, whatever domain they spread over:
 * a soft cap of ceil(all replicas / nodes that can take one) per node. Infinity when the spread is
 * by node already (its own cap covers it).
 */
export function nodeCap(
  d: Domains,
  feasibleCount: number,
  existing: readonly number[],
  replicas: number,
): number {
  if (d.by === "node") return Number.POSITIVE_INFINITY;
  const nodes = new Set(existing).size + feasibleCount;
  return Math.max(1, Math.ceil((replicas + existing.length) / Math.max(1, nodes)));
}

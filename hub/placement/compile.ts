// Resolves a request against an indexed fleet once: interned ids, flag tables, weights, domains.
import { DIMS, type FleetIndex } from "./fleet-index.ts";
import { resolveWeights } from "./presets.ts";
import { type CompiledTerm, compileTerms, parseSelector } from "./selector.ts";
import { affinityDomains, type Domains, domainsOf } from "./spread.ts";
import type { Domain, PlacementRequest, Strategy, Weights } from "./types.ts";

/** A request resolved against one fleet; every field is what the filter and score loops read. */
export interface Compiled {
  request: PlacementRequest;
  name: string | undefined;
  /** Needed resources, [cpu, mem, disk]. */
  need: Float64Array;
  /** Dimensions the resource part looks at: those the request needs, or cpu and memory. */
  fitDims: number[];
  replicas: number;
  pinned: string[] | undefined;
  levelMin: number;
  levelMax: number;
  /** Per interned arch value, 1 if allowed; null when any arch will do. */
  arch: Uint8Array | null;
  archText: string;
  /** Required capabilities and their columns (null when no node has it). */
  required: { name: string; column: Uint8Array | null }[];
  preferred: (Uint8Array | null)[];
  terms: CompiledTerm[];
  jurisdictions: Uint8Array | null;
  jurisdictionText: string;
  regionIds: Int32Array;
  regions: Uint8Array | null;
  regionText: string;
  /** RTT column the latency part reads: the target's, the hub's when the target is `hub` or absent. */
  rtt: Float64Array | null;
  latencyTarget: string | undefined;
  /** Hard latency ceiling in ms; Infinity when none. */
  maxMs: number;
  affinity: { workload: string; domains: Domains; allowed: Uint8Array } | null;
  spread: { domains: Domains; maxPer: number | undefined };
  preferLevel: number | undefined;
  weights: Weights;
  strategy: Strategy;
  /** Where each filter's reasons start among the explanation's tally slots (see `slotLayout`). */
  slots: SlotLayout;
}

export interface SlotLayout {
  caps: number;
  terms: number;
  jur: number;
  reg: number;
  lat: number;
  aff: number;
  res: number;
}

/**
 * Tally slots in registration order: health ×3, level, arch, one per required capability, one per
 * label term, jurisdiction unknown/outside, region unknown/outside, latency unmeasured/ceiling,
 * affinity, resources ×3. The filter returns these numbers, so its loop needs no lookup.
 */
function slotLayout(required: number, terms: number): SlotLayout {
  const caps = 5;
  const jur = caps + required + terms;
  return { caps, terms: caps + required, jur, reg: jur + 2, lat: jur + 4, aff: jur + 6, res: jur + 7 };
}

function flagsFor(values: readonly string[], lookup: ReadonlyMap<string, number>, size: number): Uint8Array {
  const flags = new Uint8Array(size);
  for (const v of values) {
    const id = lookup.get(v);
    if (id !== undefined) flags[id] = 1;
  }
  return flags;
}

/**
 * Compiles a request. `affinityExtra` lists nodes that count as running the affinity target besides
 * its existing allocations (batch placement passes the target's own candidates here).
 */
export function compileRequest(
  fleet: FleetIndex,
  request: PlacementRequest,
  affinityExtra?: Iterable<number>,
): Compiled {
  const p = request.placement ?? {};
  const need = new Float64Array(3);
  DIMS.forEach((d, k) => {
    need[k] = request.resources?.[d] ?? 0;
  });
  const fitDims = [0, 1, 2].filter((k) => need[k]! > 0);
  const { weights, strategy } = resolveWeights(p);
  const region = fleet.labelColumn("region");
  const target = p.latency?.target;
  let rtt: Float64Array | null = fleet.hubRtt;
  if (target !== undefined && target !== "hub") rtt = fleet.rtt.get(target) ?? null;
  let affinity: Compiled["affinity"] = null;
  if (p.affinity) {
    const domains = domainsOf(fleet, p.affinity.by ?? "node");
    const nodes = [...(fleet.allocations.get(p.affinity.workload) ?? []), ...(affinityExtra ?? [])];
    affinity = { workload: p.affinity.workload, domains, allowed: affinityDomains(domains, nodes) };
  }
  const spreadBy: Domain = p.spread?.by ?? "node";
  const required = (p.capabilities ?? []).map((name) => ({
    name,
    column: fleet.capabilities.get(name) ?? null,
  }));
  const terms = p.labels === undefined ? [] : compileTerms(parseSelector(p.labels), fleet);
  return {
    request,
    name: request.name,
    need,
    fitDims: fitDims.length > 0 ? fitDims : [0, 1],
    replicas: request.replicas ?? 1,
    pinned: request.nodes && request.nodes.length > 0 ? [...request.nodes] : undefined,
    levelMin: p.levels?.[0] ?? 1,
    levelMax: p.levels?.[1] ?? 5,
    arch: p.arch ? flagsFor(p.arch, fleet.arch.lookup, fleet.arch.values.length) : null,
    archText: (p.arch ?? []).join(", "),
    required,
    preferred: (p.prefer_capabilities ?? []).map((name) => fleet.capabilities.get(name) ?? null),
    terms,
    jurisdictions: p.jurisdictions
      ? flagsFor(p.jurisdictions, fleet.jurisdiction.lookup, fleet.jurisdiction.values.length)
      : null,
    jurisdictionText: (p.jurisdictions ?? []).join(", "),
    regionIds: region.ids,
    regions: p.regions ? flagsFor(p.regions, region.lookup, region.values.length) : null,
    regionText: (p.regions ?? []).join(", "),
    rtt,
    latencyTarget: target,
    maxMs: p.latency?.max_ms ?? Number.POSITIVE_INFINITY,
    affinity,
    spread: { domains: domainsOf(fleet, spreadBy), maxPer: p.spread?.max_per },
    preferLevel: p.prefer_level,
    weights,
    strategy,
    slots: slotLayout(required.length, terms.length),
  };
}

/** Whether node i has room for the request given a `used` column (and optional extra use of i). */
export function fits(fleet: FleetIndex, c: Compiled, used: Float64Array, i: number): boolean {
  const b = 3 * i;
  return (
    used[b]! + c.need[0]! <= fleet.cap[b]! &&
    used[b + 1]! + c.need[1]! <= fleet.cap[b + 1]! &&
    used[b + 2]! + c.need[2]! <= fleet.cap[b + 2]!
  );
}

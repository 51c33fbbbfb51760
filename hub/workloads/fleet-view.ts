// The fleet as placement sees it, built from the registry, the nodes' latest metrics and the allocations.
import type { Ingest } from "../ingest/index.ts";
import type { FleetNode, FleetState, Resources } from "../placement/index.ts";
import type { Registry } from "../registry/index.ts";
import type { AllocRecord } from "./workload-store.ts";

const MIB = 1024 * 1024;
const PROBE = /^probe\.rtt_ms\{target="(.+)"\}$/;

/** Builds a placement snapshot of every known node, with `active` the allocations wanted running. */
export function fleetState(registry: Registry, ingest: Ingest, active: readonly AllocRecord[]): FleetState {
  const latest = ingest.latest();
  const allocated = new Map<string, Resources>();
  const allocations: { workload: string; node: string }[] = [];
  for (const a of active) {
    // A copy marked lost does not hold its place for spread or affinity (its replacement needs it).
    if (a.status !== "lost") allocations.push({ workload: a.workload, node: a.node });
    const r = allocated.get(a.node) ?? { cpu_millis: 0, mem_mb: 0, disk_mb: 0 };
    r.cpu_millis += a.spec.resources.cpu_millis;
    r.mem_mb += a.spec.resources.mem_mb;
    r.disk_mb += a.spec.resources.disk_mb;
    allocated.set(a.node, r);
  }
  // A child hub stands for its subtree: work goes to its nodes through it, never onto it.
  const nodes: FleetNode[] = registry
    .list()
    .filter((n) => n.kind !== "hub")
    .map((n) => {
      const res = n.resources as {
        cpu_cores?: number;
        mem_bytes?: number;
        disk_bytes?: number;
        arch?: string;
      };
      const rtt: Record<string, number> = {};
      for (const [series, [, value]] of latest.get(n.id) ?? []) {
        const m = PROBE.exec(series);
        if (m) rtt[m[1]!] = value;
      }
      const hubRtt = registry.rtt(n.id);
      return {
        id: n.id,
        level: n.level,
        status: registry.status(n),
        arch: res.arch ?? "unknown",
        capacity: {
          cpu_millis: Math.round((res.cpu_cores ?? 0) * 1000),
          mem_mb: Math.floor((res.mem_bytes ?? 0) / MIB),
          disk_mb: Math.floor((res.disk_bytes ?? 0) / MIB),
        },
        allocated: allocated.get(n.id) ?? { cpu_millis: 0, mem_mb: 0, disk_mb: 0 },
        labels: n.labels,
        capabilities: n.capabilities,
        jurisdiction: n.labels.jurisdiction,
        availability: registry.availability(n.id),
        ...(hubRtt !== undefined ? { hub_rtt_ms: hubRtt } : {}),
        rtt_ms: rtt,
      };
    });
  return { nodes, allocations };
}

// This hub's own nodes and workloads as federation reports them (child hubs are not nodes here).
import type { FleetState } from "../placement/index.ts";
import type { Registry } from "../registry/index.ts";
import type { WorkloadView } from "../workloads/index.ts";
import type { LocalNode, LocalWorkload } from "./summarize.ts";

/** One own node now, with its free capacity; undefined for an unknown node or a child hub. */
export function localNode(registry: Registry, workloads: WorkloadView, id: string) {
  const n = registry.get(id);
  if (!n || n.kind === "hub") return undefined;
  const res = n.resources as { cpu_cores?: number; mem_bytes?: number };
  let cpu = Math.round((res.cpu_cores ?? 0) * 1000);
  let mem = Math.floor((res.mem_bytes ?? 0) / (1024 * 1024));
  for (const a of workloads.active) {
    if (a.node !== id || a.status === "lost") continue;
    cpu -= a.spec.resources.cpu_millis;
    mem -= a.spec.resources.mem_mb;
  }
  return {
    status: registry.status(n),
    level: n.level,
    region: n.labels.region ?? "",
    site: n.labels.site ?? "",
    cpuFree: cpu,
    memFree: mem,
  };
}

/** Every own node (the fleet as placement sees it leaves child hubs out). */
export function localNodes(fleet: FleetState): LocalNode[] {
  return fleet.nodes.map((n) => ({
    id: n.id,
    level: n.level,
    region: n.labels.region ?? "",
    site: n.labels.site ?? "",
    status: n.status,
    cpuFree: n.capacity.cpu_millis - n.allocated.cpu_millis,
    memFree: n.capacity.mem_mb - n.allocated.mem_mb,
  }));
}

/** Every own workload with its running and healthy copies. */
export function localWorkloads(workloads: WorkloadView): LocalWorkload[] {
  const by = new Map<string, LocalWorkload>();
  for (const w of workloads.workloads)
    by.set(w.name, { name: w.name, replicas: w.spec.replicas, running: 0, healthy: 0 });
  for (const a of workloads.active) {
    const w = by.get(a.workload);
    if (!w || a.desired !== "run" || a.status !== "running") continue;
    w.running += 1;
    if (a.healthy !== false) w.healthy += 1;
  }
  return [...by.values()];
}

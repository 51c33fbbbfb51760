// The summary a hub sends its parent, pure: its own nodes folded into groups, and its children's summaries.
import type { Body, SummaryBody } from "../../shared/protocol/index.ts";
import { SUMMARY_LIMITS } from "../../shared/protocol/index.ts";

type Status = "ready" | "suspect" | "down" | "draining";
type Group = Body<"summary">["groups"][number];
type SummaryHub = Body<"summary">["hubs"][number];
type SummaryWorkload = Body<"summary">["workloads"][number];
/** An open alert as a summary carries it. */
export type SummaryAlert = NonNullable<Body<"summary">["alerts"]>[number];

/** One of this hub's own nodes as the summary needs it. */
export interface LocalNode {
  id: string;
  level: number;
  region: string;
  site: string;
  status: Status;
  /** Free CPU (millicores) and memory (MiB): capacity less what allocations hold. */
  cpuFree: number;
  memFree: number;
}

/** One of this hub's workloads and its copies. */
export interface LocalWorkload {
  name: string;
  replicas: number;
  running: number;
  healthy: number;
}

/** A child hub as the summary needs it: its last summary, whether its link is up, and how old. */
export interface ChildView {
  id: string;
  level: number;
  connected: boolean;
  ageMs: number;
  summary: SummaryBody | undefined;
}

export interface SummaryInput {
  hubId: string;
  level: number;
  nodes: readonly LocalNode[];
  workloads: readonly LocalWorkload[];
  children: readonly ChildView[];
  /** This hub's own open alerts (absent: the summary carries no alerts list). */
  alerts?: readonly SummaryAlert[];
}

const SEVERITY_RANK: Record<string, number> = { critical: 3, warning: 2, info: 1 };

/** The alerts a summary keeps when there are too many: most severe first, then the newest. */
export function rankAlerts(list: readonly SummaryAlert[], max: number): SummaryAlert[] {
  return [...list]
    .sort(
      (a, b) =>
        (SEVERITY_RANK[b.severity] ?? 0) - (SEVERITY_RANK[a.severity] ?? 0) ||
        a.open_ms - b.open_ms ||
        a.hub.localeCompare(b.hub) ||
        a.id - b.id,
    )
    .slice(0, max);
}

/** Labels cut to what the summary schema takes (64 characters). */
export const placeLabel = (v: string | undefined): string => (v ?? "").slice(0, 64);

/** The key that names one group: hub, level, region and site. */
export const groupKey = (g: { hub: string; level: number; region: string; site: string }): string =>
  `${g.hub}\u0000${g.level}\u0000${g.region}\u0000${g.site}`;

/** Folds a hub's own nodes into groups (hub, level, region, site) with counts and free capacity. */
export function groupNodes(hubId: string, nodes: readonly LocalNode[]): Group[] {
  const groups = new Map<string, Group>();
  for (const n of nodes) {
    const g0 = { hub: hubId, level: n.level, region: placeLabel(n.region), site: placeLabel(n.site) };
    const key = groupKey(g0);
    let g = groups.get(key);
    if (!g) {
      g = { ...g0, ready: 0, suspect: 0, down: 0, draining: 0, cpu_free: 0, mem_free: 0 };
      groups.set(key, g);
    }
    g[n.status] += 1;
    if (n.status === "ready") {
      g.cpu_free += Math.max(0, Math.round(n.cpuFree));
      g.mem_free += Math.max(0, Math.round(n.memFree));
    }
  }
  return [...groups.values()];
}

/**
 * The subtree's summary (without `rev` and `roster`): this hub and its own nodes, then every child's
 * last summary as it stands. A child whose link is down is listed as disconnected with its age. Lists
 * are cut to the protocol's limits (largest groups first), so a summary is bounded whatever the tree.
 */
export function summarize(input: SummaryInput): Omit<SummaryBody, "rev" | "roster"> {
  const hubs: SummaryHub[] = [{ id: input.hubId, level: input.level, connected: true, age_ms: 0 }];
  const groups: Group[] = groupNodes(input.hubId, input.nodes);
  const workloads: SummaryWorkload[] = input.workloads.map((w) => ({ hub: input.hubId, ...w }));
  const alerts: SummaryAlert[] = [...(input.alerts ?? [])];
  let nodes = input.nodes.length;
  for (const c of input.children) {
    const s = c.summary;
    const own = s?.hubs.find((h) => h.id === c.id);
    hubs.push({
      id: c.id,
      parent: input.hubId,
      level: own?.level ?? c.level,
      connected: c.connected,
      age_ms: Math.max(0, Math.round(c.ageMs)),
    });
    if (!s) continue;
    for (const h of s.hubs) {
      if (h.id === c.id) continue;
      // Below a child that is cut off, what it last said ages with it.
      hubs.push({ ...h, connected: h.connected && c.connected, age_ms: h.age_ms + Math.round(c.ageMs) });
    }
    groups.push(...s.groups);
    workloads.push(...s.workloads);
    // What a cut-off child last said: its alerts have been open for as long again as it has been silent.
    for (const a of s.alerts ?? []) alerts.push({ ...a, open_ms: a.open_ms + Math.round(c.ageMs) });
    nodes += s.nodes;
  }
  const size = (g: Group) => g.ready + g.suspect + g.down + g.draining;
  const cut = <T>(list: T[], max: number, by?: (x: T) => number): T[] =>
    list.length <= max ? list : (by ? [...list].sort((a, b) => by(b) - by(a)) : list).slice(0, max);
  return {
    hubs: cut(hubs, SUMMARY_LIMITS.hubs),
    groups: cut(groups, SUMMARY_LIMITS.groups, size),
    workloads: cut(workloads, SUMMARY_LIMITS.workloads, (w) => w.replicas),
    nodes,
    ...(input.alerts ? { alerts: rankAlerts(alerts, SUMMARY_LIMITS.alerts) } : {}),
  };
}

/** Counts by status over groups. */
export function countGroups(groups: readonly Group[]): Record<Status | "total", number> {
  const c = { total: 0, ready: 0, suspect: 0, down: 0, draining: 0 };
  for (const g of groups) {
    c.ready += g.ready;
    c.suspect += g.suspect;
    c.down += g.down;
    c.draining += g.draining;
  }
  c.total = c.ready + c.suspect + c.down + c.draining;
  return c;
}

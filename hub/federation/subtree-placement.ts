// Two-level placement, the parent's half, pure: which hub's domain takes a workload, judged from summaries.
import type { Body } from "../../shared/protocol/index.ts";

type Group = Body<"summary">["groups"][number];

/** A hub of the tree that could take the workload: its own nodes' groups and the route to it. */
export interface SubtreeHub {
  id: string;
  /** Hubs from this hub's direct child down to it (the command travels this way). */
  route: string[];
  /** Whether every link on the route is up. */
  connected: boolean;
  groups: readonly Group[];
}

/** What the parent needs of a workload spec. */
export interface SubtreeRequest {
  replicas: number;
  resources: { cpu_millis: number; mem_mb: number };
  placement: Record<string, unknown>;
}

/** One candidate hub with its score and the parts of it. */
export interface SubtreeCandidate {
  hub: string;
  route: string[];
  score: number;
  parts: { resources: number; availability: number; level: number };
  /** Ready nodes that pass the level and region filters, and their free capacity. */
  ready: number;
  cpu_free: number;
  mem_free: number;
}

export interface SubtreePlan {
  chosen: SubtreeCandidate | undefined;
  candidates: SubtreeCandidate[];
  /** Hubs removed, each under the first filter that removed it. */
  filtered: { hub: string; filter: "health" | "level" | "region" | "resources"; detail: string }[];
}

const WEIGHTS = { resources: 0.5, availability: 0.3, level: 0.2 };

// The placement block's level range and allowed regions (`regions`, or a `region` label selector).
function constraints(p: Record<string, unknown>): {
  levels: [number, number];
  regions: string[] | undefined;
} {
  const lv = p.levels;
  const levels: [number, number] =
    Array.isArray(lv) && lv.length === 2 && lv.every((x) => typeof x === "number")
      ? [lv[0] as number, lv[1] as number]
      : [1, 5];
  let regions: string[] | undefined;
  if (Array.isArray(p.regions)) regions = p.regions.filter((r): r is string => typeof r === "string");
  const labels = p.labels;
  if (labels && typeof labels === "object" && !Array.isArray(labels)) {
    const r = (labels as Record<string, unknown>).region;
    if (typeof r === "string") regions = [r];
    else if (Array.isArray(r)) regions = r.filter((x): x is string => typeof x === "string");
  }
  return { levels, regions };
}

/**
 * Ranks the hubs of the tree for a workload: filters (link up, a ready node at the levels and in the
 * regions asked, enough free CPU and memory for every replica), then a 0-100 score: resources left
 * after placing 50%, the share of matching nodes that are ready 30%, closeness to `prefer_level` 20%.
 * The chosen hub's own engine then picks the nodes.
 */
export function placeSubtree(hubs: readonly SubtreeHub[], req: SubtreeRequest): SubtreePlan {
  const { levels, regions } = constraints(req.placement);
  const prefer = typeof req.placement.prefer_level === "number" ? req.placement.prefer_level : undefined;
  const needCpu = req.replicas * req.resources.cpu_millis;
  const needMem = req.replicas * req.resources.mem_mb;
  const plan: SubtreePlan = { chosen: undefined, candidates: [], filtered: [] };
  for (const h of hubs) {
    if (!h.connected) {
      plan.filtered.push({ hub: h.id, filter: "health", detail: "link to it is down" });
      continue;
    }
    const atLevel = h.groups.filter((g) => g.level >= levels[0] && g.level <= levels[1]);
    if (atLevel.every((g) => g.ready === 0)) {
      plan.filtered.push({
        hub: h.id,
        filter: "level",
        detail: `no ready node at levels ${levels[0]}-${levels[1]}`,
      });
      continue;
    }
    const inRegion = regions ? atLevel.filter((g) => regions.includes(g.region)) : atLevel;
    const ready = inRegion.reduce((n, g) => n + g.ready, 0);
    if (ready === 0) {
      plan.filtered.push({ hub: h.id, filter: "region", detail: `no ready node in ${regions!.join(", ")}` });
      continue;
    }
    const cpu = inRegion.reduce((n, g) => n + g.cpu_free, 0);
    const mem = inRegion.reduce((n, g) => n + g.mem_free, 0);
    if (cpu < needCpu || mem < needMem) {
      plan.filtered.push({
        hub: h.id,
        filter: "resources",
        detail: `free ${cpu} millicores / ${mem} MiB, needs ${needCpu} / ${needMem}`,
      });
      continue;
    }
    // Room left after placing; a domain that reports no free capacity at all has none to offer.
    const left = Math.min(cpu > 0 ? 1 - needCpu / cpu : 0, mem > 0 ? 1 - needMem / mem : 0);
    const total = inRegion.reduce((n, g) => n + g.ready + g.suspect + g.down + g.draining, 0);
    const levelsHere = inRegion.filter((g) => g.ready > 0).map((g) => g.level);
    const levelPart =
      prefer === undefined
        ? 1
        : Math.max(0, 1 - Math.min(...levelsHere.map((l) => Math.abs(l - prefer))) / 4);
    const parts = {
      resources: round(Math.max(0, left)),
      availability: round(total > 0 ? ready / total : 0),
      level: round(levelPart),
    };
    const score = round(
      100 *
        (WEIGHTS.resources * parts.resources +
          WEIGHTS.availability * parts.availability +
          WEIGHTS.level * parts.level),
    );
    plan.candidates.push({ hub: h.id, route: h.route, score, parts, ready, cpu_free: cpu, mem_free: mem });
  }
  plan.candidates.sort((a, b) => b.score - a.score || a.hub.localeCompare(b.hub));
  plan.chosen = plan.candidates[0];
  return plan;
}

const round = (x: number) => Math.round(x * 100) / 100;

/** The hubs of a child's subtree from its summary, each with its route from the child down. */
export function subtreeHubs(
  child: string,
  connected: boolean,
  summary: Body<"summary"> | undefined,
): SubtreeHub[] {
  if (!summary) return [];
  const parent = new Map(summary.hubs.map((h) => [h.id, h.parent]));
  const up = new Map(summary.hubs.map((h) => [h.id, h.connected]));
  const out: SubtreeHub[] = [];
  for (const h of summary.hubs) {
    const route: string[] = [];
    let linked = connected;
    let at: string | undefined = h.id;
    // The hubs list was checked on arrival: parents are listed, so this ends at the child.
    for (let i = 0; at !== undefined && i < summary.hubs.length; i++) {
      route.unshift(at);
      if (at !== child) linked &&= up.get(at) ?? false;
      at = at === child ? undefined : parent.get(at);
    }
    out.push({ id: h.id, route, connected: linked, groups: summary.groups.filter((g) => g.hub === h.id) });
  }
  return out;
}

// The tree of hubs as one hub sees it, pure: itself with its own nodes, each child from its last summary.
import type { Body } from "../../shared/protocol/index.ts";
import { countGroups, groupNodes, type LocalNode, type LocalWorkload } from "./summarize.ts";

type Group = Body<"summary">["groups"][number];
type SummaryWorkload = Body<"summary">["workloads"][number];
type Counts = ReturnType<typeof countGroups>;

/** One hub of the tree in `GET /api/v1/topology`. */
export interface TreeHub {
  id: string;
  level: number;
  /** `self` for the hub answering; a child's link `connected` or `disconnected` (inherited below a cut link). */
  status: "self" | "connected" | "disconnected";
  /** The hub whose report this entry comes from (itself, or the child it came through). */
  source: string;
  /** When it was last heard of (ms), and how old what is shown is. */
  last_heard: number;
  age_ms: number;
  /** Its own nodes, and its whole subtree's, by status. */
  nodes: Counts;
  subtree: Counts;
  /** Its own nodes by level, region and site, with free capacity. */
  groups: Group[];
  workloads: SummaryWorkload[];
  /** What was refused from this child (claims, floods, malformed summaries), by reason. */
  refused?: Record<string, number>;
  children: TreeHub[];
}

/** A child hub as the tree needs it. */
export interface TreeChild {
  id: string;
  level: number;
  connected: boolean;
  lastHeard: number;
  summary: Body<"summary"> | undefined;
  refused: Record<string, number>;
}

export interface TreeInput {
  hubId: string;
  level: number;
  now: number;
  nodes: readonly LocalNode[];
  workloads: readonly LocalWorkload[];
  children: readonly TreeChild[];
}

const add = (a: Counts, b: Counts): Counts => ({
  total: a.total + b.total,
  ready: a.ready + b.ready,
  suspect: a.suspect + b.suspect,
  down: a.down + b.down,
  draining: a.draining + b.draining,
});

/** Builds the tree rooted at this hub. */
export function buildTree(input: TreeInput): TreeHub {
  const own = groupNodes(input.hubId, input.nodes);
  const root: TreeHub = {
    id: input.hubId,
    level: input.level,
    status: "self",
    source: input.hubId,
    last_heard: input.now,
    age_ms: 0,
    nodes: countGroups(own),
    subtree: countGroups(own),
    groups: own,
    workloads: input.workloads.map((w) => ({ hub: input.hubId, ...w })),
    children: [],
  };
  for (const c of input.children) {
    const sub = childTree(c, input.now);
    root.children.push(sub);
    root.subtree = add(root.subtree, sub.subtree);
  }
  return root;
}

// A child's subtree from its summary: its hubs hang by their parent links; a cut link marks all below it.
function childTree(c: TreeChild, now: number): TreeHub {
  const age = Math.max(0, now - c.lastHeard);
  const s = c.summary;
  const entries = new Map<string, TreeHub>();
  const make = (id: string, level: number, connected: boolean, ageMs: number): TreeHub => {
    const groups = s?.groups.filter((g) => g.hub === id) ?? [];
    return {
      id,
      level,
      status: connected ? "connected" : "disconnected",
      source: c.id,
      last_heard: now - ageMs,
      age_ms: ageMs,
      nodes: countGroups(groups),
      subtree: countGroups(groups),
      groups,
      workloads: s?.workloads.filter((w) => w.hub === id) ?? [],
      children: [],
    };
  };
  const top = make(c.id, s?.hubs.find((h) => h.id === c.id)?.level ?? c.level, c.connected, age);
  top.refused = c.refused;
  entries.set(c.id, top);
  for (const h of s?.hubs ?? []) {
    if (h.id === c.id) continue;
    entries.set(h.id, make(h.id, h.level, h.connected, age + h.age_ms));
  }
  for (const h of s?.hubs ?? []) {
    if (h.id === c.id || !h.parent) continue;
    entries.get(h.parent)?.children.push(entries.get(h.id)!);
  }
  // Subtree counts and a cut link's reach, from the bottom up.
  const settle = (t: TreeHub, cut: boolean): Counts => {
    if (cut) t.status = "disconnected";
    let total = t.nodes;
    for (const k of t.children) total = add(total, settle(k, cut || t.status === "disconnected"));
    t.subtree = total;
    return total;
  };
  settle(top, false);
  return top;
}

// The failover decision, pure: from nodes' liveness and allocations to what to mark lost, place, stop and keep.
import type { AllocStatusName, DisconnectPolicy, WorkloadSpec } from "../../shared/workload/index.ts";
import { resolveDisconnect } from "../../shared/workload/index.ts";

/** A node's state as the reconciler takes it (`draining` is for drain, which moves work on its own terms). */
export type NodeState = "ready" | "suspect" | "disconnected" | "lost" | "draining";

export interface ReconcileNode {
  state: NodeState;
  level: number;
  /** When the node left ready (for a ready node: unused). */
  troubleSince: number;
  /** When the node became ready again (for a ready node). */
  since: number;
  evidence: readonly string[];
  /** Out of contact but not dead (its whole site is out, or witnesses reach it): frozen unless the workload asks. */
  partitioned?: boolean;
}

export interface ReconcileAlloc {
  id: string;
  workload: string;
  node: string;
  status: AllocStatusName;
  /** From the node's health check; null until it gives a verdict (or when there is none). */
  healthy: boolean | null;
  running_since: number | null;
  created: number;
  /** Set while the allocation is marked lost (by this reconciler, earlier). */
  lost?: {
    at: number;
    /** Status before it was marked lost. */
    prev_status: AllocStatusName;
    /** Whether the node has reported on it since it was marked lost (else prev_status still holds). */
    reported_since: boolean;
  };
}

export interface ReconcileWorkload {
  name: string;
  spec: WorkloadSpec;
  /** A rollout is moving replicas: failover marks lost copies but leaves placing to the rollout. */
  rolling: boolean;
  /** Allocations wanted running (desired = run). */
  allocs: ReconcileAlloc[];
}

export interface ReconcileState {
  now: number;
  nodes: ReadonlyMap<string, ReconcileNode>;
  workloads: readonly ReconcileWorkload[];
  /** Placement score (0-100) of `workload` on `node` now; undefined when the node does not fit at all. */
  score: (workload: string, node: string) => number | undefined;
  /** A returning node's copies are judged only after it has been back this long (its reports arrive first). */
  settleMs: number;
  /**
   * A lost copy that was replaced, on a node still out this long after it was lost, is collected: it
   * leaves its node's desired set, so the node stops it if it ever returns. Undefined: never.
   */
  gcAfterMs?: number;
}

export interface Decisions {
  mark_lost: { alloc: string; workload: string; node: string; reason: string }[];
  place: { workload: string; count: number; reason: string }[];
  stop: { alloc: string; workload: string; node: string; reason: string }[];
  /** Lost copies whose node returned and that stay: their lost mark is cleared. */
  keep: { alloc: string; workload: string; node: string; reason: string }[];
  /** A copy that lost contact with its hub and was stopped there: a fresh one on the same node. */
  restart: { alloc: string; workload: string; node: string; reason: string }[];
}

const secs = (ms: number) => `${Math.round(ms / 100) / 10} s`;
const OUT: ReadonlySet<NodeState> = new Set(["disconnected", "lost"]);

// Whether a copy runs as far as the hub knows: a lost mark with no report since keeps the status before it.
function running(a: ReconcileAlloc): boolean {
  const status = a.lost && !a.lost.reported_since ? a.lost.prev_status : a.status;
  return status === "running";
}

// Healthy enough to let another copy go: running, and healthy by its check when it has one.
function healthy(a: ReconcileAlloc, spec: WorkloadSpec): boolean {
  return running(a) && (spec.health ? a.healthy === true : a.healthy !== false);
}

/** Decides failover for every workload; touches nothing. */
export function reconcile(s: ReconcileState): Decisions {
  const d: Decisions = { mark_lost: [], place: [], stop: [], keep: [], restart: [] };
  for (const w of s.workloads) reconcileWorkload(s, w, d);
  return d;
}

function policyOf(w: ReconcileWorkload, a: ReconcileAlloc, s: ReconcileState): DisconnectPolicy {
  return resolveDisconnect(w.spec, s.nodes.get(a.node)?.level ?? 3);
}

function reconcileWorkload(s: ReconcileState, w: ReconcileWorkload, d: Decisions): void {
  const live: ReconcileAlloc[] = [];
  const lost: ReconcileAlloc[] = [];
  const returned: ReconcileAlloc[] = [];
  for (const a of w.allocs) {
    const node = s.nodes.get(a.node);
    const p = policyOf(w, a, s);
    if (a.lost) {
      if (node?.state === "ready") returned.push(a);
      else lost.push(a);
      continue;
    }
    // A whole site out at once, or a node its peers still reach, is partitioned: frozen, unless the
    // workload asked to move.
    const frozen = !!node?.partitioned && !p.replace_on_partition;
    if (node && OUT.has(node.state) && !frozen && s.now - node.troubleSince >= p.lost_after_ms) {
      // A job that finished needs no copy anywhere: only what should still run can be lost.
      if (a.status === "complete") {
        live.push(a);
        continue;
      }
      const evidence = node.evidence.length ? `; ${node.evidence.join("; ")}` : "";
      d.mark_lost.push({
        alloc: a.id,
        workload: w.name,
        node: a.node,
        reason: `node ${a.node} ${node.state} for ${secs(s.now - node.troubleSince)} (lost_after ${secs(p.lost_after_ms)}, ${p.basis})${evidence}`,
      });
      lost.push(a);
      continue;
    }
    live.push(a);
  }
  const pinned = (w.spec.nodes ?? []).length > 0;
  // Lost copies the policy does not replace keep their slot: nothing else is started for them.
  const held = lost.filter((a) => !policyOf(w, a, s).replace).length;
  const judged = returned.filter((a) => s.now - (s.nodes.get(a.node)?.since ?? s.now) >= s.settleMs);
  const waiting = returned.length - judged.length;
  const survivors = [...live];
  const stopped = new Set<string>();
  // Returned copies, oldest lost first: each is kept, or stopped, or made to give way, by its policy.
  for (const r of judged.sort((a, b) => a.lost!.at - b.lost!.at)) {
    const p = policyOf(w, r, s);
    const copies = survivors.length + 1;
    if (!running(r)) {
      // It stopped while away (fenced by stop_on_agent_after, or it failed): a replacement takes its
      // place; without one, a fresh copy starts on the returned node.
      if (survivors.length >= w.spec.replicas || w.spec.driver === "job") {
        d.stop.push({
          alloc: r.id,
          workload: w.name,
          node: r.node,
          reason: `returned stopped (${r.status}); a replacement runs`,
        });
      } else {
        d.restart.push({
          alloc: r.id,
          workload: w.name,
          node: r.node,
          reason: `returned stopped (${r.status}); started again there`,
        });
        survivors.push(r);
      }
      continue;
    }
    if (copies <= w.spec.replicas) {
      d.keep.push({
        alloc: r.id,
        workload: w.name,
        node: r.node,
        reason: "returned; no replacement to reconcile with",
      });
      survivors.push(r);
      continue;
    }
    // The replacement it competes with: the newest live copy started after it was lost.
    const rival =
      [...survivors]
        .filter((a) => !stopped.has(a.id) && a.created >= r.lost!.at)
        .sort((a, b) => b.created - a.created)[0] ?? survivors.at(-1);
    if (!rival) {
      d.keep.push({ alloc: r.id, workload: w.name, node: r.node, reason: "returned" });
      survivors.push(r);
      continue;
    }
    let keepOriginal: boolean;
    let why: string;
    switch (p.reconcile) {
      case "keep_original":
        keepOriginal = true;
        why = "reconcile keep_original";
        break;
      case "keep_replacement":
        keepOriginal = false;
        why = "reconcile keep_replacement";
        break;
      case "best_score": {
        const mine = s.score(w.name, r.node) ?? -1;
        const theirs = s.score(w.name, rival.node) ?? -1;
        keepOriginal = mine >= theirs;
        why = `reconcile best_score (${r.node} ${mine.toFixed(1)}, ${rival.node} ${theirs.toFixed(1)})`;
        break;
      }
      case "longest_running": {
        const mine = r.running_since ?? Number.POSITIVE_INFINITY;
        const theirs = rival.running_since ?? Number.POSITIVE_INFINITY;
        keepOriginal = mine <= theirs;
        why = "reconcile longest_running";
        break;
      }
      default: {
        const never: never = p.reconcile;
        throw new Error(`unknown reconcile ${String(never)}`);
      }
    }
    if (keepOriginal && r.healthy === false && healthy(rival, w.spec)) {
      // The policy's choice is failing its health check and the other copy passes: the healthy one stays.
      keepOriginal = false;
      why = `${why}, but the original is unhealthy`;
    }
    if (keepOriginal) {
      d.keep.push({ alloc: r.id, workload: w.name, node: r.node, reason: `returned; kept by ${why}` });
      d.stop.push({
        alloc: rival.id,
        workload: w.name,
        node: rival.node,
        reason: `replacement stopped: the original on ${r.node} returned (${why})`,
      });
      stopped.add(rival.id);
      survivors.splice(survivors.indexOf(rival), 1, r);
    } else if (healthy(rival, w.spec)) {
      d.stop.push({
        alloc: r.id,
        workload: w.name,
        node: r.node,
        reason: `returned; the replacement on ${rival.node} stays (${why})`,
      });
    } else {
      // Never before the replacement is healthy: both run until it is, then this is decided again.
      survivors.push(r);
    }
  }
  // Lost long ago and replaced, with every replica running elsewhere: the replacement is the copy now.
  const collected = new Set<string>();
  if (s.gcAfterMs !== undefined && survivors.length >= w.spec.replicas) {
    for (const a of lost) {
      if (!policyOf(w, a, s).replace || s.now - a.lost!.at < s.gcAfterMs) continue;
      collected.add(a.id);
      d.stop.push({
        alloc: a.id,
        workload: w.name,
        node: a.node,
        reason: `lost ${secs(s.now - a.lost!.at)} ago and replaced (lost_gc_after ${secs(s.gcAfterMs)}): collected; ${a.node} stops it if it returns`,
      });
    }
  }
  if (pinned || w.rolling) return;
  const wanted = w.spec.replicas - survivors.length - held - waiting;
  const replaceable = lost.filter((a) => !collected.has(a.id) && policyOf(w, a, s).replace);
  if (wanted > 0 && replaceable.length > 0) {
    d.place.push({
      workload: w.name,
      count: Math.min(wanted, replaceable.length),
      reason: `replacing ${replaceable.map((a) => `${a.id} on ${a.node}`).join(", ")}`,
    });
  }
}

// The thin applier of failover decisions: writes them, records why, and lets the controller sync the nodes.
import type { Logger } from "../../shared/log.ts";
import type { WorkloadController, WorkloadStore } from "../workloads/index.ts";
import type { FailoverStore, LostMark } from "./failover-store.ts";
import type { Decisions } from "./reconcile.ts";

/** Records one decision the hub applied: `failover.mark_lost`, `allocs/<id>`, the reason, the decision itself. */
export type DecisionRecorder = (action: string, object: string, detail: string, state?: unknown) => void;

export interface ApplierDeps {
  store: FailoverStore;
  workloads: WorkloadStore;
  controller: WorkloadController;
  log: Logger;
  /** Counts an applied action in /metrics. */
  count: (by?: number, labels?: Record<string, string>) => void;
  /** The last "nothing fits" per workload, so a replacement that waits for a node is recorded once. */
  waiting: Map<string, string>;
  /** The audit log's record of the hub's decisions. */
  record?: DecisionRecorder;
}

/** The thin applier: writes what the reconciler decided, records why, and syncs the nodes touched. */
export function applyDecisions(
  d: Decisions,
  marks: ReadonlyMap<string, LostMark>,
  now: number,
  o: ApplierDeps,
): void {
  const event = (kind: string, x: { alloc?: string; workload: string; node?: string; reason: string }) => {
    o.store.record({
      at: now,
      kind,
      node: x.node ?? null,
      workload: x.workload,
      alloc: x.alloc ?? null,
      change: null,
      reason: x.reason,
      evidence: [],
    });
    o.count(1, { action: kind });
    o.record?.(
      `failover.${kind}`,
      x.alloc ? `allocs/${x.alloc}` : x.node ? `nodes/${x.node}` : `workloads/${x.workload}`,
      x.reason,
      x,
    );
    o.log.info(`failover ${kind}`, {
      workload: x.workload,
      ...(x.node ? { node: x.node } : {}),
      ...(x.alloc ? { alloc: x.alloc } : {}),
      reason: x.reason,
    });
  };
  for (const m of d.mark_lost) {
    const a = o.workloads.alloc(m.alloc);
    if (!a) continue;
    const message = `lost: ${m.reason}`;
    o.workloads.db.transaction(() => {
      o.store.mark({ alloc: m.alloc, at: now, prev_status: a.status, message });
      o.workloads.markLost(m.alloc, message);
    })();
    event("mark_lost", m);
  }
  for (const k of d.keep) {
    const m = marks.get(k.alloc);
    if (m) o.workloads.restoreStatus(k.alloc, m.prev_status, m.message);
    o.store.unmark(k.alloc);
    event("keep", k);
  }
  const stops = d.stop.map((s) => s.alloc);
  const restarts = d.restart.map((r) => ({ workload: r.workload, node: r.node }));
  if (stops.length > 0 || restarts.length > 0)
    o.controller.applyFailover([...stops, ...d.restart.map((r) => r.alloc)], restarts);
  for (const s of d.stop) {
    o.store.unmark(s.alloc);
    event("stop", s);
  }
  for (const r of d.restart) {
    o.store.unmark(r.alloc);
    event("restart", r);
  }
  for (const p of d.place) {
    const placed = o.controller.placeReplacements(p.workload, p.count);
    if (placed.length === 0 && o.waiting.get(p.workload) === p.reason) continue;
    if (placed.length === 0) o.waiting.set(p.workload, p.reason);
    else o.waiting.delete(p.workload);
    event("place", {
      workload: p.workload,
      reason: placed.length
        ? `${p.reason}: placed on ${placed.join(", ")}`
        : `${p.reason}: no node fits (see the workload's placement)`,
    });
  }
}

// The thin applier of failover decisions: writes them, records why, and lets the controller sync the nodes.
import type { Logger } from "../../shared/log.ts";
import type { WorkloadController, WorkloadStore } from "../workloads/index.ts";
import type { FailoverStore, LostMark } from "./failover-store.ts";
import type { Decisions } from "./reconcile.ts";
import type { HubSql } from "../store/sql/index.ts";

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
  /** Checks, first in each writing transaction, that this hub still leads (hub/replicas). */
  fence?: (tx: HubSql) => Promise<void>;
}

/** The thin applier: writes what the reconciler decided, records why, and syncs the nodes touched. */
export async function applyDecisions(
  d: Decisions,
  marks: ReadonlyMap<string, LostMark>,
  now: number,
  o: ApplierDeps,
): Promise<void> {
  const event = async (
    kind: string,
    x: { alloc?: string; workload: string; node?: string; reason: string },
  ) => {
    await o.store.record({
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
    const message = `lost: ${m.reason}`;
    // The mark and the status together, and the entry that says why.
    const marked = await o.workloads.sql.tx(async (tx) => {
      await o.fence?.(tx);
      const a = await o.workloads.alloc(m.alloc, tx);
      if (!a) return false;
      await o.store.mark({ alloc: m.alloc, at: now, prev_status: a.status, message }, tx);
      await o.workloads.markLost(tx, m.alloc, message);
      return true;
    });
    if (marked) await event("mark_lost", m);
  }
  for (const k of d.keep) {
    const m = marks.get(k.alloc);
    await o.workloads.sql.tx(async (tx) => {
      await o.fence?.(tx);
      if (m) await o.workloads.restoreStatus(tx, k.alloc, m.prev_status, m.message);
      await o.store.unmark(k.alloc, tx);
    });
    await event("keep", k);
  }
  const stops = d.stop.map((s) => s.alloc);
  const restarts = d.restart.map((r) => ({ workload: r.workload, node: r.node }));
  if (stops.length > 0 || restarts.length > 0)
    await o.controller.applyFailover([...stops, ...d.restart.map((r) => r.alloc)], restarts, true);
  for (const s of d.stop) {
    await o.store.unmark(s.alloc);
    await event("stop", s);
  }
  for (const r of d.restart) {
    await o.store.unmark(r.alloc);
    await event("restart", r);
  }
  for (const p of d.place) {
    const placed = (await o.controller.placeReplacements(p.workload, p.count, [], true)).map((x) => x.node);
    if (placed.length === 0 && o.waiting.get(p.workload) === p.reason) continue;
    if (placed.length === 0) o.waiting.set(p.workload, p.reason);
    else o.waiting.delete(p.workload);
    await event("place", {
      workload: p.workload,
      reason: placed.length
        ? `${p.reason}: placed on ${placed.join(", ")}`
        : `${p.reason}: no node fits (see the workload's placement)`,
    });
  }
}

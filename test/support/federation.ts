// Reading a hub tree's reports in the federation tests.
import type { HubHandle } from "./processes.ts";
import { waitFor } from "./wait.ts";

/** One entry of GET /api/v1/topology/reconcile: what changed on both sides of a reconnect, and what won. */
export interface ReconcileEntry {
  child: string;
  workload: string;
  hub: string;
  changed_here: string | null;
  changed_there: string | null;
  winner: string;
  outcome: string;
}

/** Waits for `hub`'s reconcile report to hold an entry for `workload` held at `at`. */
export function reconcileEntry(hub: HubHandle, workload: string, at: string): Promise<ReconcileEntry> {
  return waitFor(
    async () =>
      (await hub.api<{ reconciled: ReconcileEntry[] }>("/api/v1/topology/reconcile")).body.reconciled.find(
        (e) => e.workload === workload && e.hub === at,
      ),
    { what: `the reconcile report for ${workload} at ${at}` },
  );
}

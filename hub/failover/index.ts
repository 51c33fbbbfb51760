// Public surface of failover: the heartbeat monitor, the pure reconciler and the service that applies it.
export {
  type DrainAlloc,
  type DrainDecisions,
  type DrainMove,
  type DrainRecord,
  DrainStore,
  decideDrain,
} from "./drain.ts";
export { type ApplierDeps, applyDecisions, type DecisionRecorder } from "./applier.ts";
export { Failover, type FailoverOptions } from "./failover.ts";
export {
  DEFAULT_TRIGGERS,
  maintenanceWindow,
  type NodeSignals,
  type TriggerPolicy,
  TriggerWatch,
} from "./migration-triggers.ts";
export type { FailoverEvent } from "./failover-store.ts";
export {
  HeartbeatMonitor,
  partitionNote,
  type MonitorPolicy,
  type NodeHealth,
  type NodeLiveness,
  type Transition,
} from "./heartbeat-monitor.ts";
export { askWitnesses, chooseWitnesses, type WitnessCandidate, type WitnessReport } from "./witnesses.ts";
export {
  type Decisions,
  type NodeState,
  type ReconcileAlloc,
  type ReconcileNode,
  type ReconcileState,
  type ReconcileWorkload,
  reconcile,
} from "./reconcile.ts";
export { Mover, type MoverOptions } from "./mover.ts";

// Public surface of the hub's workload management.
export { WorkloadController } from "./controller.ts";
export { fleetState } from "./fleet-view.ts";
export { failure, fixedPort, nextStep, provedHealthy, type RolloutStep } from "./rollout.ts";
export {
  type AllocRecord,
  type RolloutState,
  type WorkloadRecord,
  WorkloadStore,
  type WorkloadView,
} from "./workload-store.ts";
export { checkDesiredSetSize, desiredSetBytes } from "./desired-set-size.ts";

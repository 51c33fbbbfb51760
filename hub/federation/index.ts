// Federation: hubs in a tree. A child reports summaries and changes up; a parent checks them and answers for the tree.
export { type ChangeRecord, type ChildState, Children, type RefusalReason } from "./children.ts";
export {
  Federation,
  type FederationOptions,
  FORWARDABLE,
  type Forwarded,
  type ParentOptions,
} from "./federation.ts";
export { COALESCE_AT, Reporter, type ReporterDeps } from "./reporter.ts";
export {
  type ChildView,
  countGroups,
  groupNodes,
  type LocalNode,
  type LocalWorkload,
  summarize,
} from "./summarize.ts";
export { buildTree, type TreeHub } from "./tree.ts";
export { HUB_COMMANDS, Uplink, UplinkStore } from "./uplink.ts";
export { topologyApi } from "./topology-api.ts";
export {
  placeSubtree,
  type SubtreeCandidate,
  type SubtreeHub,
  type SubtreePlan,
  subtreeHubs,
} from "./subtree-placement.ts";
export { httpStatus, TwoLevelPlacer, type TwoLevelOptions } from "./two-level.ts";
export { RolloutApplier, type RolloutRequest, toReport } from "./rollout-applier.ts";
export {
  type DomainReport,
  type DomainState,
  type FederatedStep,
  judgeDomain,
  nextFederatedStep,
  type StagedRollout,
} from "./staged-rollout.ts";

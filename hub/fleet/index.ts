// Public surface of the fleet overview.
export {
  type FleetNode,
  type FleetTree,
  fleetTree,
  type HealthCounts,
  type NodeFilter,
  pageNodes,
  readAtMostEvery,
  type RegionGroup,
  type SiteGroup,
  TIER_NAMES,
  type TierGroup,
  UNLABELLED,
} from "./overview.ts";

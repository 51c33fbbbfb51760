// Public surface of placement: pure functions from (fleet, request) to an explained plan.
export { type BatchOptions, placeBatch, placeGreedy } from "./batch.ts";
export { FleetIndex, indexFleet } from "./fleet-index.ts";
export { place } from "./place.ts";
export { PART_NAMES, PRESET_NAMES, PRESETS, resolveWeights } from "./presets.ts";
export { parseSelector, type SelectorTerm } from "./selector.ts";
export type {
  Allocation,
  BatchPlan,
  Candidate,
  Domain,
  FilterCount,
  FilterName,
  FleetNode,
  FleetState,
  LabelSelector,
  NodeHealth,
  PartName,
  PartScore,
  Placement,
  PlacementRequest,
  PlacementSpec,
  PlaceOptions,
  Plan,
  PresetName,
  Resources,
  Strategy,
  Weights,
} from "./types.ts";
export {
  PlacementRequestSchema,
  type ValidationContext,
  validatePlacementRequest,
  validationContext,
} from "./validate.ts";

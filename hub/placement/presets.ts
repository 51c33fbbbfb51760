// Named weight sets for the score, and how a request's preset, weights and strategy resolve.
import type { PartName, PlacementSpec, PresetName, Strategy, Weights } from "./types.ts";

export const PART_NAMES: readonly PartName[] = [
  "resources",
  "latency",
  "capabilities",
  "level",
  "availability",
  "cost",
];

export interface Preset {
  weights: Weights;
  strategy: Strategy;
}

/**
 * `balanced` is DESIGN section 6's split (25/25/20/15/15). The others move weight to one concern;
 * `cost-first` is the only one that weighs the node's `cost` label. Strategies: binpack keeps whole
 * nodes free for big workloads and saves money; spread keeps headroom, which latency- and
 * availability-minded workloads want.
 */
export const PRESETS: Readonly<Record<PresetName, Preset>> = {
  balanced: {
    weights: { resources: 25, latency: 25, capabilities: 20, level: 15, availability: 15, cost: 0 },
    strategy: "binpack",
  },
  "latency-first": {
    weights: { resources: 10, latency: 50, capabilities: 15, level: 10, availability: 15, cost: 0 },
    strategy: "spread",
  },
  "cost-first": {
    weights: { resources: 15, latency: 10, capabilities: 10, level: 10, availability: 10, cost: 45 },
    strategy: "binpack",
  },
  "availability-first": {
    weights: { resources: 15, latency: 15, capabilities: 15, level: 10, availability: 45, cost: 0 },
    strategy: "spread",
  },
};

export const PRESET_NAMES = Object.keys(PRESETS) as PresetName[];

/** The weights (normalised to sum to 100) and the strategy a placement spec asks for. */
export function resolveWeights(spec: PlacementSpec | undefined): Preset {
  const preset = PRESETS[spec?.preset ?? "balanced"];
  const raw: Weights = { ...preset.weights };
  for (const part of PART_NAMES) {
    const w = spec?.weights?.[part];
    if (w !== undefined) raw[part] = w;
  }
  let sum = 0;
  for (const part of PART_NAMES) sum += raw[part];
  // All-zero weights are refused by validation; fall back to the preset rather than dividing by zero.
  const base = sum > 0 ? raw : preset.weights;
  const total = sum > 0 ? sum : 100;
  const weights = {} as Weights;
  for (const part of PART_NAMES) weights[part] = (100 * base[part]) / total;
  return { weights, strategy: spec?.strategy ?? preset.strategy };
}

// Public surface of the agent's local store.
export { AgentStore } from "./agent-store.ts";
export { MetricBuffer } from "./metric-buffer.ts";
export { Downsampler, LOW_WATER } from "./downsample.ts";

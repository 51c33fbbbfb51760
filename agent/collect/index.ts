// Public surface of the agent's host metrics collection: the per-second sampler, disk usage and the hello inventory.
export { type CollectorOptions, HostCollector } from "./host-collector.ts";
export { type Inventory, inventory } from "./inventory.ts";
export { SERIES, type SeriesKey, type SeriesName } from "./series.ts";
export { probeSeries, runProbes, tcpConnectMs } from "./probes.ts";
export { type Sampling, type SamplingDeps, startSampling } from "./sampling-loop.ts";
export { CollectModule, type CollectModuleDeps } from "./collect-module.ts";

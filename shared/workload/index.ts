// Public surface of the workload model.
export * from "./spec.ts";
export * from "./disconnect.ts";

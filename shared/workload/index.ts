// Public surface of the workload model.
export * from "./spec.ts";

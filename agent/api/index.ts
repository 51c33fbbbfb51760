// Public surface of the agent's local API.
export { type AgentStatus, createLocalApi } from "./local-api.ts";
export { registerAgentMetrics } from "./agent-metrics.ts";
export { ApiModule, type ApiModuleDeps } from "./api-module.ts";

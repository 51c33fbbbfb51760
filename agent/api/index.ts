// Public surface of the agent's local API.
export { type AgentStatus, createLocalApi } from "./local-api.ts";

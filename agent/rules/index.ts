// Public surface of the agent's offline rules: the runner that evaluates them on every tick and applies decisions.
export { RulesRunner, type RulesRunnerDeps, STALE_MS } from "./rules-runner.ts";
export { RulesModule, type RulesModuleDeps } from "./rules-module.ts";

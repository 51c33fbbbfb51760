// The failover settings the benchmarks compare: the hub's defaults, and the fast ones we recommend
// where failover time matters (BENCHMARKS.md, "Failover").

export interface FailoverSettings {
  name: string;
  hubArgs: string[];
  agentArgs: string[];
  /** The workload's `disconnect` policy. */
  disconnect: Record<string, unknown>;
}

export const FAILOVER_SETTINGS: readonly FailoverSettings[] = [
  { name: "defaults", hubArgs: [], agentArgs: [], disconnect: {} },
  {
    name: "fast",
    hubArgs: ["--heartbeat-interval", "1s", "--suspect-after", "3s", "--disconnect-after", "1s"],
    agentArgs: ["--heartbeat-interval", "1s"],
    disconnect: { lost_after: "1s" },
  },
];

// Migration triggers from node state: sustained utilisation, heat, a degraded link, a maintenance window.

/** Thresholds; a condition must hold for its whole `...ForMs` before it triggers. */
export interface TriggerPolicy {
  utilPct: number;
  utilForMs: number;
  /** CPU temperature standing in for thermal throttling (the agent reports `temp.cpu_c`). */
  tempC: number;
  tempForMs: number;
  /** The hub's round trip to the node. */
  rttMs: number;
  rttForMs: number;
  /** How long before a maintenance window opens its node's work starts moving. */
  maintenanceLeadMs: number;
}

export const DEFAULT_TRIGGERS: TriggerPolicy = {
  utilPct: 90,
  utilForMs: 120_000,
  tempC: 85,
  tempForMs: 60_000,
  rttMs: 500,
  rttForMs: 120_000,
  maintenanceLeadMs: 600_000,
};

/** What the hub knows about a ready node now. */
export interface NodeSignals {
  id: string;
  cpuUtil?: number | undefined;
  tempC?: number | undefined;
  hubRttMs?: number | undefined;
  /** The node's `maintenance` label: `START/END` as ISO 8601 times. */
  maintenance?: string | undefined;
}

/** A maintenance label as [start, end] in ms; undefined when absent or malformed. */
export function maintenanceWindow(label: string | undefined): [number, number] | undefined {
  if (!label) return undefined;
  const [a, b] = label.split("/");
  const start = Date.parse(a ?? "");
  const end = Date.parse(b ?? "");
  return Number.isFinite(start) && Number.isFinite(end) && end > start ? [start, end] : undefined;
}

type Kind = "util" | "temp" | "rtt" | "maintenance";

/**
 * Watches node signals over time and says which nodes should have their work moved, and why. A node
 * triggers once per episode: the condition must clear before it can trigger again.
 */
export class TriggerWatch {
  readonly #policy: TriggerPolicy;
  /** node → kind → since when the condition holds (or -1 once it has triggered). */
  readonly #since = new Map<string, Map<Kind, number>>();

  constructor(policy: TriggerPolicy = DEFAULT_TRIGGERS) {
    this.#policy = policy;
  }

  /** The nodes whose work should move now, with the reason. */
  check(now: number, nodes: readonly NodeSignals[]): { node: string; reason: string; drainBy?: number }[] {
    const p = this.#policy;
    const out: { node: string; reason: string; drainBy?: number }[] = [];
    const seen = new Set<string>();
    for (const n of nodes) {
      seen.add(n.id);
      const window = maintenanceWindow(n.maintenance);
      const conditions: [Kind, boolean, number, string][] = [
        [
          "util",
          (n.cpuUtil ?? 0) > p.utilPct,
          p.utilForMs,
          `cpu.util above ${p.utilPct}% for ${p.utilForMs / 1000} s`,
        ],
        [
          "temp",
          (n.tempC ?? 0) >= p.tempC,
          p.tempForMs,
          `temp.cpu_c at or above ${p.tempC} °C for ${p.tempForMs / 1000} s`,
        ],
        [
          "rtt",
          (n.hubRttMs ?? 0) > p.rttMs,
          p.rttForMs,
          `hub round trip above ${p.rttMs} ms for ${p.rttForMs / 1000} s`,
        ],
        [
          "maintenance",
          window !== undefined && now >= window[0] - p.maintenanceLeadMs && now < window[1],
          0,
          `maintenance window ${n.maintenance}`,
        ],
      ];
      let kinds = this.#since.get(n.id);
      for (const [kind, holds, forMs, reason] of conditions) {
        if (!holds) {
          kinds?.delete(kind);
          continue;
        }
        if (!kinds) {
          kinds = new Map();
          this.#since.set(n.id, kinds);
        }
        const since = kinds.get(kind);
        if (since === undefined) kinds.set(kind, now);
        if (since === -1) continue;
        if (now - (since ?? now) >= forMs) {
          kinds.set(kind, -1);
          // A maintenance window drains the node: its work is off by the time the window opens.
          out.push(
            kind === "maintenance" && window
              ? { node: n.id, reason, drainBy: window[0] }
              : { node: n.id, reason },
          );
        }
      }
    }
    for (const id of this.#since.keys()) if (!seen.has(id)) this.#since.delete(id);
    return out;
  }
}

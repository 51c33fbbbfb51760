// The pure decision of hub alerting: fleet facts and the open alerts in, the alerts to open, update and resolve out.
import type { AlertRule, Op, Severity } from "./alert-rules.ts";

/** A node as alerting sees it. */
export interface NodeFacts {
  id: string;
  /** The heartbeat monitor's state (undefined: not tracked yet). */
  health: "ready" | "suspect" | "disconnected" | "lost" | undefined;
  /** Why it is in that state, in words. */
  reason: string;
  /** Last time the node was heard from (persisted, survives hub restarts). */
  lastSeen: number;
  /** Samples the node reported dropped in all (its heartbeat counters), when it reported any. */
  dropped: number | undefined;
  /** The newest value of each of its series (`disk.used_pct{mount="/"}` → 93.5). */
  series: ReadonlyMap<string, number>;
}

/** One failover log entry the evaluation has not seen yet. */
export interface FailoverFact {
  id: number;
  at: number;
  kind: string;
  node: string | null;
  workload: string | null;
  reason: string;
}

/** Everything an evaluation reads. */
export interface AlertFacts {
  now: number;
  nodes: readonly NodeFacts[];
  workloads: readonly { name: string; rollout: { state: string; message?: string } }[];
  /** Failover entries since the last evaluation, oldest first. */
  failover: readonly FailoverFact[];
}

/** An alert that is open or acknowledged (what an evaluation may update or resolve). */
export interface LiveAlert {
  id: number;
  key: string;
  rule: string;
  node: string | null;
  started_at: number;
  updated_at: number;
  message: string;
}

/** What the evaluation remembers from one run to the next (held by the applier, not persisted). */
export interface AlertMemory {
  /** When each pending condition (a `for` not yet met) began, by alert key. */
  pending: Map<string, number>;
  /** Each node's dropped counter when last seen, when it last grew, and when it was first seen. */
  dropped: Map<string, { value: number; grewAt: number | undefined; since: number }>;
}

export interface Opening {
  key: string;
  rule: string;
  node: string | null;
  severity: Severity;
  message: string;
}

/** The evaluation's outcome: the applier writes it. */
export interface AlertDecisions {
  open: Opening[];
  /** Still firing with news (a new failover on the same workload): message and updated_at change. */
  update: { id: number; message: string }[];
  resolve: { id: number; reason: string }[];
}

export const emptyMemory = (): AlertMemory => ({ pending: new Map(), dropped: new Map() });

const compare = (v: number, op: Op, t: number) =>
  op === ">" ? v > t : op === ">=" ? v >= t : op === "<" ? v < t : v <= t;

const baseName = (series: string) => {
  const i = series.indexOf("{");
  return i < 0 ? series : series.slice(0, i);
};

const mins = (ms: number) =>
  ms >= 3_600_000 ? `${Math.round(ms / 360_000) / 10} h` : `${Math.round(ms / 6000) / 10} min`;

/** A condition's verdict for one subject: firing (with its message), clear, or unknown (keep as is). */
type Verdict = { firing: true; message: string } | { firing: false; reason: string } | undefined;

/**
 * Evaluates `rules` over `facts`. An alert is keyed by rule and subject (`node-down:n1`): one key is
 * open at most once, so a condition that stays true opens nothing new. Node alerts resolve only
 * when the node is ready again (a hub that just restarted does not know yet, and must not resolve
 * and reopen them). `memory` is updated in place.
 */
export function evaluateAlerts(
  rules: readonly AlertRule[],
  facts: AlertFacts,
  live: readonly LiveAlert[],
  memory: AlertMemory,
): AlertDecisions {
  const out: AlertDecisions = { open: [], update: [], resolve: [] };
  const liveByKey = new Map(live.map((a) => [a.key, a]));
  const seenKeys = new Set<string>();
  const now = facts.now;
  // Drop counters first: growth is judged against the previous evaluation, whichever rules exist.
  const grew = new Map<string, number>();
  for (const n of facts.nodes) {
    if (n.dropped === undefined) continue;
    const prev = memory.dropped.get(n.id);
    // The first reading is a baseline (after a hub restart too): quiet is counted from it.
    if (prev === undefined) memory.dropped.set(n.id, { value: n.dropped, grewAt: undefined, since: now });
    else if (n.dropped > prev.value) {
      grew.set(n.id, n.dropped - prev.value);
      memory.dropped.set(n.id, { ...prev, value: n.dropped, grewAt: now });
    } else if (n.dropped < prev.value) memory.dropped.set(n.id, { ...prev, value: n.dropped });
  }

  const judge = (rule: AlertRule, key: string, node: string | null, v: Verdict, holdFor = 0) => {
    seenKeys.add(key);
    const existing = liveByKey.get(key);
    if (v === undefined) return;
    if (!v.firing) {
      memory.pending.delete(key);
      if (existing) out.resolve.push({ id: existing.id, reason: v.reason });
      return;
    }
    if (existing) {
      if (existing.message !== v.message && rule.kind === "failover_done")
        out.update.push({ id: existing.id, message: v.message });
      return;
    }
    if (holdFor > 0) {
      const since = memory.pending.get(key) ?? now;
      memory.pending.set(key, since);
      if (now - since < holdFor) return;
    }
    memory.pending.delete(key);
    out.open.push({ key, rule: rule.name, node, severity: rule.severity, message: v.message });
  };

  for (const rule of rules) {
    if (!rule.enabled) continue;
    switch (rule.kind) {
      case "node_down":
        for (const n of facts.nodes) {
          const down = n.health === "disconnected" || n.health === "lost";
          judge(
            rule,
            `${rule.name}:${n.id}`,
            n.id,
            down
              ? { firing: true, message: `node ${n.id} is down (${n.health}): ${n.reason}` }
              : n.health === "ready"
                ? { firing: false, reason: `node ${n.id} is ready again` }
                : undefined,
          );
        }
        break;
      case "node_offline":
        for (const n of facts.nodes) {
          const off = now - n.lastSeen;
          judge(
            rule,
            `${rule.name}:${n.id}`,
            n.id,
            n.health === "ready"
              ? { firing: false, reason: `node ${n.id} is ready again` }
              : // Suspect is not enough: right after a hub restart every node is suspect until it reconnects.
                (n.health === "disconnected" || n.health === "lost") && off >= rule.for_ms
                ? { firing: true, message: `node ${n.id} has been offline for ${mins(off)} (${n.health})` }
                : undefined,
          );
        }
        break;
      case "series":
        for (const n of facts.nodes) {
          for (const [name, value] of n.series) {
            if (name !== rule.series && baseName(name) !== rule.series) continue;
            const firing = compare(value, rule.op!, rule.threshold!);
            judge(
              rule,
              `${rule.name}:${n.id}:${name}`,
              n.id,
              firing
                ? {
                    firing: true,
                    message: `${name} on ${n.id} is ${value} (${rule.op} ${rule.threshold})`,
                  }
                : { firing: false, reason: `${name} on ${n.id} is ${value} again` },
              rule.for_ms,
            );
          }
        }
        break;
      case "buffer_dropping":
        for (const n of facts.nodes) {
          const d = memory.dropped.get(n.id);
          if (!d) continue;
          const fresh = grew.get(n.id);
          judge(
            rule,
            `${rule.name}:${n.id}`,
            n.id,
            fresh !== undefined
              ? {
                  firing: true,
                  message: `node ${n.id} is dropping samples (${fresh} more, ${d.value} in all)`,
                }
              : now - (d.grewAt ?? d.since) >= rule.for_ms
                ? { firing: false, reason: `node ${n.id} dropped nothing for ${mins(rule.for_ms)}` }
                : undefined,
          );
        }
        break;
      case "rollout_failed":
        for (const w of facts.workloads) {
          const failed = w.rollout.state === "failed" || w.rollout.state === "rolled-back";
          judge(
            rule,
            `${rule.name}:${w.name}`,
            null,
            failed
              ? {
                  firing: true,
                  message: `rollout of ${w.name} ${w.rollout.state}: ${w.rollout.message ?? ""}`.trim(),
                }
              : { firing: false, reason: `workload ${w.name} is ${w.rollout.state}` },
          );
        }
        break;
      case "failover_done":
      case "failover_failed": {
        // Events, not states: a failover entry opens (or refreshes) the workload's alert.
        const failed = (f: FailoverFact) => f.kind === "place" && /no node fits/.test(f.reason);
        const done = (f: FailoverFact) => f.kind === "place" && !failed(f);
        const last = new Map<string, FailoverFact>();
        for (const f of facts.failover) {
          if (f.workload && (done(f) || failed(f))) last.set(f.workload, f);
        }
        for (const [w, f] of last) {
          const mine = rule.kind === "failover_done" ? done(f) : failed(f);
          judge(
            rule,
            `${rule.name}:${w}`,
            null,
            mine
              ? { firing: true, message: `failover of ${w}: ${f.reason}` }
              : { firing: false, reason: `failover of ${w}: ${f.reason}` },
          );
        }
        if (rule.kind === "failover_done") {
          // An information alert: it resolves on its own after `for`.
          for (const a of live) {
            if (a.rule !== rule.name || seenKeys.has(a.key)) continue;
            if (now - a.updated_at >= rule.for_ms)
              out.resolve.push({ id: a.id, reason: `no failover of it for ${mins(rule.for_ms)}` });
          }
        }
        break;
      }
      default: {
        const never: never = rule.kind;
        void never;
      }
    }
  }
  // An alert whose rule is gone, disabled, or whose subject is gone resolves.
  const active = new Map(rules.filter((r) => r.enabled).map((r) => [r.name, r]));
  for (const a of live) {
    if (a.key.startsWith("agent:") || seenKeys.has(a.key)) continue;
    const rule = active.get(a.rule);
    if (!rule) out.resolve.push({ id: a.id, reason: `rule ${a.rule} is no longer in force` });
    else if (rule.kind !== "failover_done" && rule.kind !== "failover_failed") {
      // Its subject (a node, a series, a workload) is no longer there.
      if (rule.kind === "series" && facts.nodes.some((n) => n.id === a.node)) continue;
      out.resolve.push({ id: a.id, reason: "its subject no longer exists" });
    }
  }
  // Pending conditions of subjects not seen this time are forgotten.
  for (const k of memory.pending.keys()) if (!seenKeys.has(k)) memory.pending.delete(k);
  return out;
}

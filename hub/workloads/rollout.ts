// Rollout decisions: given a workload's allocations now, what the next step is. Pure: no I/O.
import type { WorkloadSpec } from "../../shared/workload/index.ts";
import type { AllocRecord, RolloutState } from "./workload-store.ts";

export type RolloutStep =
  | { kind: "wait" }
  | { kind: "replace"; stop: string[]; startOn: string[] }
  | { kind: "start"; startOn: string[] }
  | { kind: "stop"; stop: string[]; done: true }
  | { kind: "await-promotion" }
  /** Old and new would take the same fixed port on a node: stop these first, start there after. */
  | { kind: "stop-first"; stop: string[]; startOn: string[] }
  /** The copies stopped first are gone: start the new version on their nodes. */
  | { kind: "handoff-start"; startOn: string[] }
  | { kind: "done" }
  | { kind: "rollback"; reason: string };

/** Whether a new allocation has proved itself: running, not unhealthy, for long enough. */
export function provedHealthy(a: AllocRecord, now: number, minHealthyMs: number): boolean {
  return (
    a.status === "running" &&
    a.healthy !== false &&
    a.running_since !== null &&
    now - a.running_since >= minHealthyMs
  );
}

/** Why a new allocation counts as failed, or undefined. */
export function failure(a: AllocRecord): string | undefined {
  if (a.healthy === false) {
    return `allocation ${a.id} on ${a.node} failed its health check${a.message ? ` (${a.message})` : ""}`;
  }
  if (a.status === "failed")
    return `allocation ${a.id} on ${a.node} failed${a.message ? `: ${a.message}` : ""}`;
  if (a.restarts > 0 && a.status !== "running") return `allocation ${a.id} on ${a.node} keeps restarting`;
  return undefined;
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);

/**
 * The fixed port a copy takes on its node, as far as its spec says: the port its TCP or HTTP health
 * check connects to on loopback (a check of another host says nothing about this node's ports).
 */
export function fixedPort(spec: WorkloadSpec): number | undefined {
  const h = spec.health;
  if (h?.type === "tcp") return LOOPBACK.has(h.host) ? h.port : undefined;
  if (h?.type === "http") {
    try {
      const u = new URL(h.url);
      if (!LOOPBACK.has(u.hostname)) return undefined;
      return Number(u.port || (u.protocol === "https:" ? 443 : 80));
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/**
 * The next step of a rollout from `rollout.from` to `rollout.to`. `active` are the workload's
 * allocations wanted running. Rolling replaces `max_unavailable` at a time, canary stops after the
 * first `canary` replicas until promoted, blue-green starts every new replica beside the old ones.
 */
export function nextStep(
  rollout: Extract<RolloutState, { to: number; step_started: number }>,
  spec: WorkloadSpec,
  active: AllocRecord[],
  now: number,
  /** Every allocation of the workload, stopped ones included (for a handoff on a fixed port). */
  all: readonly AllocRecord[] = active,
): RolloutStep {
  const cfg = spec.rollout;
  if ("handoff" in rollout && rollout.handoff && rollout.handoff.length > 0) {
    // A copy has let go of the port once it reported a final state (or is gone altogether).
    const gone = (id: string) => {
      const a = all.find((x) => x.id === id);
      return !a || a.status === "complete" || a.status === "failed" || a.status === "lost";
    };
    if (rollout.handoff.every((h) => gone(h.stopped)))
      return { kind: "handoff-start", startOn: rollout.handoff.map((h) => h.node) };
    if (now - rollout.step_started > cfg.deadline_ms)
      return { kind: "rollback", reason: `old copies did not stop within ${cfg.deadline_ms} ms` };
    return { kind: "wait" };
  }
  const fresh = active.filter((a) => a.version === rollout.to);
  // Node order, so the same state always gives the same step.
  const old = active
    .filter((a) => a.version !== rollout.to)
    .sort((a, b) => a.node.localeCompare(b.node) || a.id.localeCompare(b.id));
  for (const a of fresh) {
    const why = failure(a);
    if (why) return { kind: "rollback", reason: why };
  }
  const allProved = fresh.every((a) => provedHealthy(a, now, cfg.min_healthy_ms));
  if (!allProved) {
    if (now - rollout.step_started > cfg.deadline_ms) {
      return { kind: "rollback", reason: `new version not healthy within ${cfg.deadline_ms} ms` };
    }
    return { kind: "wait" };
  }
  if (rollout.state === "awaiting-promotion") return { kind: "await-promotion" };
  if (rollout.state === "blue-green") {
    if (old.length === 0 && fresh.length === 0) return { kind: "done" };
    if (fresh.length === 0) return { kind: "start", startOn: old.map((a) => a.node) };
    return old.length > 0 ? { kind: "stop", stop: old.map((a) => a.id), done: true } : { kind: "done" };
  }
  if (old.length === 0) return { kind: "done" };
  if (rollout.state === "canary" && fresh.length >= Math.min(cfg.canary, active.length) && fresh.length > 0) {
    return { kind: "await-promotion" };
  }
  const batch = rollout.state === "canary" && fresh.length === 0 ? cfg.canary : cfg.max_unavailable;
  const chosen = old.slice(0, Math.max(1, batch));
  const port = fixedPort(spec);
  // Same node, same fixed port: the new copy could not bind while the old one holds it.
  if (port !== undefined && chosen.some((a) => fixedPort(a.spec) === port)) {
    return { kind: "stop-first", stop: chosen.map((a) => a.id), startOn: chosen.map((a) => a.node) };
  }
  return { kind: "replace", stop: chosen.map((a) => a.id), startOn: chosen.map((a) => a.node) };
}

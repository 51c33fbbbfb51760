// Staged rollout across child hubs, decided: given what each hub below reports, the next step. Pure: no I/O.
import type { WorkloadSpec } from "../../shared/workload/index.ts";

/** Where one child domain stands in a staged rollout. */
export type DomainPhase = "pending" | "applying" | "healthy" | "reverting" | "reverted";

export interface DomainState {
  hub: string;
  /** Hubs from this hub's direct child down to it. */
  route: string[];
  phase: DomainPhase;
  /** The holding hub's version of the workload once this rollout changed it there. */
  version?: number;
  /** Whether this rollout created the workload there (a revert deletes it) or changed it (a revert restores). */
  created?: boolean;
  /** When the change was sent (the deadline counts from it). */
  started?: number;
  /** When it was found healthy, or reverted. */
  finished?: number;
}

/** A workload rolled out across several child domains, the first of them the canary. */
export interface StagedRollout {
  name: string;
  spec: WorkloadSpec;
  /** The spec the domains ran before (a revert restores it); null when the rollout created the workload. */
  previous: WorkloadSpec | null;
  domains: DomainState[];
  max_parallel: number;
  deadline_ms: number;
  state: "rolling" | "done" | "reverting" | "reverted";
  reason?: string;
  started: number;
  updated: number;
  /** What happened, oldest first (bounded). */
  history: { at: number; hub: string; event: string }[];
}

/** One allocation of the workload as the holding hub reports it. */
export interface ReportedAlloc {
  id?: string;
  node?: string;
  version: number;
  status: string;
  healthy: boolean | null;
  message?: string | null;
}

/** What a hub below answered for the workload: its view, its absence, or that it could not be asked. */
export type DomainReport =
  | {
      kind: "found";
      version: number;
      replicas: number;
      rollout: { state: string; to?: number; message?: string };
      allocs: ReportedAlloc[];
    }
  | { kind: "absent" }
  | { kind: "unreachable"; why: string };

/** Whether a changed domain runs the new version healthy, is still on its way, or failed (and why). */
export type Verdict =
  | { kind: "healthy" }
  | { kind: "waiting" }
  /** `selfReverted`: the holding hub's own rollout already rolled it back. */
  | { kind: "failed"; reason: string; selfReverted: boolean };

export type FederatedStep =
  | { kind: "wait" }
  /** Send the new spec to these hubs. */
  | { kind: "apply"; hubs: string[] }
  /** These hubs run the new version healthy. */
  | { kind: "healthy"; hubs: string[] }
  /**
   * A domain failed: every domain already changed goes back (`revert`); those whose own rollout
   * already rolled back (`already`) need nothing more.
   */
  | { kind: "revert"; failed: string; reason: string; revert: string[]; already: string[] }
  | { kind: "done" }
  | { kind: "reverted" };

/** A changed domain judged from its hub's report. */
export function judgeDomain(
  d: DomainState,
  report: DomainReport | undefined,
  spec: WorkloadSpec,
  now: number,
  deadlineMs: number,
): Verdict {
  const late = d.started !== undefined && now - d.started > deadlineMs;
  if (!report || report.kind === "unreachable") {
    return late
      ? {
          kind: "failed",
          reason: `${d.hub} could not be asked within ${deadlineMs} ms${report ? `: ${report.why}` : ""}`,
          selfReverted: false,
        }
      : { kind: "waiting" };
  }
  if (report.kind === "absent")
    return { kind: "failed", reason: `the workload is gone at ${d.hub}`, selfReverted: false };
  const r = report.rollout;
  if ((r.state === "rolled-back" || r.state === "failed") && r.to === d.version) {
    return {
      kind: "failed",
      reason: `${d.hub}: ${r.message ?? `rollout ${r.state}`}`,
      selfReverted: r.state === "rolled-back",
    };
  }
  if (report.version !== d.version) {
    return {
      kind: "failed",
      reason: `${d.hub} holds version ${report.version}, not ${String(d.version)} (changed there meanwhile)`,
      selfReverted: false,
    };
  }
  const fresh = report.allocs.filter((a) => a.version === d.version);
  for (const a of fresh) {
    if (a.healthy === false)
      return {
        kind: "failed",
        reason: `${d.hub}: allocation ${a.id ?? "?"} on ${a.node ?? "?"} failed its health check${a.message ? ` (${a.message})` : ""}`,
        selfReverted: false,
      };
    if (a.status === "failed")
      return {
        kind: "failed",
        reason: `${d.hub}: allocation ${a.id ?? "?"} on ${a.node ?? "?"} failed${a.message ? `: ${a.message}` : ""}`,
        selfReverted: false,
      };
  }
  // Healthy: the hub's own rollout finished, every replica runs the new version, and passes its check if it has one.
  const proved = (a: ReportedAlloc) =>
    a.status === "running" && (spec.health ? a.healthy === true : a.healthy !== false);
  if (
    r.state === "idle" &&
    report.allocs.length >= spec.replicas &&
    report.allocs.every((a) => a.version === d.version) &&
    fresh.every(proved)
  )
    return { kind: "healthy" };
  return late
    ? { kind: "failed", reason: `${d.hub}: not healthy within ${deadlineMs} ms`, selfReverted: false }
    : { kind: "waiting" };
}

/**
 * The next step of a staged rollout: the canary domain first, alone; once it runs the new version
 * healthy, the others at most `max_parallel` at a time, each waiting for its hub to report the new
 * version healthy. A failure anywhere sends back every domain already changed.
 */
export function nextFederatedStep(
  r: StagedRollout,
  reports: ReadonlyMap<string, DomainReport>,
  now: number,
): FederatedStep {
  if (r.state === "done") return { kind: "done" };
  if (r.state === "reverted") return { kind: "reverted" };
  if (r.state === "reverting") {
    const left = r.domains.filter((d) => d.phase === "reverting").map((d) => d.hub);
    return left.length > 0
      ? { kind: "revert", failed: "", reason: r.reason ?? "", revert: left, already: [] }
      : { kind: "reverted" };
  }
  const changed = r.domains.filter((d) => d.phase === "applying" || d.phase === "healthy");
  const healthy: string[] = [];
  for (const d of r.domains) {
    if (d.phase !== "applying") continue;
    const v = judgeDomain(d, reports.get(d.hub), r.spec, now, r.deadline_ms);
    if (v.kind === "failed") {
      const already = v.selfReverted ? [d.hub] : [];
      return {
        kind: "revert",
        failed: d.hub,
        reason: v.reason,
        revert: changed.map((c) => c.hub).filter((h) => !already.includes(h)),
        already,
      };
    }
    if (v.kind === "healthy") healthy.push(d.hub);
  }
  if (healthy.length > 0) return { kind: "healthy", hubs: healthy };
  const canary = r.domains[0];
  if (!canary) return { kind: "done" };
  if (canary.phase === "pending") return { kind: "apply", hubs: [canary.hub] };
  if (canary.phase !== "healthy") return { kind: "wait" };
  const applying = r.domains.filter((d) => d.phase === "applying").length;
  const pending = r.domains.filter((d) => d.phase === "pending").map((d) => d.hub);
  if (pending.length === 0) return applying === 0 ? { kind: "done" } : { kind: "wait" };
  const room = Math.max(0, r.max_parallel - applying);
  return room > 0 ? { kind: "apply", hubs: pending.slice(0, room) } : { kind: "wait" };
}

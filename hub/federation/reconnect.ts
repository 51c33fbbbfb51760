// A child hub back after a cut or a loss, decided: which copies moved away must stop there, and what changed on each side. Pure.
import type { WorkloadSpec } from "../../shared/workload/index.ts";
import type { Intent } from "./intents.ts";

/** One line of the reconcile report: a workload, what each side changed, and which side won. */
export interface ReconcileEntry {
  at: number;
  /** The child hub that came back. */
  child: string;
  workload: string;
  /** The hub below that holds (or held) the workload. */
  hub: string;
  /** What this hub (the parent) changed while the child was away, if anything. */
  changed_here: string | null;
  /** What the hub below changed meanwhile (a local operation on site), if anything. */
  changed_there: string | null;
  winner: "parent" | "holding hub" | "none";
  /** What was done about it. */
  outcome: string;
}

/** A copy left at a hub that was declared lost and has come back, while the workload runs below a sibling. */
export interface StaleCopy {
  intent: Intent;
  /** Index of the move in `intent.moves`. */
  move: number;
  /** The hub that still holds the old copy. */
  hub: string;
}

/**
 * Copies to stop at a returning subtree: every move away from one of its hubs that has not been
 * stopped there yet, unless the workload has since been placed back into that hub.
 */
export function staleCopies(intents: readonly Intent[], subtreeHubs: ReadonlySet<string>): StaleCopy[] {
  const out: StaleCopy[] = [];
  for (const intent of intents) {
    (intent.moves ?? []).forEach((m, i) => {
      if (m.stopped !== undefined || !subtreeHubs.has(m.from) || intent.hub === m.from) return;
      out.push({ intent, move: i, hub: m.from });
    });
  }
  return out;
}

/** What differs between the parent's intent and the holding hub's workload, in words; undefined when nothing. */
export function driftOf(intent: Intent, status: number, placed: unknown): string | undefined {
  if (status === 404) return "removed at the holding hub";
  if (status !== 200 || !placed || typeof placed !== "object") return undefined;
  const p = placed as Partial<WorkloadSpec> & { version?: unknown };
  const s = intent.spec;
  const diffs: string[] = [];
  if (p.replicas !== s.replicas) diffs.push(`replicas ${String(p.replicas)} (intent ${s.replicas})`);
  if (p.command !== s.command) diffs.push("command");
  if (JSON.stringify(p.args ?? []) !== JSON.stringify(s.args ?? [])) diffs.push("args");
  if (JSON.stringify(p.env ?? {}) !== JSON.stringify(s.env ?? {})) diffs.push("env");
  if (diffs.length === 0) return undefined;
  return `changed at the holding hub (version ${String(p.version)}): ${diffs.join(", ")}`;
}

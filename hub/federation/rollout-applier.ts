// Staged rollout across child hubs, applied: asks each changed hub how the workload runs, takes the pure step, sends it down.
import { ConflictError, RequestError } from "../../shared/errors.ts";
import type { Body } from "../../shared/protocol/index.ts";
import type { WorkloadSpec } from "../../shared/workload/index.ts";
import { forUpdate, type HubSql } from "../store/sql/index.ts";
import {
  type DomainReport,
  type DomainState,
  type FederatedStep,
  nextFederatedStep,
  type ReportedAlloc,
  type StagedRollout,
} from "./staged-rollout.ts";
import type { SubtreeHub } from "./subtree-placement.ts";

const HISTORY_MAX = 200;

export interface RolloutApplierOptions {
  sql: HubSql;
  /** The hubs below as their summaries tell them, with the route to each. */
  hubs: () => SubtreeHub[];
  /** Whether a workload of this name is placed into a single domain (two-level placement). */
  placedSingly: (name: string) => Promise<boolean>;
  request: (
    child: string,
    kind: string,
    args: Record<string, unknown>,
    timeoutMs: number,
  ) => Promise<Body<"reply">>;
  now: () => number;
}

/** What a caller asks for: a spec, the domains (canary first), how many at once, how long a step may take. */
export interface RolloutRequest {
  spec: WorkloadSpec;
  hubs: string[];
  max_parallel: number;
  deadline_ms: number;
}

/** Staged rollouts in the hub's database (`fed_rollouts`, made by the migrations), driven by `tick()`. */
export class RolloutApplier {
  readonly #o: RolloutApplierOptions;
  #ticking = false;

  constructor(o: RolloutApplierOptions) {
    this.#o = o;
  }

  async get(name: string): Promise<StagedRollout | undefined> {
    const row = await this.#o.sql.get<{ body: string }>("SELECT body FROM fed_rollouts WHERE name = ?", [
      name,
    ]);
    return row ? (JSON.parse(row.body) as StagedRollout) : undefined;
  }

  async list(): Promise<StagedRollout[]> {
    const rows = await this.#o.sql.all<{ body: string }>("SELECT body FROM fed_rollouts ORDER BY name");
    return rows.map((r) => JSON.parse(r.body) as StagedRollout);
  }

  async #save(r: StagedRollout, on: HubSql = this.#o.sql): Promise<void> {
    r.updated = this.#o.now();
    if (r.history.length > HISTORY_MAX) r.history.splice(0, r.history.length - HISTORY_MAX);
    await on.run(
      "INSERT INTO fed_rollouts (name, body) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET body = excluded.body",
      [r.name, JSON.stringify(r)],
    );
  }

  /**
   * Starts a staged rollout: a new workload across several domains, or a new version of one rolled
   * out before (its last good spec is what a failure restores). Throws a field-naming error.
   */
  async start(req: RolloutRequest): Promise<StagedRollout> {
    const { spec } = req;
    if (await this.#o.placedSingly(spec.name))
      throw new ConflictError(`workload ${spec.name} is placed into one domain below; it cannot be staged`);
    const known = new Map(this.#o.hubs().map((h) => [h.id, h]));
    const domains: DomainState[] = req.hubs.map((id, i) => {
      const h = known.get(id);
      if (!h) throw new RequestError(`hubs[${i}]: ${id} is not a hub below this one`, `hubs[${i}]`);
      return { hub: id, route: h.route, phase: "pending" };
    });
    // One transaction holding the workload's row: two starts at once (on two replicas) cannot both
    // find none in progress. A row is made first (empty, never committed so) when there is none yet,
    // so that there is one to lock. The refusal is returned, not thrown, so that the transaction
    // commits: on SQLite, synchronous writes of other callers may have joined it meanwhile.
    const started = await this.#o.sql.tx(async (tx): Promise<StagedRollout | { busy: string }> => {
      await tx.run("INSERT INTO fed_rollouts (name, body) VALUES (?, '') ON CONFLICT (name) DO NOTHING", [
        spec.name,
      ]);
      const row = await tx.get<{ body: string }>(
        `SELECT body FROM fed_rollouts WHERE name = ?${forUpdate(tx.dialect)}`,
        [spec.name],
      );
      const before = row?.body ? (JSON.parse(row.body) as StagedRollout) : undefined;
      if (before && (before.state === "rolling" || before.state === "reverting"))
        return { busy: before.state };
      const now = this.#o.now();
      // A spec that last failed is not "previous": the last one that rolled out is.
      const previous = before ? (before.state === "done" ? before.spec : before.previous) : null;
      const r: StagedRollout = {
        name: spec.name,
        spec,
        previous,
        domains,
        max_parallel: req.max_parallel,
        deadline_ms: req.deadline_ms,
        state: "rolling",
        started: now,
        updated: now,
        history: [
          ...(before?.history ?? []),
          { at: now, hub: "", event: `rollout started, canary ${req.hubs[0]}` },
        ],
      };
      await this.#save(r, tx);
      return r;
    });
    if ("busy" in started)
      throw new ConflictError(`a staged rollout of ${spec.name} is in progress (${started.busy})`);
    return started;
  }

  /** One round for every rollout in progress: ask, decide, apply (until a step waits). */
  async tick(): Promise<void> {
    if (this.#ticking) return;
    this.#ticking = true;
    try {
      for (const r of await this.list()) {
        if (r.state !== "rolling" && r.state !== "reverting") continue;
        // A few steps per round: "healthy" then "apply" need no new answers in between.
        for (let i = 0; i < 4; i++) {
          const reports = await this.#reports(r);
          const step = nextFederatedStep(r, reports, this.#o.now());
          const progressed = await this.#apply(r, step);
          await this.#save(r);
          if (!progressed) break;
        }
      }
    } finally {
      this.#ticking = false;
    }
  }

  // Each applying domain's hub asked for the workload (only those: the others are not being judged).
  async #reports(r: StagedRollout): Promise<Map<string, DomainReport>> {
    const out = new Map<string, DomainReport>();
    await Promise.all(
      r.domains
        .filter((d) => d.phase === "applying")
        .map(async (d) => {
          out.set(d.hub, await this.#ask(d, r.name));
        }),
    );
    return out;
  }

  async #ask(d: DomainState, name: string): Promise<DomainReport> {
    const [first, ...rest] = d.route;
    try {
      const reply = await this.#o.request(
        first!,
        "fed_query",
        { path: `/api/v1/workloads/${name}`, route: rest },
        10_000,
      );
      if (!reply.ok) return { kind: "unreachable", why: String(reply.body) };
      return toReport(reply.body);
    } catch (err) {
      return { kind: "unreachable", why: (err as Error).message };
    }
  }

  // Sends a change down to a domain's hub: its answer's status and body.
  async #send(
    d: DomainState,
    method: "POST" | "PUT" | "DELETE",
    name: string,
    spec?: WorkloadSpec,
  ): Promise<{ status: number; body: unknown }> {
    const [first, ...rest] = d.route;
    const reply = await this.#o.request(
      first!,
      "fed_apply",
      { method, name, ...(spec ? { spec } : {}), route: rest },
      15_000,
    );
    if (!reply.ok) throw new Error(String(reply.body));
    const a = (reply.body ?? {}) as { status?: unknown; body?: unknown };
    return { status: typeof a.status === "number" ? a.status : 502, body: a.body };
  }

  // Applies one step to the record; true when it changed something (another step may follow at once).
  async #apply(r: StagedRollout, step: FederatedStep): Promise<boolean> {
    const now = this.#o.now();
    const log = (hub: string, event: string) => r.history.push({ at: now, hub, event });
    const domain = (hub: string) => r.domains.find((d) => d.hub === hub)!;
    switch (step.kind) {
      case "wait":
        return false;
      case "done":
        r.state = "done";
        log("", "rollout done: every domain runs the new version healthy");
        return false;
      case "reverted":
        r.state = "reverted";
        log("", `rollout reverted: ${r.reason ?? ""}`);
        return false;
      case "healthy":
        for (const h of step.hubs) {
          const d = domain(h);
          d.phase = "healthy";
          d.finished = now;
          log(h, `version ${String(d.version)} healthy`);
        }
        return true;
      case "apply":
        for (const h of step.hubs) {
          const d = domain(h);
          try {
            let answer = await this.#send(d, "PUT", r.name, r.spec);
            let created = false;
            if (answer.status === 404) {
              answer = await this.#send(d, "POST", r.name, r.spec);
              created = true;
            }
            if (answer.status !== 200 && answer.status !== 201) throw new Error(describeAnswer(answer));
            const version = (answer.body as { version?: unknown } | null)?.version;
            d.phase = "applying";
            d.created = created;
            d.version = typeof version === "number" ? version : -1;
            d.started = now;
            log(h, `${created ? "created" : "changed"}: version ${d.version} there`);
          } catch (err) {
            // Nothing changed there: the rollout stops, and what was changed goes back.
            d.started = now;
            this.#beginRevert(r, h, `${h} refused the change: ${(err as Error).message}`, [], log);
            return true;
          }
        }
        return true;
      case "revert": {
        if (r.state === "rolling") {
          this.#beginRevert(r, step.failed, step.reason, step.already, log);
          return true;
        }
        for (const h of step.revert) {
          const d = domain(h);
          try {
            const answer = d.created
              ? await this.#send(d, "DELETE", r.name)
              : r.previous
                ? await this.#send(d, "PUT", r.name, r.previous)
                : { status: 200, body: null };
            // 404: nothing of it is left there to revert.
            if (answer.status !== 200 && answer.status !== 404) throw new Error(describeAnswer(answer));
            d.phase = "reverted";
            d.finished = now;
            log(h, d.created ? "reverted: removed" : "reverted: previous spec restored");
          } catch (err) {
            log(h, `revert not yet done (retried): ${(err as Error).message}`);
          }
        }
        return false;
      }
    }
  }

  #beginRevert(
    r: StagedRollout,
    failed: string,
    reason: string,
    already: string[],
    log: (hub: string, event: string) => void,
  ): void {
    r.state = "reverting";
    r.reason = reason;
    log(failed, `failed: ${reason}`);
    for (const d of r.domains) {
      if (already.includes(d.hub)) {
        d.phase = "reverted";
        log(d.hub, "reverted by its own hub's rollout");
      } else if (d.phase === "applying" || d.phase === "healthy") d.phase = "reverting";
    }
  }
}

function describeAnswer(a: { status: number; body: unknown }): string {
  const e = (a.body as { error?: { message?: unknown } } | null)?.error?.message;
  return `status ${a.status}${typeof e === "string" ? `: ${e.slice(0, 300)}` : ""}`;
}

/** A hub's answer to GET /api/v1/workloads/{name}, read defensively (a child is untrusted input). */
export function toReport(body: unknown): DomainReport {
  const a = (body ?? {}) as { status?: unknown; body?: unknown };
  if (a.status === 404) return { kind: "absent" };
  if (a.status !== 200 || !a.body || typeof a.body !== "object")
    return { kind: "unreachable", why: `answered status ${String(a.status)}` };
  const w = a.body as Record<string, unknown>;
  const ro = (w.rollout_status ?? {}) as Record<string, unknown>;
  const allocs: ReportedAlloc[] = Array.isArray(w.allocs)
    ? w.allocs.slice(0, 10_000).map((x) => {
        const o = (x ?? {}) as Record<string, unknown>;
        return {
          id: typeof o.id === "string" ? o.id : undefined,
          node: typeof o.node === "string" ? o.node : undefined,
          version: typeof o.version === "number" ? o.version : -1,
          status: typeof o.status === "string" ? o.status : "unknown",
          healthy: typeof o.healthy === "boolean" ? o.healthy : null,
          message: typeof o.message === "string" ? o.message.slice(0, 300) : null,
        };
      })
    : [];
  return {
    kind: "found",
    version: typeof w.version === "number" ? w.version : -1,
    replicas: typeof w.replicas === "number" ? w.replicas : 0,
    rollout: {
      state: typeof ro.state === "string" ? ro.state : "unknown",
      ...(typeof ro.to === "number" ? { to: ro.to } : {}),
      ...(typeof ro.message === "string" ? { message: ro.message.slice(0, 300) } : {}),
    },
    allocs,
  };
}

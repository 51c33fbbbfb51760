// Two-level placement, the parent's side applied: the hub below chosen from summaries, the workload sent down to it.
import type { Body } from "../../shared/protocol/index.ts";
import type { WorkloadSpec } from "../../shared/workload/index.ts";
import type { Intent, Intents } from "./intents.ts";
import { placeSubtree, type SubtreeHub, type SubtreePlan } from "./subtree-placement.ts";

/** A child's answer's HTTP status, if it is one a client can be given (a child is untrusted input). */
export function httpStatus(s: unknown): number {
  // No 204/304 and the like: they may not carry the JSON body that goes with the answer.
  return typeof s === "number" && Number.isInteger(s) && ((s >= 200 && s <= 203) || (s >= 400 && s <= 599))
    ? s
    : 502;
}

export interface TwoLevelOptions {
  intents: Intents;
  /** The hubs below as their summaries tell them, with the route to each. */
  hubs: () => SubtreeHub[];
  /** A command to a child hub and its reply (the gateway's round trip). */
  request: (
    child: string,
    kind: string,
    args: Record<string, unknown>,
    timeoutMs: number,
  ) => Promise<Body<"reply">>;
  now: () => number;
}

/** The parent holds intent (which subtree, how many); the hub it chose binds nodes and owns their failover. */
export class TwoLevelPlacer {
  readonly #o: TwoLevelOptions;

  constructor(o: TwoLevelOptions) {
    this.#o = o;
  }

  /** Every workload placed below this hub. */
  intents(): Promise<Intent[]> {
    return this.#o.intents.list();
  }

  /** Changes a stored intent as it now stands (a move's stale copy dealt with, say). */
  update(name: string, change: (current: Intent) => Intent): Promise<Intent | undefined> {
    return this.#o.intents.update(name, change);
  }

  /** The hubs below, ranked for a workload by their summaries (dry run of the parent's half). */
  plan(spec: WorkloadSpec, exclude: ReadonlySet<string> = new Set()): SubtreePlan {
    const hubs = this.#o.hubs().filter((h) => !h.route.some((r) => exclude.has(r)));
    return placeSubtree(hubs, {
      replicas: spec.replicas,
      resources: { cpu_millis: spec.resources.cpu_millis, mem_mb: spec.resources.mem_mb },
      placement: spec.placement as Record<string, unknown>,
    });
  }

  /**
   * Two-level placement: picks the hub whose domain takes the workload (this hub's explanation), sends
   * the workload down the route to it, and that hub's own engine places it onto nodes (its explanation).
   */
  async place(spec: WorkloadSpec): Promise<{ status: number; body: unknown }> {
    if (await this.#o.intents.get(spec.name))
      return {
        status: 409,
        body: { error: { code: "conflict", message: `workload ${spec.name} is already placed below` } },
      };
    const plan = this.plan(spec);
    const chosen = plan.chosen;
    if (!chosen)
      return {
        status: 409,
        body: {
          error: { code: "unplaceable", message: "no hub below can take the workload" },
          explanation: plan,
        },
      };
    const [first, ...rest] = chosen.route;
    let reply: Body<"reply">;
    try {
      reply = await this.#o.request(first!, "fed_place", { spec, route: rest }, 15_000);
    } catch (err) {
      return { status: 503, body: { error: { code: "unavailable", message: (err as Error).message } } };
    }
    if (!reply.ok)
      return { status: 503, body: { error: { code: "unavailable", message: String(reply.body) } } };
    const answer = (reply.body ?? {}) as { status?: unknown; body?: unknown };
    if (answer.status !== 201) return { status: httpStatus(answer.status), body: answer.body ?? null };
    const intent: Intent = {
      name: spec.name,
      hub: chosen.hub,
      route: chosen.route,
      replicas: spec.replicas,
      explanation: plan,
      created: this.#o.now(),
      spec,
    };
    await this.#o.intents.put(intent);
    return { status: 201, body: { ...intent, placed: answer.body } };
  }

  /** A workload placed below: this hub's intent and the holding hub's view of it (its allocations, its explanation). */
  async below(name: string): Promise<{ status: number; body: unknown } | undefined> {
    const intent = await this.#o.intents.get(name);
    if (!intent) return undefined;
    const [first, ...rest] = intent.route;
    const path = `/api/v1/workloads/${name}`;
    const started = this.#o.now();
    try {
      const reply = await this.#o.request(first!, "fed_query", { path, route: rest }, 10_000);
      const r = (reply.body ?? {}) as { status?: unknown; body?: unknown };
      if (!reply.ok) throw new Error(String(reply.body));
      // The holding hub's changes stand (an operator there acted on what they saw); the parent shows the difference.
      const placed = r.status === 200 ? (r.body as { replicas?: unknown } | null) : null;
      const drift =
        r.status === 404
          ? "removed at the holding hub"
          : placed && placed.replicas !== intent.replicas
            ? `replicas ${String(placed.replicas)} at the holding hub, ${intent.replicas} here`
            : undefined;
      return {
        status: 200,
        body: { ...intent, age_ms: this.#o.now() - started, placed: r.body, ...(drift ? { drift } : {}) },
      };
    } catch (err) {
      // Cut off: the intent stands, and the answer says the holding hub could not be asked.
      return { status: 200, body: { ...intent, placed: null, unavailable: (err as Error).message } };
    }
  }

  /**
   * A child hub is lost (silent past down_after, and witnessed: nodes of its subtree turned up below a
   * sibling): each workload placed through it whose policy says `disconnect.replace: true` is placed
   * again, into another subtree, and the intent records the move. Others wait for the child.
   */
  async replaceLost(child: string, evidence: string): Promise<string[]> {
    const moved: string[] = [];
    for (const intent of await this.#o.intents.list()) {
      if (!intent.route.includes(child) || intent.spec?.disconnect?.replace !== true) continue;
      const plan = this.plan(intent.spec, new Set([child]));
      const chosen = plan.chosen;
      if (!chosen) continue;
      const [first, ...rest] = chosen.route;
      let status: unknown;
      try {
        const reply = await this.#o.request(first!, "fed_place", { spec: intent.spec, route: rest }, 15_000);
        status = ((reply.body ?? {}) as { status?: unknown }).status;
        // 409: the hub there holds it already (a move begun before a restart of this hub).
        if (!reply.ok || (status !== 201 && status !== 409)) continue;
      } catch {
        continue;
      }
      const now = this.#o.now();
      // Recorded only if the intent still stands where this pass found it: another pass (a replica,
      // or this hub before a restart) may have moved or removed it meanwhile.
      let recorded = false;
      let holder: string | undefined;
      const after = await this.#o.intents.update(intent.name, (current) => {
        // Decided on every call: on PostgreSQL a retried transaction calls it again.
        recorded = current.hub === intent.hub && current.route.includes(child);
        holder = current.hub;
        if (!recorded) return current;
        return {
          ...current,
          hub: chosen.hub,
          route: chosen.route,
          explanation: plan,
          moves: [...(current.moves ?? []), { from: current.hub, to: chosen.hub, at: now, evidence }],
        };
      });
      if (!after || !recorded) {
        // The copy this pass made stands for nothing: removed again, unless the intent now names that
        // very hub (another pass moved it there: the copy is its).
        if (status === 201 && holder !== chosen.hub)
          await this.#o
            .request(first!, "fed_apply", { method: "DELETE", name: intent.name, route: rest }, 15_000)
            .catch(() => undefined);
        continue;
      }
      moved.push(intent.name);
    }
    return moved;
  }
}

// GET /api/v1/topology: the tree below this hub, each subtree with its health, its source and its age;
// /api/v1/topology/workloads: workloads placed into a child's domain (two-level placement).
import { Hono } from "hono";
import * as v from "valibot";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { NotFoundError, RequestError } from "../../shared/errors.ts";
import { parseWorkloadSpec, WorkloadSpec } from "../../shared/workload/index.ts";
import { describeRoute } from "../api/openapi.ts";
import type { Federation } from "./federation.ts";

/** Routes for the tree of hubs (behind the API's bearer check). */
export function topologyApi(federation: Federation): Hono {
  const app = new Hono();
  app.get(
    "/",
    describeRoute({
      summary: "the tree of hubs below this one, each subtree with its health, source and age",
    }),
    (c) => c.json(federation.topology()),
  );
  const spec = async (req: Request) => {
    let body: unknown;
    try {
      body = await req.json();
    } catch {
      throw new RequestError("body is not valid JSON", "body");
    }
    const parsed = parseWorkloadSpec(body);
    if (!parsed.ok) throw new RequestError(`${parsed.field}: ${parsed.message}`, parsed.field);
    return parsed.spec;
  };
  // Dry run: the hubs below ranked for this workload, with what removed the others.
  app.post(
    "/plan",
    describeRoute({
      summary: "dry run: the hubs below ranked for a workload, with what removed the others",
      body: WorkloadSpec,
    }),
    async (c) => c.json(federation.placer.plan(await spec(c.req.raw))),
  );
  app.post(
    "/workloads",
    describeRoute({
      summary: "place a workload into a child hub's domain; that hub binds the nodes",
      body: WorkloadSpec,
      status: 201,
    }),
    async (c) => {
      const r = await federation.placer.place(await spec(c.req.raw));
      return c.json(r.body as object, r.status as ContentfulStatusCode);
    },
  );
  app.get(
    "/workloads",
    describeRoute({ summary: "workloads placed into child hubs' domains, with their intent" }),
    async (c) => c.json({ workloads: await federation.placer.intents() }),
  );
  app.get(
    "/workloads/:name",
    describeRoute({ summary: "a workload placed below, as the hub that holds it reports it" }),
    async (c) => {
      const r = await federation.placer.below(c.req.param("name"));
      if (!r) throw new NotFoundError(`no workload ${c.req.param("name")} placed below this hub`);
      return c.json(r.body as object, r.status as ContentfulStatusCode);
    },
  );
  app.get(
    "/reconcile",
    describeRoute({
      summary:
        "what the reconciles on child hubs' return found: per workload, what each side changed and which won",
    }),
    (c) => c.json({ reconciled: federation.reconciled() }),
  );
  // Staged rollout across child domains: the first hub listed is the canary.
  app.post(
    "/rollouts",
    describeRoute({
      summary:
        "roll a workload out across child domains: a canary hub first, then the others max_parallel at a time; a failure reverts",
      body: StagedRolloutBody,
      status: 202,
      errors: [409],
    }),
    async (c) => {
      let body: unknown;
      try {
        body = await c.req.json();
      } catch {
        throw new RequestError("body is not valid JSON", "body");
      }
      const req = parseRolloutBody(body, (s) => federation.placer.plan(s).candidates.map((x) => x.hub));
      const r = await federation.rollouts.start(req);
      return c.json(r, 202);
    },
  );
  app.get(
    "/rollouts",
    describeRoute({ summary: "staged rollouts across child domains, each with its domains' phases" }),
    async (c) => c.json({ rollouts: await federation.rollouts.list() }),
  );
  app.get(
    "/rollouts/:name",
    describeRoute({ summary: "one staged rollout: its domains' phases and what happened" }),
    async (c) => {
      const r = await federation.rollouts.get(c.req.param("name"));
      if (!r) throw new NotFoundError(`no staged rollout of ${c.req.param("name")}`);
      return c.json(r);
    },
  );
  return app;
}

/** The body of POST /api/v1/topology/rollouts. */
export const StagedRolloutBody = v.object({
  spec: WorkloadSpec,
  /** Child domains (hub ids below this one), the canary first; default: every hub the plan ranks. */
  hubs: v.optional(v.array(v.string())),
  max_parallel: v.optional(v.number(), 1),
  deadline_ms: v.optional(v.number(), 120_000),
});

/** Checks a staged rollout's body; the error names the field. */
export function parseRolloutBody(
  body: unknown,
  ranked: (spec: WorkloadSpec) => string[],
): { spec: WorkloadSpec; hubs: string[]; max_parallel: number; deadline_ms: number } {
  if (!body || typeof body !== "object" || Array.isArray(body))
    throw new RequestError("body must be an object", "body");
  const b = body as Record<string, unknown>;
  const parsed = parseWorkloadSpec(b.spec);
  if (!parsed.ok) throw new RequestError(`spec.${parsed.field}: ${parsed.message}`, `spec.${parsed.field}`);
  const spec = parsed.spec;
  let hubs: string[];
  if (b.hubs === undefined) hubs = ranked(spec);
  else {
    if (!Array.isArray(b.hubs) || b.hubs.length > 64 || !b.hubs.every((h) => typeof h === "string"))
      throw new RequestError("hubs must be a list of at most 64 hub ids", "hubs");
    hubs = b.hubs as string[];
    if (new Set(hubs).size !== hubs.length) throw new RequestError("hubs must not repeat a hub", "hubs");
  }
  if (hubs.length === 0) throw new RequestError("hubs: no hub below can take the workload", "hubs");
  const int = (field: string, dflt: number, min: number, max: number) => {
    const x = b[field] ?? dflt;
    if (typeof x !== "number" || !Number.isInteger(x) || x < min || x > max)
      throw new RequestError(`${field} must be an integer from ${min} to ${max}`, field);
    return x;
  };
  return {
    spec,
    hubs,
    max_parallel: int("max_parallel", 1, 1, 64),
    deadline_ms: int("deadline_ms", 120_000, 1000, 86_400_000),
  };
}

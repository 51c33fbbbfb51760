// /api/v1/fleet: the overview the dashboard draws, aggregated here so 10,000 nodes cost the browser one small reply.
import { Hono } from "hono";
import * as v from "valibot";
import { RequestError } from "../../shared/errors.ts";
import { type FleetNode, fleetTree, type NodeFilter, pageNodes } from "../fleet/index.ts";
import { describeRoute } from "./openapi.ts";

const Q = v.optional(v.string());

function intQuery(
  value: string | undefined,
  name: string,
  min: number,
  max: number,
  fallback: number,
): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new RequestError(`query parameter ${name} must be a whole number from ${min} to ${max}`, name);
  return n;
}

/** Routes under /api/v1/fleet (mounted behind the API's authentication). */
export function fleetApi(nodes: () => FleetNode[]): Hono {
  const app = new Hono();
  // The tier → region → site tree with counts by health.
  app.get(
    "/",
    describeRoute({ summary: "the fleet as a tier, region and site tree with counts by health" }),
    (c) => c.json(fleetTree(nodes())),
  );
  // ?tier=&region=&site=&health=&q=&offset=0&limit=100: one page, worst health first.
  app.get(
    "/nodes",
    describeRoute({
      summary: "one page of nodes, worst health first, filtered by tier, region, site, health or text",
      query: v.object({ tier: Q, region: Q, site: Q, health: Q, q: Q, offset: Q, limit: Q }),
    }),
    (c) => {
      const q = (k: string) => c.req.query(k) || undefined;
      const filter: NodeFilter = {};
      if (q("tier") !== undefined) filter.tier = intQuery(q("tier"), "tier", 0, 100, 0);
      for (const k of ["region", "site", "health", "q"] as const) {
        const v = q(k);
        if (v !== undefined) filter[k] = v;
      }
      const offset = intQuery(q("offset"), "offset", 0, 10_000_000, 0);
      const limit = intQuery(q("limit"), "limit", 1, 1000, 100);
      return c.json(pageNodes(nodes(), filter, offset, limit));
    },
  );
  return app;
}

// /api/v1/placement: a dry run that answers where workloads would go, and why the other nodes would not.
import { Hono } from "hono";
import * as v from "valibot";
import { RequestError } from "../../shared/errors.ts";
import {
  type FleetIndex,
  PlacementRequestSchema,
  type FleetState,
  indexFleet,
  place,
  placeBatch,
  type ValidationContext,
  validatePlacementRequest,
  validationContext,
} from "../placement/index.ts";
import { jsonBody } from "./json-body.ts";
import { describeRoute } from "./openapi.ts";

/**
 * What placement requests are checked against: known probe targets and workloads. Not node ids:
 * a workload may be pinned to a node that has not joined yet (it waits, pending).
 */
export function placementContext(fleet: FleetIndex, workloads: Iterable<string>): ValidationContext {
  const { nodes: _nodes, ...rest } = validationContext(fleet, workloads);
  return rest;
}

/** Routes for placement. */
export function placementApi(deps: {
  fleet: () => Promise<FleetState>;
  workloads: () => Promise<Iterable<string>>;
}): Hono {
  const app = new Hono();
  app.post(
    "/plan",
    describeRoute({
      summary: "dry run: where one request (or a batch) would go, and why not elsewhere",
      body: v.union([PlacementRequestSchema, v.object({ requests: v.array(PlacementRequestSchema) })]),
    }),
    async (c) => {
      const body = await jsonBody(c);
      const fleet = indexFleet(await deps.fleet());
      const ctx = placementContext(fleet, await deps.workloads());
      // Many workloads at once (a deployment, a re-placement): placed together, not one by one greedily.
      if (body !== null && typeof body === "object" && "requests" in body) {
        const list = (body as { requests: unknown }).requests;
        if (!Array.isArray(list) || list.length === 0 || list.length > 10_000) {
          throw new RequestError("requests must be a list of 1 to 10000 placement requests", "requests");
        }
        const requests = list.map((r, i) => {
          try {
            return validatePlacementRequest(r, ctx);
          } catch (err) {
            if (err instanceof RequestError)
              throw new RequestError(`requests.${i}.${err.message}`, `requests.${i}.${err.field}`);
            throw err;
          }
        });
        return c.json(placeBatch(fleet, requests));
      }
      return c.json(place(fleet, validatePlacementRequest(body, ctx)));
    },
  );
  return app;
}

// /api/v1/placement: a dry run that answers where a workload would go, and why the other nodes would not.
import { Hono } from "hono";
import { RequestError } from "../../shared/errors.ts";
import { placementContext } from "./workloads.ts";
import {
  type FleetState,
  indexFleet,
  place,
  validatePlacementRequest,
  validationContext,
} from "../placement/index.ts";

/** Routes for placement. */
export function placementApi(deps: { fleet: () => FleetState; workloads: () => Iterable<string> }): Hono {
  const app = new Hono();
  app.post("/plan", async (c) => {
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      throw new RequestError("body is not valid JSON", "body");
    }
    const fleet = indexFleet(deps.fleet());
    const request = validatePlacementRequest(body, placementContext(fleet, deps.workloads()));
    return c.json(place(fleet, request));
  });
  return app;
}

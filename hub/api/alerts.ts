// /api/v1/alerts: alerts raised and cleared on nodes, newest first.
import { Hono } from "hono";
import { RequestError } from "../../shared/errors.ts";
import type { EventStore } from "../events/index.ts";

/** Routes for alerts. */
export function alertsApi(deps: { events: EventStore }): Hono {
  const app = new Hono();
  app.get("/", (c) => {
    const limit = Number(c.req.query("limit") ?? 500);
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
      throw new RequestError("query parameter limit must be an integer from 1 to 10000", "limit");
    }
    const node = c.req.query("node");
    return c.json({ alerts: deps.events.alerts({ limit, ...(node ? { node } : {}) }) });
  });
  return app;
}

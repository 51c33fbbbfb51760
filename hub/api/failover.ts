// `/api/v1/failover`: node liveness as the heartbeat monitor wrote it, and the failover log (why things moved).
import { Hono } from "hono";
import * as v from "valibot";
import { NotFoundError, RequestError } from "../../shared/errors.ts";
import type { Failover } from "../failover/index.ts";
import { jsonBody, parseWith } from "./json-body.ts";
import { describeRoute } from "./openapi.ts";

const EventsQuery = v.object({
  node: v.optional(v.string()),
  workload: v.optional(v.string()),
  limit: v.optional(v.string()),
});
const ms7d = "must be a whole number of ms from 0 to 7 days";
const upTo1000 = "must be a whole number from 1 to 1000";
const DrainBody = v.object(
  {
    deadline_ms: v.optional(
      v.pipe(v.number(ms7d), v.integer(ms7d), v.minValue(0, ms7d), v.maxValue(7 * 86_400_000, ms7d)),
    ),
    max_parallel: v.optional(
      v.pipe(v.number(upTo1000), v.integer(upTo1000), v.minValue(1, upTo1000), v.maxValue(1000, upTo1000)),
    ),
  },
  "must be a JSON object",
);
const MoveBody = v.object({ to: v.optional(v.string("must be a node id")) }, "must be a JSON object");

/** Routes under /api/v1/failover (the caller mounts them behind the admin check). */
export function failoverApi(failover: Failover): Hono {
  const app = new Hono();
  // ?node=ID, ?workload=NAME, ?limit=N (default 200): newest first.
  app.get(
    "/events",
    describeRoute({ summary: "the failover log, newest first", query: EventsQuery }),
    async (c) => {
      const node = c.req.query("node");
      const workload = c.req.query("workload");
      const limit = Number(c.req.query("limit") ?? 200);
      return c.json({
        events: await failover.events({
          ...(node ? { node } : {}),
          ...(workload ? { workload } : {}),
          limit: Number.isFinite(limit) ? limit : 200,
        }),
      });
    },
  );
  app.get("/nodes", describeRoute({ summary: "node liveness as the heartbeat monitor wrote it" }), (c) => {
    const nodes = [...failover.monitor.all()].map(([id, l]) => ({
      id,
      health: l.health,
      since: l.since,
      reason: l.reason,
      evidence: l.evidence,
    }));
    return c.json({ nodes: nodes.sort((a, b) => a.id.localeCompare(b.id)) });
  });
  // Drains in progress or done, with the moves in flight.
  app.get("/drains", describeRoute({ summary: "drains and the moves in flight" }), async (c) =>
    c.json({ drains: await failover.drains.drains(), moves: await failover.drains.moves() }),
  );
  return app;
}

/**
 * `POST /api/v1/nodes/{id}/drain` `{"deadline_ms"?: 3600000, "max_parallel"?: 1}` and
 * `POST /api/v1/nodes/{id}/undrain` (mounted beside the other node routes).
 */
export function drainApi(failover: Failover): Hono {
  const app = new Hono();
  app.post(
    "/:id/drain",
    describeRoute({
      summary: "drain a node: move its work off, make-before-break",
      body: DrainBody,
      bodyOptional: true,
      status: 202,
    }),
    async (c) => {
      // An empty body takes the defaults.
      const empty = (c.req.header("content-length") ?? "0") === "0" && !c.req.header("content-type");
      const body = empty ? {} : await jsonBody(c);
      return c.json(await startDrain(failover, c.req.param("id"), body), 202);
    },
  );
  app.post("/:id/undrain", describeRoute({ summary: "stop draining a node" }), async (c) => {
    const id = c.req.param("id");
    if (!(await failover.undrain(id))) throw new NotFoundError(`no node ${id}`);
    return c.json({ node: id, draining: false });
  });
  return app;
}

async function startDrain(failover: Failover, id: string, body: unknown) {
  const b = parseWith(DrainBody, body);
  const d = await failover.drain(id, b.deadline_ms ?? 3_600_000, b.max_parallel ?? 1);
  if (!d) throw new NotFoundError(`no node ${id}`);
  return { drain: d };
}

/** `POST /api/v1/workloads/{name}/allocs/{id}/move` `{"to"?: node}`: one copy moved make-before-break. */
export function moveApi(failover: Failover): Hono {
  const app = new Hono();
  app.post(
    "/:name/allocs/:id/move",
    describeRoute({
      summary: "move one copy make-before-break",
      body: MoveBody,
      bodyOptional: true,
      status: 202,
    }),
    async (c) => {
      const empty = (c.req.header("content-length") ?? "0") === "0" && !c.req.header("content-type");
      const body = parseWith(MoveBody, empty ? {} : await jsonBody(c));
      const alloc = await failover.allocOf(c.req.param("name"), c.req.param("id"));
      if (!alloc)
        throw new NotFoundError(`workload ${c.req.param("name")} has no allocation ${c.req.param("id")}`);
      const r = await failover.move(alloc, "moved by an operator", body.to);
      if ("error" in r) throw new RequestError(r.error, body.to !== undefined ? "to" : "alloc");
      return c.json({ alloc, twin: r.twin, node: r.node }, 202);
    },
  );
  return app;
}

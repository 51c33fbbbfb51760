// /api/v1/nodes: the registry and each node's stored telemetry.
import { Hono } from "hono";
import { NotFoundError, RequestError } from "../../shared/errors.ts";
import type { EventStore } from "../events/index.ts";
import type { Ingest } from "../ingest/index.ts";
import type { NodeRecord, Registry } from "../registry/index.ts";
import type { WorkloadStore } from "../workloads/index.ts";
import { allocView } from "./workloads.ts";

function summary(registry: Registry, n: NodeRecord) {
  return {
    id: n.id,
    level: n.level,
    status: registry.status(n),
    connected: registry.isConnected(n.id),
    labels: n.labels,
    capabilities: n.capabilities,
    last_seen: n.last_seen,
  };
}

function parseMs(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0)
    throw new RequestError(`query parameter ${name} must be milliseconds since the epoch`, name);
  return n;
}

/** Routes for nodes. */
export function nodesApi(deps: {
  registry: Registry;
  ingest: Ingest;
  workloads: WorkloadStore;
  events: EventStore;
  /** Asks a connected node to rotate its key now; false when it is not connected. */
  askRotation?: (id: string) => boolean;
  /** Ends a node's session (its key was reset). */
  endSession?: (id: string) => void;
}): Hono {
  const { registry, ingest, workloads, events } = deps;
  const app = new Hono();
  const node = (id: string): NodeRecord => {
    const n = registry.get(id);
    if (!n) throw new NotFoundError(`no node ${id}`);
    return n;
  };
  app.get("/", (c) => c.json({ nodes: registry.list().map((n) => summary(registry, n)) }));
  // Key operations: only an operator (or the node, proving its current key) changes who speaks for a node.
  app.post("/:id/rotate-key", (c) => {
    const id = node(c.req.param("id")).id;
    registry.requestRotation(id);
    const asked = deps.askRotation?.(id) ?? false;
    return c.json({ id, rotation: asked ? "asked now" : "asked at the node's next session" }, 202);
  });
  app.post("/:id/reset-key", async (c) => {
    const id = node(c.req.param("id")).id;
    const text = await c.req.text();
    let window_s = 3600;
    if (text.trim() !== "") {
      let body: { window_s?: unknown };
      try {
        body = JSON.parse(text);
      } catch {
        throw new RequestError("body is not valid JSON", "body");
      }
      if (body.window_s !== undefined) {
        if (typeof body.window_s !== "number" || !Number.isInteger(body.window_s) || body.window_s < 1)
          throw new RequestError("window_s must be a whole number of seconds", "window_s");
        window_s = body.window_s;
      }
    }
    registry.resetKey(id, window_s * 1000);
    deps.endSession?.(id);
    return c.json({ id, key: null, rejoin_within_s: window_s });
  });
  app.get("/:id", (c) => {
    const n = node(c.req.param("id"));
    return c.json({
      ...summary(registry, n),
      resources: n.resources,
      version: n.version,
      transport: n.transport,
      first_seen: n.first_seen,
      key: registry.keyInfo(n.id),
      ingest: {
        samples: n.samples,
        rolled_up: n.rolled_up,
        batches: n.batches,
        last_seq: n.last_seq,
        duplicates: n.duplicates,
        gaps: n.gaps,
      },
    });
  });
  app.get("/:id/allocs", (c) => {
    const id = c.req.param("id");
    // A node pinned by a workload may not have joined yet: its allocations are listed all the same.
    const allocs = workloads.allocsOnNode(id).filter((a) => a.desired === "run");
    if (allocs.length === 0) node(id);
    return c.json({ allocs: allocs.map(allocView) });
  });
  app.get("/:id/decisions", (c) => {
    const id = c.req.param("id");
    node(id);
    return c.json({ decisions: events.decisions(id) });
  });
  app.get("/:id/series", (c) => {
    const id = c.req.param("id");
    node(id);
    return c.json({ series: ingest.series(id) });
  });
  app.get("/:id/metrics", (c) => {
    const id = c.req.param("id");
    node(id);
    const series = c.req.query("series");
    if (!series) throw new RequestError("query parameter series is required", "series");
    const now = Date.now();
    const to = parseMs(c.req.query("to"), "to", now);
    const from = parseMs(c.req.query("from"), "from", to - 3_600_000);
    if (from > to) throw new RequestError("from must not be after to", "from");
    const { points, rollups } = ingest.query(id, series, from, to);
    // Minutes the agent had to downsample: the average is among the points, the rest is here.
    return c.json(rollups.length > 0 ? { series, points, rollups } : { series, points });
  });
  return app;
}

// /api/v1/nodes: the registry and each node's stored telemetry.
import { type Context, Hono, type Next } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import * as v from "valibot";
import { NotFoundError, RequestError } from "../../shared/errors.ts";
import type { EventStore } from "../events/index.ts";
import type { Ingest } from "../ingest/index.ts";
import type { NodeRecord, Registry } from "../registry/index.ts";
import type { WorkloadStore } from "../workloads/index.ts";
import { parseWith } from "./json-body.ts";
import { describeRoute } from "./openapi.ts";
import { allocView } from "./workloads.ts";

const ResetKey = v.object({
  window_s: v.optional(
    v.pipe(
      v.number(),
      v.integer("must be a whole number of seconds"),
      v.minValue(1, "must be a whole number of seconds"),
    ),
  ),
});

const MetricsQuery = v.object({
  series: v.string(),
  from: v.optional(v.string()),
  to: v.optional(v.string()),
});

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

/** Nodes this hub does not hold but a hub below it does. */
export interface RemoteNodes {
  owns(id: string): boolean;
  forward(id: string, path: string): Promise<{ status: number; body: unknown } | undefined>;
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
  /** Nodes below child hubs (federation): reads of them are answered by the hub that owns them. */
  remote?: RemoteNodes;
}): Hono {
  const { registry, ingest, workloads, events } = deps;
  const app = new Hono();
  // A node another hub replica admitted moments ago may not be in this one's rows yet: read it fresh.
  const node = async (id: string): Promise<NodeRecord> => {
    const n = registry.get(id) ?? (await registry.fresh(id));
    if (!n) throw new NotFoundError(`no node ${id}`);
    return n;
  };
  app.get("/", describeRoute({ summary: "every node with its status" }), (c) =>
    c.json({ nodes: registry.list().map((n) => summary(registry, n)) }),
  );
  // A node below a child hub: the same read, answered by the hub that owns it (forwarded down the tree).
  const forwarded = async (c: Context, next: Next) => {
    if (c.req.method !== "GET") return next();
    const id = c.req.param("id") ?? "";
    if (!deps.remote || registry.get(id) || !deps.remote.owns(id)) return next();
    const url = new URL(c.req.url);
    const answer = await deps.remote.forward(id, url.pathname + url.search);
    if (!answer) return next();
    return c.json(answer.body as object, answer.status as ContentfulStatusCode);
  };
  for (const path of ["/:id", "/:id/series", "/:id/metrics"]) app.use(path, forwarded);
  // Key operations: only an operator (or the node, proving its current key) changes who speaks for a node.
  app.post(
    "/:id/rotate-key",
    describeRoute({ summary: "ask a node to rotate its key", status: 202 }),
    async (c) => {
      const id = (await node(c.req.param("id"))).id;
      await registry.requestRotation(id);
      const asked = deps.askRotation?.(id) ?? false;
      return c.json({ id, rotation: asked ? "asked now" : "asked at the node's next session" }, 202);
    },
  );
  app.post(
    "/:id/reset-key",
    describeRoute({
      summary: "forget a node's key (admin): it may rejoin with a join token within window_s",
      body: ResetKey,
      bodyOptional: true,
    }),
    async (c) => {
      const id = (await node(c.req.param("id"))).id;
      const text = await c.req.text();
      let window_s = 3600;
      if (text.trim() !== "") {
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          throw new RequestError("body is not valid JSON", "body");
        }
        window_s = parseWith(ResetKey, body).window_s ?? window_s;
      }
      await registry.resetKey(id, window_s * 1000);
      deps.endSession?.(id);
      return c.json({ id, key: null, rejoin_within_s: window_s });
    },
  );
  app.get(
    "/:id",
    describeRoute({ summary: "one node: resources, key, ingest counters, epochs" }),
    async (c) => {
      // Read from the store: its ingest counters as committed now.
      const n = (await registry.fresh(c.req.param("id"))) ?? (await node(c.req.param("id")));
      return c.json({
        ...summary(registry, n),
        kind: n.kind,
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
          duplicate_samples: n.duplicate_samples,
          gaps: n.gaps,
        },
        ...(await sampleAccounts(registry, n)),
      });
    },
  );
  app.get("/:id/allocs", describeRoute({ summary: "the allocations a node should run" }), async (c) => {
    const id = c.req.param("id");
    // A node pinned by a workload may not have joined yet: its allocations are listed all the same.
    const allocs = (await workloads.allocsOnNode(id)).filter((a) => a.desired === "run");
    if (allocs.length === 0) await node(id);
    return c.json({ allocs: allocs.map(allocView) });
  });
  app.get(
    "/:id/decisions",
    describeRoute({ summary: "a node's offline decisions with the hub's verdicts" }),
    async (c) => {
      const id = c.req.param("id");
      await node(id);
      return c.json({ decisions: await events.decisions(id) });
    },
  );
  app.get("/:id/series", describeRoute({ summary: "names of the series a node has sent" }), async (c) => {
    const id = c.req.param("id");
    await node(id);
    return c.json({ series: await ingest.series(id) });
  });
  app.get(
    "/:id/metrics",
    describeRoute({ summary: "points of one series in a time range", query: MetricsQuery }),
    async (c) => {
      const id = c.req.param("id");
      await node(id);
      const series = c.req.query("series");
      if (!series) throw new RequestError("query parameter series is required", "series");
      const now = Date.now();
      const to = parseMs(c.req.query("to"), "to", now);
      const from = parseMs(c.req.query("from"), "from", to - 3_600_000);
      if (from > to) throw new RequestError("from must not be after to", "from");
      const { points, rollups } = await ingest.query(id, series, from, to);
      // Minutes the agent had to downsample: the average is among the points, the rest is here.
      return c.json(rollups.length > 0 ? { series, points, rollups } : { series, points });
    },
  );
  return app;
}

/**
 * The node's own counters (reported now and then in heartbeats) beside what the hub stored, and its
 * store epochs. `lost`: samples the node counted as produced that were neither dropped, stored nor
 * held at its last report (a restored store's original went on producing, say); it lags the node by
 * up to one report, so it is exact once the node has been quiet for one.
 */
async function sampleAccounts(registry: Registry, n: NodeRecord) {
  const epochs = await registry.epochs.list(n.id);
  const c = await registry.epochs.counters(n.id);
  return {
    counters: c ? { ...c, lost: Math.max(0, c.produced - c.dropped - n.samples - c.held) } : null,
    epochs,
  };
}

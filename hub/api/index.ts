// The hub's HTTP surface: health, Prometheus metrics, and the authenticated /api/v1.
import { Hono } from "hono";
import { NotFoundError, NovaError, RequestError } from "../../shared/errors.ts";
import type { MetricsRegistry } from "../../shared/metrics.ts";
import type { CacheDistributor } from "../cache/index.ts";
import type { EventStore } from "../events/index.ts";
import type { Gateway } from "../gateway/index.ts";
import type { Ingest } from "../ingest/index.ts";
import type { FleetState } from "../placement/index.ts";
import type { Registry } from "../registry/index.ts";
import type { WorkloadController, WorkloadStore } from "../workloads/index.ts";
import { alertsApi } from "./alerts.ts";
import { requireAdmin } from "./auth.ts";
import { cacheApi } from "./cache.ts";
import { joinTokensApi } from "./join-tokens.ts";
import { nodesApi } from "./nodes.ts";
import { placementApi } from "./placement.ts";
import { workloadsApi } from "./workloads.ts";

export interface ApiDeps {
  registry: Registry;
  ingest: Ingest;
  metrics: MetricsRegistry;
  adminToken: () => string;
  workloads: WorkloadStore;
  gateway: Gateway;
  events: EventStore;
  cache: CacheDistributor;
  fleet: () => FleetState;
  controller: WorkloadController;
  /** The hub's public key (base64url) that agents pin. */
  hubKey: string;
  hubId: string;
}

const promName = (series: string) => `novacron_node_${series.replace(/[^a-zA-Z0-9_]/g, "_")}`;

// One scrape of the hub covers the fleet: the newest value of every node's series, labelled by node.
function fleetMetrics(ingest: Ingest): string {
  let out = "";
  for (const [node, series] of ingest.latest()) {
    for (const [name, [, value]] of series) {
      const m = /^([^{]+)(?:\{(.*)\})?$/.exec(name);
      const extra = m?.[2] ? `,${m[2]}` : "";
      out += `${promName(m?.[1] ?? name)}{node="${node}"${extra}} ${value}\n`;
    }
  }
  return out;
}

/** Builds the Hono app (tests call app.request() on it directly). */
export function createApi(deps: ApiDeps): Hono {
  const app = new Hono();
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/", (c) =>
    c.json({
      name: "novacron-hub",
      endpoints: {
        health: "/healthz",
        metrics: "/metrics",
        nodes: "/api/v1/nodes (Authorization: Bearer <admin token>)",
        agents: "/v1/agent (WebSocket)",
      },
    }),
  );
  app.get("/metrics", (c) =>
    c.text(deps.metrics.render() + fleetMetrics(deps.ingest), 200, {
      "content-type": "text/plain; version=0.0.4",
    }),
  );
  app.use("/api/v1/*", requireAdmin(deps.adminToken));
  app.get("/api/v1/hub", (c) => c.json({ hub_id: deps.hubId, public_key: deps.hubKey }));
  app.route(
    "/api/v1/nodes",
    nodesApi({
      ...deps,
      askRotation: (id) =>
        deps.gateway.sendTo(id, "command", { id: `rotate:${Date.now()}`, kind: "rotate_key", args: {} }),
      endSession: (id) => deps.gateway.endSession(id, "the node's key was reset by an operator"),
    }),
  );
  app.route("/api/v1/join-tokens", joinTokensApi(deps));
  app.route("/api/v1/alerts", alertsApi(deps));
  app.route("/api/v1/cache", cacheApi(deps));
  app.route(
    "/api/v1/workloads",
    workloadsApi({
      store: deps.workloads,
      controller: deps.controller,
      gateway: deps.gateway,
      fleet: deps.fleet,
    }),
  );
  app.route(
    "/api/v1/placement",
    placementApi({ fleet: deps.fleet, workloads: () => deps.workloads.list().map((w) => w.name) }),
  );
  app.notFound((c) =>
    c.json({ error: { code: "not_found", message: `no route ${c.req.method} ${c.req.path}` } }, 404),
  );
  // The one place errors become HTTP responses.
  app.onError((err, c) => {
    if (err instanceof RequestError) {
      return c.json({ error: { code: err.code, message: err.message, field: err.field } }, 400);
    }
    if (err instanceof NotFoundError) return c.json({ error: { code: err.code, message: err.message } }, 404);
    if (err instanceof NovaError) return c.json({ error: { code: err.code, message: err.message } }, 400);
    return c.json({ error: { code: "internal", message: "internal error" } }, 500);
  });
  return app;
}

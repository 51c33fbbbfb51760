// The hub's HTTP surface: health, Prometheus metrics, and the authenticated /api/v1.
import { Hono } from "hono";
import { NovaError, RequestError } from "../../shared/errors.ts";
import type { MetricsRegistry } from "../../shared/metrics.ts";
import type { Ingest } from "../ingest/index.ts";
import type { Registry } from "../registry/index.ts";
import { requireAdmin } from "./auth.ts";
import { nodesApi } from "./nodes.ts";

export interface ApiDeps {
  registry: Registry;
  ingest: Ingest;
  metrics: MetricsRegistry;
  adminToken: () => string;
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
    c.text(deps.metrics.render(), 200, { "content-type": "text/plain; version=0.0.4" }),
  );
  app.use("/api/v1/*", requireAdmin(deps.adminToken));
  app.route("/api/v1/nodes", nodesApi(deps));
  app.notFound((c) =>
    c.json({ error: { code: "not_found", message: `no route ${c.req.method} ${c.req.path}` } }, 404),
  );
  // The one place errors become HTTP responses.
  app.onError((err, c) => {
    if (err instanceof RequestError) {
      return c.json({ error: { code: err.code, message: err.message, field: err.field } }, 400);
    }
    if (err instanceof NovaError) return c.json({ error: { code: err.code, message: err.message } }, 400);
    return c.json({ error: { code: "internal", message: "internal error" } }, 500);
  });
  return app;
}

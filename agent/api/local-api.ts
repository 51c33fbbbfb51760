// The agent's local HTTP API: health, Prometheus metrics and status for operators on the host.
import { Hono } from "hono";
import { DiskFullError, NotFoundError, RequestError, UnavailableError } from "../../shared/errors.ts";
import type { MetricsRegistry } from "../../shared/metrics.ts";
import { type CacheRouteDeps, cacheRoutes } from "./cache-routes.ts";
import { type DataDeps, dataRoutes } from "./data-routes.ts";

export interface AgentStatus {
  node_id: string;
  connected: boolean;
  hub: string | null;
  outbox: { pending: number; oldest_ms: number | null; bytes: number };
  samples: {
    produced: number;
    /** Every reason together: produced - dropped is what reaches the hub. */
    dropped: number;
    dropped_by: { budget: number; disk: number; invalid: number; folded: number };
    downsampled: number;
    staged_ticks: number;
    /** Of `dropped`: points folded into a later one of the same series and millisecond. */
    folded?: number;
    /** Pushed points (at their own times) not yet packed into a batch. */
    staged_points?: number;
  };
  [extra: string]: unknown;
}

/** Builds the local API app; `status` is read on every request. */
export function createLocalApi(
  deps: {
    metrics: MetricsRegistry;
    status: () => AgentStatus;
    tasks: () => { alloc: string; workload: string; status: string; pid: number | null; restarts: number }[];
    logs: (alloc: string, lines: number) => string | undefined;
    decisions: (limit: number) => unknown[];
  } & DataDeps &
    CacheRouteDeps,
): Hono {
  const app = new Hono();
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/metrics", (c) =>
    c.text(deps.metrics.render(), 200, { "content-type": "text/plain; version=0.0.4" }),
  );
  app.get("/v1/status", (c) => c.json(deps.status()));
  app.get("/v1/tasks", (c) => c.json({ tasks: deps.tasks() }));
  app.route("/v1", dataRoutes(deps));
  app.route("/v1", cacheRoutes(deps));
  app.get("/v1/decisions", (c) => {
    const limit = Number(c.req.query("limit") ?? 100);
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
      return c.json(
        {
          error: { code: "bad_request", message: "limit must be an integer from 1 to 10000", field: "limit" },
        },
        400,
      );
    }
    return c.json({ decisions: deps.decisions(limit) });
  });
  app.get("/v1/tasks/:alloc/logs", (c) => {
    const lines = Number(c.req.query("lines") ?? 200);
    if (!Number.isInteger(lines) || lines < 1 || lines > 10_000) {
      return c.json(
        {
          error: { code: "bad_request", message: "lines must be an integer from 1 to 10000", field: "lines" },
        },
        400,
      );
    }
    const logs = deps.logs(c.req.param("alloc"), lines);
    if (logs === undefined)
      return c.json({ error: { code: "not_found", message: `no task ${c.req.param("alloc")}` } }, 404);
    return c.text(logs);
  });
  app.notFound((c) =>
    c.json({ error: { code: "not_found", message: `no route ${c.req.method} ${c.req.path}` } }, 404),
  );
  // The one place errors become HTTP responses: bad input names its field, nothing else leaks.
  app.onError((err, c) => {
    if (err instanceof RequestError)
      return c.json({ error: { code: err.code, message: err.message, field: err.field } }, 400);
    if (err instanceof NotFoundError) return c.json({ error: { code: err.code, message: err.message } }, 404);
    if (err instanceof DiskFullError) return c.json({ error: { code: err.code, message: err.message } }, 507);
    if (err instanceof UnavailableError)
      return c.json(
        { error: { code: err.code, message: err.message } },
        err.code === "not_confirmed" ? 504 : 503,
      );
    return c.json({ error: { code: "internal", message: "internal error" } }, 500);
  });
  return app;
}

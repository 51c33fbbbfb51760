// The agent's local HTTP API: health, Prometheus metrics and status for operators on the host.
import { Hono } from "hono";
import { RequestError } from "../../shared/errors.ts";
import type { MetricsRegistry } from "../../shared/metrics.ts";
import { type DataDeps, dataRoutes } from "./data-routes.ts";

export interface AgentStatus {
  node_id: string;
  connected: boolean;
  hub: string | null;
  outbox: { pending: number; oldest_ms: number | null; bytes: number };
  samples: { produced: number; dropped: number; downsampled: number; staged_ticks: number };
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
  } & DataDeps,
): Hono {
  const app = new Hono();
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/metrics", (c) =>
    c.text(deps.metrics.render(), 200, { "content-type": "text/plain; version=0.0.4" }),
  );
  app.get("/v1/status", (c) => c.json(deps.status()));
  app.get("/v1/tasks", (c) => c.json({ tasks: deps.tasks() }));
  app.route("/v1", dataRoutes(deps));
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
    return c.json({ error: { code: "internal", message: "internal error" } }, 500);
  });
  return app;
}

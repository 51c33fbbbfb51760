// Every route of a hub app as tests call them: the app's own route table, parameters filled in.
import type { Hono } from "hono";
import { servedRoutes } from "../../hub/api/openapi.ts";
import { READ_METHODS } from "../../hub/auth/index.ts";

/** A route with sample path parameters: `/api/v1/nodes/{id}/drain` → `/api/v1/nodes/x1/drain`. */
export interface CallableRoute {
  method: string;
  /** OpenAPI form, for messages. */
  route: string;
  url: string;
}

/** The routes of the app that may change something (every method but GET, HEAD, OPTIONS), under /api/v1. */
export function mutatingRoutes(app: Hono): CallableRoute[] {
  return servedRoutes(app)
    .filter((r) => !READ_METHODS.has(r.method) && r.path.startsWith("/api/v1/"))
    .map((r) => ({ method: r.method, route: r.path, url: r.path.replace(/\{[^}]+\}/g, "x1") }));
}

/** Sends a JSON request with a bearer token through app.request(). */
export function call(app: Hono, token: string, method: string, url: string, body: unknown = {}) {
  return app.request(url, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    ...(method === "GET" || method === "HEAD" ? {} : { body: JSON.stringify(body) }),
  });
}

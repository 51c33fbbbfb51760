// Bearer-token authentication for the operator API.
import type { MiddlewareHandler } from "hono";
import { secretsEqual } from "../registry/index.ts";

/** Requires `Authorization: Bearer <admin token>`; answers 401 with a JSON error otherwise. */
export function requireAdmin(token: () => string): MiddlewareHandler {
  return async (c, next) => {
    const header = c.req.header("authorization") ?? "";
    const m = /^Bearer\s+(.+)$/i.exec(header);
    if (!m || !secretsEqual(m[1]!.trim(), token())) {
      return c.json({ error: { code: "unauthorized", message: "missing or wrong bearer token" } }, 401);
    }
    await next();
  };
}

// One audit entry for every change through the API: a middleware, so routes added later are recorded too.
import type { Context, Hono, MiddlewareHandler } from "hono";
import { type AuditLog, READ_METHODS, stateDigest } from "../auth/index.ts";
import { callerOf, internalRequest, isInternal } from "./authorize.ts";

const PREFIX = "/api/v1/";

/** The route pattern that answered (`/api/v1/workloads/:name`), or the path when none did. */
function routePattern(c: Context): string {
  const routes = c.req.matchedRoutes.filter((r) => r.method !== "ALL");
  // `/cache/:key{.+}` reads `/cache/:key`: the parameter's pattern is not part of its name.
  return (routes.at(-1)?.path ?? c.req.path).replace(/(:[A-Za-z0-9_]+)\{[^}]*\}/g, "$1");
}

/**
 * The JSON state of what a path changes: GET of the path itself, else of its parents down to the
 * collection (`nodes/n1/drain` → `nodes/n1`). Undefined when no GET answers 200 with JSON.
 */
async function stateOf(
  app: Hono,
  origin: string,
  method: string,
  path: string,
): Promise<{ path: string; text: string } | undefined> {
  const parts = path.slice(PREFIX.length).split("/").filter(Boolean);
  // A POST to a collection makes a new object (read after it, by its id): the whole list is not read.
  const least = method === "POST" ? 2 : 1;
  for (let n = parts.length; n >= least; n--) {
    const p = `${PREFIX}${parts.slice(0, n).join("/")}`;
    const text = await jsonAt(app, origin, p);
    if (text !== undefined) return { path: p, text };
  }
  return undefined;
}

async function jsonAt(app: Hono, origin: string, path: string): Promise<string | undefined> {
  const res = await app.fetch(internalRequest(`${origin}${path}`));
  if (res.status !== 200 || !(res.headers.get("content-type") ?? "").includes("application/json")) {
    await res.body?.cancel();
    return undefined;
  }
  return res.text();
}

/**
 * Records each authorized request that may change something (any method but GET/HEAD/OPTIONS):
 * who, the method and route, the object, SHA-256 digests of its state before and after, the status.
 */
export function auditTrail(app: Hono, log: AuditLog): MiddlewareHandler {
  return async (c, next) => {
    const caller = callerOf(c);
    if (READ_METHODS.has(c.req.method) || isInternal(c) || !caller || !c.req.path.startsWith(PREFIX)) {
      return next();
    }
    const origin = new URL(c.req.url).origin;
    const path = c.req.path;
    const before = await stateOf(app, origin, c.req.method, path);
    await next();
    const status = c.res.status;
    let object = path.slice(PREFIX.length);
    let beforeDigest = stateDigest(before?.text);
    let afterText: string | undefined;
    const created = status === 201 && c.req.method === "POST" ? await createdKey(c) : undefined;
    if (created !== undefined) {
      // A new object under a collection: it had no state before.
      object = `${object}/${created}`;
      beforeDigest = null;
      afterText = (await jsonAt(app, origin, `${PREFIX}${object}`)) ?? (await c.res.clone().text());
    } else if (before) {
      afterText = await jsonAt(app, origin, before.path);
    } else {
      afterText = status < 400 ? await c.res.clone().text() : undefined;
    }
    await log.append({
      actor: caller.actor,
      action: `${c.req.method} ${routePattern(c)}`,
      object,
      before: beforeDigest,
      after: stateDigest(afterText),
      status,
    });
  };
}

// The name or id of what a 201 made, from its JSON body.
async function createdKey(c: Context): Promise<string | undefined> {
  try {
    const body = (await c.res.clone().json()) as Record<string, unknown>;
    const key = body.id ?? body.name ?? body.key;
    return typeof key === "string" && key !== "" ? key : undefined;
  } catch {
    return undefined;
  }
}

// Who is calling and may they: one middleware in front of every /api/v1 route (and /metrics when it needs a token).
import type { Context, MiddlewareHandler } from "hono";
import { type AuditLog, type OperatorTokens, type Role, requiredRole, roleAllows } from "../auth/index.ts";
import { secretsEqual } from "../registry/index.ts";

/** The authenticated caller of a request. */
export interface Caller {
  /** `bootstrap`, `token:<name>`, or `hub` for the hub's own requests. */
  actor: string;
  role: Role;
  /** The operator token's id (absent for the bootstrap token). */
  tokenId?: string;
}

const callers = new WeakMap<Request, Caller>();
const internal = new WeakSet<Request>();

/** The caller of a request that passed `authorize`. */
export const callerOf = (c: Context): Caller | undefined => callers.get(c.req.raw);

/** A request the hub sends itself (the audit trail reading an object's state); it passes as admin, unrecorded. */
export function internalRequest(url: string): Request {
  const req = new Request(url);
  internal.add(req);
  return req;
}

/** True for a request made by `internalRequest`. */
export const isInternal = (c: Context) => internal.has(c.req.raw);

const refuse = (c: Context, status: 401 | 403, code: string, message: string) =>
  c.json({ error: { code, message } }, status);

/** Who a bearer header names, or why not. */
export async function identify(
  header: string | undefined,
  o: { adminToken: () => string; tokens: OperatorTokens },
): Promise<Caller | { refused: string }> {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? "");
  if (!m) return { refused: "missing bearer token (Authorization: Bearer <token>)" };
  const presented = m[1]!.trim();
  if (secretsEqual(presented, o.adminToken())) return { actor: "bootstrap", role: "admin" };
  const t = await o.tokens.check(presented);
  if ("refused" in t) return { refused: t.refused };
  return { actor: `token:${t.name}`, role: t.role, tokenId: t.id };
}

/**
 * Authenticates the bearer token, then checks its role against the least role of the method and path
 * (`requiredRole`): 401 without a good token, 403 with too low a role (recorded in the audit log).
 */
export function authorize(o: {
  adminToken: () => string;
  tokens: OperatorTokens;
  audit?: AuditLog;
}): MiddlewareHandler {
  return async (c, next) => {
    if (internal.has(c.req.raw)) {
      callers.set(c.req.raw, { actor: "hub", role: "admin" });
      return next();
    }
    const who = await identify(c.req.header("authorization"), o);
    if ("refused" in who) return refuse(c, 401, "unauthorized", who.refused);
    const needed = requiredRole(c.req.method, c.req.path);
    if (!roleAllows(who.role, needed)) {
      await o.audit?.append({
        actor: who.actor,
        action: `${c.req.method} ${c.req.path}`,
        object: c.req.path.replace(/^\/api\/v1\//, ""),
        before: null,
        after: null,
        status: 403,
        detail: `refused: needs role ${needed}`,
      });
      return refuse(
        c,
        403,
        "forbidden",
        `${c.req.method} ${c.req.path} needs role ${needed}; ${who.actor} has role ${who.role}`,
      );
    }
    callers.set(c.req.raw, who);
    await next();
  };
}

// /api/v1/tokens (admin): operator tokens with a role, shown once, stored hashed, revoked at once; /api/v1/whoami.
import { Hono } from "hono";
import * as v from "valibot";
import { parseDuration } from "../../shared/config/index.ts";
import { NotFoundError, RequestError } from "../../shared/errors.ts";
import { type OperatorTokens, ROLES } from "../auth/index.ts";
import { callerOf } from "./authorize.ts";
import { parseBody } from "./json-body.ts";
import { describeRoute } from "./openapi.ts";

const MAX_LIFETIME_MS = 366 * 86_400_000;

/** `24h`, `90m`, `7d`: a lifetime from 1 s to 366 days, in ms; undefined when it is not one. */
export function tokenLifetime(text: string): number | undefined {
  const days = /^\s*(\d+)d\s*$/.exec(text);
  const ms = days ? Number(days[1]) * 86_400_000 : parseDuration(text);
  return ms !== undefined && ms >= 1000 && ms <= MAX_LIFETIME_MS ? ms : undefined;
}

const MintToken = v.strictObject({
  name: v.pipe(
    v.string(),
    v.regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, "must be 1-64 letters, digits, '.', '_' or '-'"),
  ),
  role: v.picklist(ROLES, "must be viewer, operator or admin"),
  expires_in: v.optional(
    v.pipe(
      v.string(),
      v.check((s) => tokenLifetime(s) !== undefined, "must be a lifetime from 1s to 366d, e.g. 24h, 90m, 7d"),
    ),
  ),
});

const TokenInfo = v.object({
  id: v.string(),
  name: v.string(),
  role: v.picklist(ROLES),
  created_at: v.number(),
  expires_at: v.nullable(v.number()),
  revoked_at: v.nullable(v.number()),
  last_used_at: v.nullable(v.number()),
});

const Minted = v.object({
  id: v.string(),
  name: v.string(),
  role: v.picklist(ROLES),
  token: v.string(),
  created_at: v.number(),
  expires_at: v.nullable(v.number()),
});

/** Routes for operator tokens. */
export function tokensApi(deps: { tokens: OperatorTokens; now: () => number }): Hono {
  const app = new Hono();
  app.post(
    "/",
    describeRoute({
      summary: "mint an operator token (admin); the secret is in this answer only",
      body: MintToken,
      response: Minted,
      status: 201,
      errors: [409],
    }),
    async (c) => {
      const b = await parseBody(c, MintToken);
      const lifetime = b.expires_in === undefined ? undefined : tokenLifetime(b.expires_in);
      const t = await deps.tokens.mintUnique(
        b.name,
        b.role,
        lifetime === undefined ? null : deps.now() + lifetime,
      );
      if ("taken" in t)
        return c.json(
          {
            error: {
              code: "conflict",
              message: `an active token is already named ${b.name}; revoke it first`,
              field: "name",
            },
          },
          409,
        );
      return c.json(
        {
          id: t.id,
          name: t.name,
          role: t.role,
          token: t.token,
          created_at: t.created_at,
          expires_at: t.expires_at,
        },
        201,
      );
    },
  );
  app.get(
    "/",
    describeRoute({
      summary: "list operator tokens (never their secrets)",
      response: v.object({ tokens: v.array(TokenInfo) }),
    }),
    async (c) => c.json({ tokens: await deps.tokens.list() }),
  );
  app.delete(
    "/:id",
    describeRoute({
      summary: "revoke an operator token (admin): it is refused from the next request on",
      response: v.object({ id: v.string(), revoked_at: v.number() }),
    }),
    async (c) => {
      const id = c.req.param("id");
      const at = await deps.tokens.revoke(id);
      if (at === undefined) throw new NotFoundError(`no operator token ${id}`);
      return c.json({ id, revoked_at: at });
    },
  );
  return app;
}

/** `GET /api/v1/whoami`: the caller's actor and role. */
export function whoamiApi(): Hono {
  const app = new Hono();
  app.get(
    "/",
    describeRoute({
      summary: "who the token is and its role",
      response: v.object({ actor: v.string(), role: v.picklist(ROLES) }),
    }),
    (c) => {
      const who = callerOf(c);
      if (!who) throw new RequestError("no caller", "authorization");
      return c.json({ actor: who.actor, role: who.role });
    },
  );
  return app;
}

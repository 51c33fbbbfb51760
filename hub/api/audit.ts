// /api/v1/audit: the audit log, queryable by time, actor and object; /api/v1/audit/verify checks its chain.
import { Hono } from "hono";
import * as v from "valibot";
import type { AuditLog } from "../auth/index.ts";
import { parseWith } from "./json-body.ts";
import { describeRoute } from "./openapi.ts";

const ms = () =>
  v.optional(v.pipe(v.string(), v.regex(/^\d{1,15}$/, "must be milliseconds since the epoch")));

const AuditQuery = v.object({
  since: ms(),
  until: ms(),
  actor: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(200))),
  object: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(500))),
  limit: v.optional(
    v.pipe(
      v.string(),
      v.regex(/^\d+$/, "must be a whole number"),
      v.check((s) => Number(s) >= 1 && Number(s) <= 10_000, "must be from 1 to 10000"),
    ),
  ),
});

const Entry = v.object({
  seq: v.number(),
  at: v.number(),
  actor: v.string(),
  action: v.string(),
  object: v.string(),
  before: v.nullable(v.string()),
  after: v.nullable(v.string()),
  status: v.nullable(v.number()),
  detail: v.nullable(v.string()),
  hash: v.string(),
  prev_hash: v.string(),
});

const Verify = v.object({
  ok: v.boolean(),
  entries: v.number(),
  first_bad: v.optional(v.object({ seq: v.number(), reason: v.string() })),
});

/** Routes for the audit log. */
export function auditApi(log: AuditLog): Hono {
  const app = new Hono();
  app.get(
    "/",
    describeRoute({
      summary: "audit entries, newest first; object matches itself and what is under it",
      query: AuditQuery,
      response: v.object({ entries: v.array(Entry) }),
    }),
    async (c) => {
      const q = parseWith(AuditQuery, c.req.query());
      const num = (s: string | undefined) => (s === undefined ? undefined : Number(s));
      return c.json({
        entries: await log.query({
          ...(q.since !== undefined ? { since: num(q.since) } : {}),
          ...(q.until !== undefined ? { until: num(q.until) } : {}),
          ...(q.actor !== undefined ? { actor: q.actor } : {}),
          ...(q.object !== undefined ? { object: q.object } : {}),
          limit: num(q.limit) ?? 100,
        }),
      });
    },
  );
  app.get(
    "/verify",
    describeRoute({
      summary: "walk the hash chain: ok, or the first missing or edited entry",
      response: Verify,
    }),
    async (c) => c.json(await log.verify()),
  );
  return app;
}

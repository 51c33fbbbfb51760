// /api/v1/join-tokens: mint scoped join tokens, list them (never their secrets), revoke them.
import { Hono } from "hono";
import * as v from "valibot";
import { NotFoundError } from "../../shared/errors.ts";
import type { Registry } from "../registry/index.ts";
import { parseBody } from "./json-body.ts";
import { describeRoute } from "./openapi.ts";

const level = v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(5));
const MintBody = v.strictObject({
  /** Lifetime in seconds from now. */
  ttl_s: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
  max_uses: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
  levels: v.optional(
    v.pipe(
      v.tuple([level, level]),
      v.check((l) => l[0] <= l[1], "min must not exceed max"),
    ),
  ),
  labels: v.optional(v.record(v.string(), v.string())),
  note: v.optional(v.pipe(v.string(), v.maxLength(200))),
});

/** Routes for join tokens (admin). */
export function joinTokensApi(deps: { registry: Registry; now?: () => number }): Hono {
  const tokens = deps.registry.joinTokens;
  const now = deps.now ?? Date.now;
  const app = new Hono();
  app.get("/", describeRoute({ summary: "join tokens (never their secrets)" }), async (c) =>
    c.json({ tokens: await tokens.list(now()) }),
  );
  app.post(
    "/",
    describeRoute({ summary: "mint a join token (admin)", body: MintBody, status: 201 }),
    async (c) => {
      const b = await parseBody(c, MintBody);
      const minted = await tokens.mint(
        {
          ...(b.ttl_s ? { expires: now() + b.ttl_s * 1000 } : {}),
          ...(b.max_uses ? { max_uses: b.max_uses } : {}),
          ...(b.levels ? { levels: b.levels } : {}),
          ...(b.labels ? { labels: b.labels } : {}),
          ...(b.note ? { note: b.note } : {}),
        },
        now(),
      );
      // The secret is shown once, here; the hub keeps only a key derived from it.
      return c.json({ token: minted.token, ...minted.info }, 201);
    },
  );
  app.delete("/:id", describeRoute({ summary: "revoke a join token (admin)" }), async (c) => {
    const id = c.req.param("id");
    if (!(await tokens.revoke(id, now()))) throw new NotFoundError(`no active join token ${id}`);
    return c.json({ id, state: "revoked" });
  });
  return app;
}

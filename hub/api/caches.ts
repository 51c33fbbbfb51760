// /api/v1/caches: named caches across the fleet (figures, holders, hot keys) and their declarations pushed to nodes.
import { Hono } from "hono";
import * as v from "valibot";
import { CACHE_NAME, CacheSpec, parseCacheSpec } from "../../shared/cache/index.ts";
import { NotFoundError, RequestError } from "../../shared/errors.ts";
import { CacheTarget, type CacheReplicator, parseOrRefuse } from "../cache/index.ts";
import { jsonBody } from "./json-body.ts";
import { describeRoute } from "./openapi.ts";

/** PUT /caches/{name}: the cache's settings and, optionally, which nodes hold it. */
const CachePutBody = v.object({ ...CacheSpec.entries, target: v.optional(CacheTarget) });

function nameOf(raw: string): string {
  if (!CACHE_NAME.test(raw))
    throw new RequestError("name: a cache name is 1-64 lowercase letters, digits, '_', '.' or '-'", "name");
  return raw;
}

/** Routes for named caches. */
export function cachesApi(deps: { caches: CacheReplicator }): Hono {
  const app = new Hono();
  app.get(
    "/",
    describeRoute({ summary: "named caches across the fleet: writes, holders, replicas" }),
    async (c) => c.json({ caches: await deps.caches.list() }),
  );
  app.get(
    "/:name",
    describeRoute({ summary: "one named cache, with its hot keys across the fleet" }),
    async (c) => {
      const name = nameOf(c.req.param("name"));
      const found = (await deps.caches.list()).find((x) => x.name === name);
      if (!found) throw new NotFoundError(`no cache ${name}`);
      return c.json({ ...found, hot_keys: await deps.caches.hotKeys(name) });
    },
  );
  // Body: the cache's settings (strategy, consistency, replicate, ...) and an optional `target`.
  app.put(
    "/:name",
    describeRoute({
      summary: "declare a named cache and push it to the nodes its target names",
      body: CachePutBody,
    }),
    async (c) => {
      const name = nameOf(c.req.param("name"));
      const body = await jsonBody(c);
      if (typeof body !== "object" || body === null || Array.isArray(body))
        throw new RequestError("body: must be an object of cache settings", "body");
      const { target: rawTarget, ...settings } = body as Record<string, unknown>;
      const target = parseOrRefuse(v.optional(CacheTarget, {}), rawTarget);
      let spec: ReturnType<typeof parseCacheSpec>;
      try {
        spec = parseCacheSpec(settings, "body");
      } catch (err) {
        // Fields are named as they appear in the body: "strategy", not "body.strategy".
        if (err instanceof RequestError && err.field?.startsWith("body."))
          throw new RequestError(err.message.slice(5), err.field.slice(5));
        throw err;
      }
      const { delivered } = await deps.caches.define(name, spec, target);
      return c.json({ name, spec, target, delivered_now: delivered });
    },
  );
  app.get(
    "/:name/entries/:key{.+}",
    describeRoute({ summary: "a key of a named cache as the hub holds it, per partition" }),
    async (c) => {
      const name = nameOf(c.req.param("name"));
      const entries = await deps.caches.entry(name, c.req.param("key"));
      if (entries.length === 0) throw new NotFoundError(`no entry ${c.req.param("key")} in cache ${name}`);
      return c.json({ entries });
    },
  );
  return app;
}

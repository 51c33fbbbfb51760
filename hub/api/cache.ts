// /api/v1/cache: reference data pushed to node caches, targeted at nodes, levels or labels, versioned.
import { Hono } from "hono";
import { type CacheDistributor, parseCachePut } from "../cache/index.ts";
import type { Registry } from "../registry/index.ts";
import { jsonBody } from "./json-body.ts";

/** Routes for pushed cache entries. */
export function cacheApi(deps: { cache: CacheDistributor; registry: Registry }): Hono {
  const app = new Hono();
  app.put("/", async (c) => {
    const body = await jsonBody(c);
    const entry = parseCachePut(body);
    const { delivered } = deps.cache.put(
      entry,
      deps.registry.list().filter((n) => deps.registry.isConnected(n.id)),
    );
    return c.json({ key: entry.key, version: entry.version, delivered_now: delivered });
  });
  app.get("/", (c) => c.json({ entries: deps.cache.list() }));
  return app;
}

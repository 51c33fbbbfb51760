// /api/v1/cache: reference data pushed to node caches, targeted at nodes, levels or labels, versioned, deletable.
import { Hono } from "hono";
import { type CacheDistributor, CachePut, parseCachePut } from "../cache/index.ts";
import type { Registry } from "../registry/index.ts";
import { jsonBody } from "./json-body.ts";
import { describeRoute } from "./openapi.ts";

/** Routes for pushed cache entries. */
export function cacheApi(deps: { cache: CacheDistributor; registry: Registry }): Hono {
  const app = new Hono();
  const connected = () => deps.registry.list().filter((n) => deps.registry.isConnected(n.id));
  app.put(
    "/",
    describeRoute({ summary: "push a versioned entry to node caches", body: CachePut }),
    async (c) => {
      const body = await jsonBody(c);
      const entry = parseCachePut(body);
      const { delivered } = await deps.cache.put(entry, connected());
      return c.json({ key: entry.key, version: entry.version, delivered_now: delivered });
    },
  );
  app.get(
    "/",
    describeRoute({ summary: "entries pushed to node caches, deletions, and entries nodes refused" }),
    async (c) =>
      c.json({
        entries: await deps.cache.list(),
        deleted: await deps.cache.deletions(),
        refused: deps.cache.refusals(),
      }),
  );
  // The key is the rest of the path, percent-decoded: any key the hub holds, an invalid one included.
  app.delete("/:key{.+}", describeRoute({ summary: "delete a pushed entry; nodes drop it" }), async (c) => {
    const { key, version, delivered } = await deps.cache.delete(c.req.param("key"), connected());
    return c.json({ key, version, deleted: true, delivered_now: delivered });
  });
  return app;
}

// Local routes of the named caches: /v1/caches (their figures) and /v1/caches/{name}/{key} (get, put, delete).
import { type Context, Hono } from "hono";
import { MAX_VALUE_BYTES } from "../../shared/cache/index.ts";
import { RequestError, UnavailableError } from "../../shared/errors.ts";
import type { NamedCaches, ReadResult, WriteResult } from "../cache/index.ts";

export interface CacheRouteDeps {
  named?: () => NamedCaches | undefined;
}

function cachesOf(deps: CacheRouteDeps): NamedCaches {
  const n = deps.named?.();
  if (!n) throw new UnavailableError("hub_unreachable", "the caches are not running");
  return n;
}

function written(c: Context, w: WriteResult) {
  return c.json({ stored: true, hlc: w.hlc, confirmed: w.confirmed, queued: w.queued });
}

function served(c: Context, r: ReadResult) {
  const headers: Record<string, string> = { "x-hlc": r.hlc };
  if (r.stale) headers["x-stale"] = "1";
  if (typeof r.value === "string") return c.text(r.value, 200, headers);
  return c.body(r.value.slice().buffer as ArrayBuffer, 200, {
    ...headers,
    "content-type": "application/octet-stream",
  });
}

/** Routes for /v1/caches. Keys are the rest of the path, percent-decoded. */
export function cacheRoutes(deps: CacheRouteDeps): Hono {
  const app = new Hono();
  app.get("/caches", (c) => {
    const n = deps.named?.();
    return c.json({ caches: n?.stats() ?? {}, queue: n?.queue() ?? { depth: 0, oldest_ms: null } });
  });
  app.get("/caches/:name/:key{.+}", async (c) => {
    const r = await cachesOf(deps).get(c.req.param("name"), c.req.param("key"));
    if (!r) return c.json({ error: { code: "not_found", message: `no entry ${c.req.param("key")}` } }, 404);
    return served(c, r);
  });
  app.put("/caches/:name/:key{.+}", async (c) => {
    const ttlText = c.req.query("ttl_ms");
    const ttl = ttlText === undefined ? undefined : Number(ttlText);
    if (ttl !== undefined && (!Number.isSafeInteger(ttl) || ttl <= 0))
      throw new RequestError("query parameter ttl_ms must be a positive integer", "ttl_ms");
    const declared = Number(c.req.header("content-length") ?? 0);
    if (declared > MAX_VALUE_BYTES)
      throw new RequestError(`is over ${MAX_VALUE_BYTES} bytes (1 MiB)`, "value");
    const bytes = new Uint8Array(await c.req.arrayBuffer());
    const binary = (c.req.header("content-type") ?? "").includes("octet-stream");
    const value = binary ? bytes : new TextDecoder().decode(bytes);
    const w = await cachesOf(deps).put(
      c.req.param("name"),
      c.req.param("key"),
      value,
      ttl ? { ttl_ms: ttl } : {},
    );
    return written(c, w);
  });
  app.delete("/caches/:name/:key{.+}", async (c) =>
    written(c, await cachesOf(deps).delete(c.req.param("name"), c.req.param("key"))),
  );
  return app;
}

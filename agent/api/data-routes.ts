// Local data routes: points pushed by applications on the host (/v1/ingest) and the key/value cache (/v1/cache).
import { type Context, Hono } from "hono";
import { RequestError } from "../../shared/errors.ts";
import { decodeCbor } from "../../shared/protocol/index.ts";
import type { LocalCache } from "../cache/index.ts";
import { type IngestPoint, MAX_INGEST_BYTES, parseIngestBody } from "../stream/index.ts";

export interface DataDeps {
  /**
   * False when the points could not be stored (a full disk): they are counted as dropped. Undefined
   * when the store is not open: nothing was taken.
   */
  ingest: (points: IngestPoint[]) => boolean | undefined;
  /** Points refused as invalid (counted as produced and dropped, reason invalid). */
  invalid?: (points: number) => void;
  /** The agent's clock: points without a time get this one, and others must lie near it. */
  now: () => number;
  cache: () => LocalCache | undefined;
}

// Reads at most `limit` bytes; a larger body is refused before it is all in memory.
async function boundedBody(c: Context, limit: number): Promise<Uint8Array> {
  const declared = Number(c.req.header("content-length") ?? 0);
  if (declared > limit)
    throw new RequestError(`body of ${declared} bytes is over the ${limit} byte limit`, "body");
  const bytes = new Uint8Array(await c.req.arrayBuffer());
  if (bytes.byteLength > limit)
    throw new RequestError(`body of ${bytes.byteLength} bytes is over the ${limit} byte limit`, "body");
  return bytes;
}

// How many points a refused body carried (all of them are refused); 1 when it is not even a list.
function pointsOffered(body: Uint8Array | string): number {
  try {
    const doc = typeof body === "string" ? JSON.parse(body) : decodeCbor(body);
    const list = Array.isArray(doc) ? doc : (doc as { points?: unknown } | null)?.points;
    return Array.isArray(list) ? Math.max(1, list.length) : 1;
  } catch {
    return 1;
  }
}

/** Routes for /v1/ingest and /v1/cache/{key}. */
export function dataRoutes(deps: DataDeps): Hono {
  const app = new Hono();
  app.post("/ingest", async (c) => {
    const bytes = await boundedBody(c, MAX_INGEST_BYTES);
    const type = c.req.header("content-type") ?? "application/json";
    const body = type.includes("cbor") ? bytes : new TextDecoder().decode(bytes);
    let points: IngestPoint[];
    try {
      points = parseIngestBody(body, type, deps.now());
    } catch (err) {
      deps.invalid?.(pointsOffered(body));
      throw err;
    }
    const stored = deps.ingest(points);
    if (stored === undefined)
      return c.json(
        { error: { code: "unavailable", message: "the agent's store is not open: nothing was stored" } },
        503,
      );
    if (!stored)
      return c.json(
        {
          error: {
            code: "disk_full",
            message: `not stored: the agent's disk is full; the ${points.length} points are counted as dropped (reason disk)`,
          },
        },
        507,
      );
    return c.json({ accepted: points.length }, 202);
  });
  app.get("/cache/:key", (c) => {
    const entry = deps.cache()?.get(c.req.param("key"));
    if (!entry)
      return c.json({ error: { code: "not_found", message: `no cache entry ${c.req.param("key")}` } }, 404);
    const headers: Record<string, string> = {};
    if (entry.version !== undefined) headers["x-version"] = String(entry.version);
    if (entry.expires_at !== undefined) headers["x-expires-at"] = String(entry.expires_at);
    if (typeof entry.value === "string") return c.text(entry.value, 200, headers);
    return c.body(entry.value.slice().buffer, 200, {
      ...headers,
      "content-type": "application/octet-stream",
    });
  });
  app.put("/cache/:key", async (c) => {
    const cache = deps.cache();
    if (!cache) return c.json({ error: { code: "unavailable", message: "cache not running" } }, 503);
    const ttlText = c.req.query("ttl_ms");
    const ttl = ttlText === undefined ? undefined : Number(ttlText);
    if (ttl !== undefined && (!Number.isInteger(ttl) || ttl <= 0)) {
      throw new RequestError("query parameter ttl_ms must be a positive integer", "ttl_ms");
    }
    const bytes = await boundedBody(c, (1 << 20) + 1);
    const binary = (c.req.header("content-type") ?? "").includes("octet-stream");
    const result = cache.put(
      c.req.param("key"),
      binary ? bytes : new TextDecoder().decode(bytes),
      ttl ? { ttl_ms: ttl } : {},
    );
    if (!result.stored && result.reason === "disk_full")
      return c.json({ error: { code: "disk_full", message: "not stored: the agent's disk is full" } }, 507);
    if (!result.stored)
      return c.json({ error: { code: "conflict", message: `not stored: ${result.reason}` } }, 409);
    return c.json({ stored: true });
  });
  app.delete("/cache/:key", (c) => {
    const gone = deps.cache()?.delete(c.req.param("key")) ?? false;
    return gone
      ? c.body(null, 204)
      : c.json({ error: { code: "not_found", message: `no cache entry ${c.req.param("key")}` } }, 404);
  });
  return app;
}

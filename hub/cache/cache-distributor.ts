// Hub-pushed cache entries: stored once, sent to every node they target now and again on each hello.
import type { Database } from "bun:sqlite";
import * as v from "valibot";
import { RequestError } from "../../shared/errors.ts";
import type { NodeRecord } from "../registry/index.ts";

export const CacheTarget = v.object({
  nodes: v.optional(v.array(v.string())),
  levels: v.optional(
    v.pipe(
      v.tuple([v.number(), v.number()]),
      v.check(([a, b]) => a >= 1 && b <= 5 && a <= b, "must be [min, max] within 1-5"),
    ),
  ),
  labels: v.optional(v.record(v.string(), v.string())),
});

export const CachePut = v.object({
  key: v.pipe(v.string(), v.minLength(1), v.maxLength(256)),
  value: v.pipe(v.string(), v.maxLength(1 << 20)),
  version: v.pipe(v.number(), v.integer(), v.minValue(1)),
  ttl_ms: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
  target: v.optional(CacheTarget, {}),
});
export type CachePut = v.InferOutput<typeof CachePut>;

/** Parses a PUT /api/v1/cache body; the error names the field. */
export function parseCachePut(input: unknown): CachePut {
  const r = v.safeParse(CachePut, input);
  if (r.success) return r.output;
  const issue = r.issues[0];
  const field = issue.path?.map((p) => String(p.key)).join(".") || "body";
  throw new RequestError(`${field}: ${issue.message}`, field);
}

/** Whether an entry's target selects a node. An empty target selects every node. */
export function targets(t: CachePut["target"], n: Pick<NodeRecord, "id" | "level" | "labels">): boolean {
  if (t.nodes && !t.nodes.includes(n.id)) return false;
  if (t.levels && (n.level < t.levels[0] || n.level > t.levels[1])) return false;
  if (t.labels) for (const [k, want] of Object.entries(t.labels)) if (n.labels[k] !== want) return false;
  return true;
}

interface EntryRow {
  key: string;
  value: string;
  version: number;
  ttl_ms: number | null;
  target: string;
}

/** Keeps the entries and hands each to the nodes it targets through `send`. */
export class CacheDistributor {
  readonly #db: Database;
  readonly #send: (node: string, entry: CachePut) => boolean;

  constructor(db: Database, send: (node: string, entry: CachePut) => boolean) {
    this.#db = db;
    this.#send = send;
  }

  /** Stores an entry (an older version than the stored one is refused) and sends it to targeted nodes now connected. */
  put(entry: CachePut, connected: readonly NodeRecord[]): { delivered: string[] } {
    const current = this.#db.query("SELECT version FROM cache_entries WHERE key = ?").get(entry.key) as {
      version: number;
    } | null;
    if (current && current.version > entry.version) {
      throw new RequestError(
        `version ${entry.version} is older than the stored version ${current.version}`,
        "version",
      );
    }
    this.#db
      .query(
        `INSERT INTO cache_entries (key, value, version, ttl_ms, target, updated) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value, version = excluded.version, ttl_ms = excluded.ttl_ms,
           target = excluded.target, updated = excluded.updated`,
      )
      .run(
        entry.key,
        entry.value,
        entry.version,
        entry.ttl_ms ?? null,
        JSON.stringify(entry.target),
        Date.now(),
      );
    const delivered = connected
      .filter((n) => targets(entry.target, n) && this.#send(n.id, entry))
      .map((n) => n.id);
    return { delivered };
  }

  list(): CachePut[] {
    return (this.#db.query("SELECT * FROM cache_entries ORDER BY key").all() as EntryRow[]).map((r) => ({
      key: r.key,
      value: r.value,
      version: r.version,
      ...(r.ttl_ms !== null ? { ttl_ms: r.ttl_ms } : {}),
      target: JSON.parse(r.target),
    }));
  }

  /** A node said hello: it gets every entry that targets it (its cache refuses versions it already has or beat). */
  onSession(node: NodeRecord): void {
    for (const e of this.list()) if (targets(e.target, node)) this.#send(node.id, e);
  }
}

// Named caches at the hub: each node's writes stored (last writer wins by hybrid clock) and relayed to the
// nodes holding that cache in the writer's scope; declarations pushed to the nodes they target.
//
// Writes arrive through the outbox (exactly once, in order per node) and are applied inside the ingest
// transaction that stores their sequence number, so a resend after a crash is a duplicate by sequence
// and never applied twice. The hub keeps, per (cache, partition, key), the write with the highest
// stamp; a partition is the writer's scope value (its site, region or level, or the whole fleet), so
// the same key written at two sites of a site-scoped cache stays two keys. Per (cache, key, writer) it
// also keeps the last stamp seen: a write from the same writer at or below it would be a repeat or out
// of order, and is counted as such (the write-behind tests require both counts to stay 0).
//
// Replication is live: once a write is stored and wins, it goes as a `cache_replica` command to every
// connected node that said in its hello it holds the cache with the same scope and partition. A node
// that was away gets the partition's current entries at its next hello (a catch-up), hottest first.
import type { Database, Statement } from "bun:sqlite";
import {
  CACHE_NAME,
  type CacheSpec,
  checkKey,
  checkValue,
  MAX_DRIFT_MS,
  parseStamp,
  partitionOf,
  type Scope,
} from "../../shared/cache/index.ts";
import { RequestError } from "../../shared/errors.ts";
import type { Logger } from "../../shared/log.ts";
import type { Body } from "../../shared/protocol/index.ts";
import type { NodeRecord } from "../registry/index.ts";
import { type CacheTarget, targets } from "./cache-entry.ts";
import { afterTx } from "../store/after-tx.ts";

export interface ReplicatorDeps {
  db: Database;
  /** Sends a command to a node; false when it is not connected. */
  send: (node: string, kind: "cache_replica" | "cache_define", args: Record<string, unknown>) => boolean;
  node: (id: string) => NodeRecord | undefined;
  connected: () => NodeRecord[];
  log?: Logger;
  now: () => number;
}

export interface CacheFigures {
  name: string;
  /** Writes received from nodes (each once). */
  writes: number;
  /** Of those, the ones that became the key's value at the hub. */
  applied: number;
  /** Of those, the ones an existing higher stamp beat (concurrent writes resolved). */
  superseded: number;
  /** Writes from a writer at the very stamp it already sent: would mean a message applied twice. */
  repeated: number;
  /** Writes from a writer below a stamp it already sent for that key: would mean out of order. */
  out_of_order: number;
  /** Replicas sent to other nodes. */
  replicas_sent: number;
  keys: number;
  holders: string[];
  spec?: CacheSpec;
  target?: CacheTarget;
}

interface Pending {
  cache: string;
  part: string;
  scope: Scope;
  origin: string;
  args: Record<string, unknown>;
}

const CATCH_UP_LIMIT = 100_000;
const DEFAULT_PREFETCH = 1000;
const MAX_HOT_KEYS = 256;

/** The hub's copy of every replicated named cache. */
export class CacheReplicator {
  readonly #d: ReplicatorDeps;
  readonly #holders = new Map<string, Map<string, Scope>>();
  #pending: Pending[] = [];
  readonly #sent = new Map<string, number>();
  readonly #getData: Statement;
  readonly #putData: Statement;
  readonly #getSeen: Statement;
  readonly #putSeen: Statement;
  readonly #bump: Statement;

  constructor(d: ReplicatorDeps) {
    this.#d = d;
    const db = d.db;
    db.run(`CREATE TABLE IF NOT EXISTS cache_data (
      cache TEXT NOT NULL, part TEXT NOT NULL, key TEXT NOT NULL, value BLOB, hlc TEXT NOT NULL,
      origin TEXT NOT NULL, ttl_ms INTEGER, updated INTEGER NOT NULL,
      PRIMARY KEY (cache, part, key))`);
    db.run(`CREATE TABLE IF NOT EXISTS cache_seen (
      cache TEXT NOT NULL, key TEXT NOT NULL, origin TEXT NOT NULL, hlc TEXT NOT NULL,
      PRIMARY KEY (cache, key, origin))`);
    db.run(`CREATE TABLE IF NOT EXISTS cache_figures (
      cache TEXT PRIMARY KEY, writes INTEGER NOT NULL DEFAULT 0, applied INTEGER NOT NULL DEFAULT 0,
      superseded INTEGER NOT NULL DEFAULT 0, repeated INTEGER NOT NULL DEFAULT 0,
      out_of_order INTEGER NOT NULL DEFAULT 0)`);
    // Each node's latest hot-key report: the fleet's hot keys are the sums per key.
    db.run(`CREATE TABLE IF NOT EXISTS cache_hot (
      cache TEXT NOT NULL, key TEXT NOT NULL, node TEXT NOT NULL, count INTEGER NOT NULL, at INTEGER NOT NULL,
      PRIMARY KEY (cache, key, node))`);
    db.run(`CREATE TABLE IF NOT EXISTS cache_defs (
      name TEXT PRIMARY KEY, spec TEXT NOT NULL, target TEXT NOT NULL, updated INTEGER NOT NULL)`);
    this.#getData = db.query("SELECT hlc FROM cache_data WHERE cache = ? AND part = ? AND key = ?");
    this.#putData = db.query(
      `INSERT INTO cache_data (cache, part, key, value, hlc, origin, ttl_ms, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(cache, part, key) DO UPDATE SET value = excluded.value, hlc = excluded.hlc,
         origin = excluded.origin, ttl_ms = excluded.ttl_ms, updated = excluded.updated`,
    );
    this.#getSeen = db.query("SELECT hlc FROM cache_seen WHERE cache = ? AND key = ? AND origin = ?");
    this.#putSeen = db.query(
      `INSERT INTO cache_seen (cache, key, origin, hlc) VALUES (?, ?, ?, ?)
       ON CONFLICT(cache, key, origin) DO UPDATE SET hlc = max(hlc, excluded.hlc)`,
    );
    this.#bump = db.query(
      `INSERT INTO cache_figures (cache, writes, applied, superseded, repeated, out_of_order) VALUES (?, 1, ?, ?, ?, ?)
       ON CONFLICT(cache) DO UPDATE SET writes = writes + 1, applied = applied + excluded.applied,
         superseded = superseded + excluded.superseded, repeated = repeated + excluded.repeated,
         out_of_order = out_of_order + excluded.out_of_order`,
    );
  }

  /**
   * A node's write, inside the ingest transaction that stores its sequence number. A write the shared
   * definitions refuse (a bad cache name or key, a value over 1 MiB, a malformed stamp, a stamp from
   * more than a minute in the future, which would win every later write) throws: ingest records the
   * message as refused and acks past it, and nothing is stored or relayed.
   */
  onWrite(node: string, w: Body<"cache_write">): void {
    if (!CACHE_NAME.test(w.cache)) throw new RequestError("is not a cache name", "cache");
    checkKey(w.key);
    if (w.value !== undefined) checkValue(w.value);
    const stamp = parseStamp(w.hlc);
    if (stamp.wall > this.#d.now() + MAX_DRIFT_MS)
      throw new RequestError(`is ${stamp.wall - this.#d.now()} ms ahead of the hub's clock`, "hlc");
    const rec = this.#d.node(node);
    const part = partitionOf(w.replicate, rec ?? { id: node, level: 0, labels: {} });
    this.#hold(node, w.cache, w.replicate);
    const seen = (this.#getSeen.get(w.cache, w.key, node) as { hlc: string } | null)?.hlc;
    const repeated = seen !== undefined && seen === w.hlc ? 1 : 0;
    const outOfOrder = seen !== undefined && seen > w.hlc ? 1 : 0;
    this.#putSeen.run(w.cache, w.key, node, w.hlc);
    const held = (this.#getData.get(w.cache, part, w.key) as { hlc: string } | null)?.hlc;
    const wins = held === undefined || held < w.hlc;
    this.#bump.run(w.cache, wins ? 1 : 0, wins ? 0 : 1, repeated, outOfOrder);
    if (!wins) return;
    this.#putData.run(w.cache, part, w.key, w.value ?? null, w.hlc, node, w.ttl_ms ?? null, this.#d.now());
    if (w.replicate === "none") return;
    if (this.#pending.length === 0) afterTx(() => this.#relay());
    this.#pending.push({ cache: w.cache, part, scope: w.replicate, origin: node, args: replicaArgs(w) });
  }

  /** A strong read: the hub's value of a key in the reading node's partition (null: none). */
  read(node: string, r: Body<"cache_read">): { value?: Uint8Array | string; hlc?: string } | null {
    const rec = this.#d.node(node);
    const part = partitionOf(r.replicate, rec ?? { id: node, level: 0, labels: {} });
    const row = this.#d.db
      .query("SELECT value, hlc FROM cache_data WHERE cache = ? AND part = ? AND key = ?")
      .get(r.cache, part, r.key) as { value: Uint8Array | string | null; hlc: string } | null;
    if (!row) return null;
    return row.value === null ? { hlc: row.hlc } : { value: row.value, hlc: row.hlc };
  }

  /** A node said hello: its caches are noted, its declarations sent, and its partitions caught up. */
  onSession(
    rec: NodeRecord,
    caches: readonly { name: string; replicate: Scope; prefetch?: number }[] | undefined,
  ): void {
    const held = new Map<string, Scope>();
    const prefetch = new Map<string, number>();
    for (const c of caches ?? []) {
      held.set(c.name, c.replicate);
      prefetch.set(c.name, Math.min(c.prefetch ?? DEFAULT_PREFETCH, CATCH_UP_LIMIT));
    }
    this.#holders.set(rec.id, held);
    for (const def of this.definitions()) {
      if (!targets(def.target, rec)) continue;
      this.#d.send(rec.id, "cache_define", { name: def.name, spec: def.spec });
      if (!held.has(def.name)) {
        held.set(def.name, def.spec.replicate);
        prefetch.set(def.name, def.spec.prefetch);
      }
    }
    for (const [cache, scope] of held) {
      const limit = prefetch.get(cache) ?? DEFAULT_PREFETCH;
      if (scope === "none" || limit === 0) continue;
      // Prefetch: the partition's entries the fleet reads most first (its hot keys), then the newest.
      const rows = this.#d.db
        .query(
          `SELECT d.key, d.value, d.hlc, d.ttl_ms,
             (SELECT coalesce(sum(h.count), 0) FROM cache_hot h WHERE h.cache = d.cache AND h.key = d.key) AS heat
           FROM cache_data d WHERE d.cache = ? AND d.part = ? AND d.origin != ?
           ORDER BY heat DESC, d.updated DESC LIMIT ?`,
        )
        .all(cache, partitionOf(scope, rec), rec.id, limit) as {
        key: string;
        value: Uint8Array | string | null;
        hlc: string;
        ttl_ms: number | null;
      }[];
      for (const r of rows) {
        this.#d.send(rec.id, "cache_replica", {
          cache,
          key: r.key,
          hlc: r.hlc,
          ...(r.value !== null ? { value: r.value } : {}),
          ...(r.ttl_ms !== null ? { ttl_ms: r.ttl_ms } : {}),
        });
        this.#sent.set(cache, (this.#sent.get(cache) ?? 0) + 1);
      }
    }
  }

  /** Stores a declaration and sends it to the targeted nodes now connected (others get it at hello). */
  define(name: string, spec: CacheSpec, target: CacheTarget): { delivered: string[] } {
    this.#d.db
      .query(
        `INSERT INTO cache_defs (name, spec, target, updated) VALUES (?, ?, ?, ?)
         ON CONFLICT(name) DO UPDATE SET spec = excluded.spec, target = excluded.target, updated = excluded.updated`,
      )
      .run(name, JSON.stringify(spec), JSON.stringify(target), this.#d.now());
    const delivered = this.#d
      .connected()
      .filter((n) => targets(target, n) && this.#d.send(n.id, "cache_define", { name, spec }))
      .map((n) => n.id);
    for (const n of delivered) if (!this.#holders.get(n)?.has(name)) this.#hold(n, name, spec.replicate);
    return { delivered };
  }

  /** A node's hot-key report (an event: `fields.cache`, `fields.keys` as [key, count] pairs); bad ones are ignored. */
  onHotKeys(node: string, fields: Record<string, unknown>, at: number): void {
    const cache = fields.cache;
    const keys = fields.keys;
    if (typeof cache !== "string" || !Array.isArray(keys)) return;
    this.#d.db.query("DELETE FROM cache_hot WHERE cache = ? AND node = ?").run(cache, node);
    const put = this.#d.db.query(
      "INSERT OR REPLACE INTO cache_hot (cache, key, node, count, at) VALUES (?, ?, ?, ?, ?)",
    );
    for (const pair of keys.slice(0, MAX_HOT_KEYS)) {
      if (!Array.isArray(pair) || typeof pair[0] !== "string" || typeof pair[1] !== "number") continue;
      put.run(cache, pair[0], node, Math.max(0, Math.floor(pair[1])), at);
    }
  }

  /** A cache's hot keys across the fleet: reads summed over the nodes' latest reports, hottest first. */
  hotKeys(cache: string, limit = 20): { key: string; count: number; nodes: string[] }[] {
    return (
      this.#d.db
        .query(
          `SELECT key, sum(count) AS count, group_concat(node) AS nodes FROM cache_hot WHERE cache = ?
           GROUP BY key ORDER BY count DESC, key LIMIT ?`,
        )
        .all(cache, limit) as { key: string; count: number; nodes: string }[]
    ).map((r) => ({ key: r.key, count: r.count, nodes: r.nodes.split(",").sort() }));
  }

  definitions(): { name: string; spec: CacheSpec; target: CacheTarget }[] {
    return (
      this.#d.db.query("SELECT name, spec, target FROM cache_defs ORDER BY name").all() as {
        name: string;
        spec: string;
        target: string;
      }[]
    ).map((r) => ({ name: r.name, spec: JSON.parse(r.spec), target: JSON.parse(r.target) }));
  }

  /** Every cache the hub knows of (declared, held or written), with its figures. */
  list(): CacheFigures[] {
    const names = new Set<string>();
    const figures = new Map(
      (
        this.#d.db.query("SELECT * FROM cache_figures").all() as (Omit<
          CacheFigures,
          "name" | "keys" | "holders" | "replicas_sent"
        > & { cache: string })[]
      ).map((r) => [r.cache, r]),
    );
    const keys = new Map(
      (
        this.#d.db
          .query("SELECT cache, count(*) AS n FROM cache_data WHERE value IS NOT NULL GROUP BY cache")
          .all() as { cache: string; n: number }[]
      ).map((r) => [r.cache, r.n]),
    );
    const defs = new Map(this.definitions().map((d) => [d.name, d]));
    for (const n of [...figures.keys(), ...defs.keys()]) names.add(n);
    for (const held of this.#holders.values()) for (const n of held.keys()) names.add(n);
    return [...names].sort().map((name) => {
      const f = figures.get(name);
      const def = defs.get(name);
      return {
        name,
        writes: f?.writes ?? 0,
        applied: f?.applied ?? 0,
        superseded: f?.superseded ?? 0,
        repeated: f?.repeated ?? 0,
        out_of_order: f?.out_of_order ?? 0,
        replicas_sent: this.#sent.get(name) ?? 0,
        keys: keys.get(name) ?? 0,
        holders: [...this.#holders].filter(([, h]) => h.has(name)).map(([node]) => node),
        ...(def ? { spec: def.spec, target: def.target } : {}),
      };
    });
  }

  /** The hub's value of one key (each partition's), for GET /api/v1/caches/{name}/entries/{key}. */
  entry(cache: string, key: string): { part: string; value: string | null; hlc: string; origin: string }[] {
    const rows = this.#d.db
      .query("SELECT part, value, hlc, origin FROM cache_data WHERE cache = ? AND key = ? ORDER BY part")
      .all(cache, key) as { part: string; value: Uint8Array | string | null; hlc: string; origin: string }[];
    return rows.map((r) => ({
      part: r.part,
      value:
        r.value === null
          ? null
          : typeof r.value === "string"
            ? r.value
            : Buffer.from(r.value).toString("base64"),
      hlc: r.hlc,
      origin: r.origin,
    }));
  }

  #hold(node: string, cache: string, scope: Scope): void {
    let h = this.#holders.get(node);
    if (!h) {
      h = new Map();
      this.#holders.set(node, h);
    }
    h.set(cache, scope);
  }

  // After the ingest commit: each winning write to the holders of its partition, the writer excepted.
  #relay(): void {
    const pending = this.#pending;
    this.#pending = [];
    const nodes = this.#d.connected();
    for (const p of pending) {
      for (const n of nodes) {
        if (n.id === p.origin || this.#holders.get(n.id)?.get(p.cache) !== p.scope) continue;
        if (partitionOf(p.scope, n) !== p.part) continue;
        if (this.#d.send(n.id, "cache_replica", p.args))
          this.#sent.set(p.cache, (this.#sent.get(p.cache) ?? 0) + 1);
      }
    }
  }
}

function replicaArgs(w: Body<"cache_write">): Record<string, unknown> {
  return {
    cache: w.cache,
    key: w.key,
    hlc: w.hlc,
    ...(w.value !== undefined ? { value: w.value } : {}),
    ...(w.ttl_ms !== undefined ? { ttl_ms: w.ttl_ms } : {}),
  };
}

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
import { afterCommit } from "../store/after-tx.ts";
import { type Dialect, groupConcat, type HubSql, textOrder } from "../store/sql/index.ts";

export interface ReplicatorDeps {
  sql: HubSql;
  /** Sends a command to a node; false when it is not connected. */
  send: (node: string, kind: "cache_replica" | "cache_define", args: Record<string, unknown>) => boolean;
  node: (id: string) => NodeRecord | undefined;
  connected: () => NodeRecord[];
  log?: Logger;
  now: () => number;
  /**
   * Replicas: told of each winning write once it is stored, so that the other replicas relay it to the
   * holders whose sessions they hold (`relayStored` there).
   */
  announce?: (w: StoredWrite) => void;
}

/** Where a stored write is: what another replica needs to relay it from the store. */
export interface StoredWrite {
  cache: string;
  part: string;
  scope: Scope;
  origin: string;
  key: string;
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
  /** Each cache's figures as last read (the metrics collectors read them; `refreshFigures` reads them again). */
  #figures: CacheFigures[] = [];

  constructor(d: ReplicatorDeps) {
    this.#d = d;
  }

  /**
   * A node's write, inside the ingest transaction that stores its sequence number. A write the shared
   * definitions refuse (a bad cache name or key, a value over 1 MiB, a malformed stamp, a stamp from
   * more than a minute in the future, which would win every later write) throws: ingest records the
   * message as refused and acks past it, and nothing is stored or relayed.
   */
  async onWrite(tx: HubSql, node: string, w: Body<"cache_write">): Promise<void> {
    if (!CACHE_NAME.test(w.cache)) throw new RequestError("is not a cache name", "cache");
    checkKey(w.key);
    if (w.value !== undefined) checkValue(w.value);
    const stamp = parseStamp(w.hlc);
    if (stamp.wall > this.#d.now() + MAX_DRIFT_MS)
      throw new RequestError(`is ${stamp.wall - this.#d.now()} ms ahead of the hub's clock`, "hlc");
    const rec = this.#d.node(node);
    const part = partitionOf(w.replicate, rec ?? { id: node, level: 0, labels: {} });
    this.#hold(node, w.cache, w.replicate);
    const seen = (
      await tx.get<{ hlc: string }>("SELECT hlc FROM cache_seen WHERE cache = ? AND key = ? AND origin = ?", [
        w.cache,
        w.key,
        node,
      ])
    )?.hlc;
    const repeated = seen !== undefined && seen === w.hlc ? 1 : 0;
    const outOfOrder = seen !== undefined && seen > w.hlc ? 1 : 0;
    await tx.run(
      `INSERT INTO cache_seen (cache, key, origin, hlc) VALUES (?, ?, ?, ?)
       ON CONFLICT(cache, key, origin) DO UPDATE SET hlc = ${laterStamp(tx.dialect, "cache_seen.hlc", "excluded.hlc")}`,
      [w.cache, w.key, node, w.hlc],
    );
    // Stored only over a lower stamp, compared by the store in one statement: a write of the same key on
    // another replica at the same moment waits for this one's row and then compares with it.
    const put = await tx.run(
      `INSERT INTO cache_data (cache, part, key, value, text, hlc, origin, ttl_ms, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(cache, part, key) DO UPDATE SET value = excluded.value, text = excluded.text, hlc = excluded.hlc,
         origin = excluded.origin, ttl_ms = excluded.ttl_ms, updated = excluded.updated
       WHERE ${textOrder(tx.dialect, "cache_data.hlc")} < ${textOrder(tx.dialect, "excluded.hlc")}`,
      [
        w.cache,
        part,
        w.key,
        w.value === undefined ? null : stored(w.value),
        typeof w.value === "string" ? 1 : 0,
        w.hlc,
        node,
        w.ttl_ms ?? null,
        this.#d.now(),
      ],
    );
    const wins = put.changes === 1;
    await tx.run(
      `INSERT INTO cache_figures (cache, writes, applied, superseded, repeated, out_of_order) VALUES (?, 1, ?, ?, ?, ?)
       ON CONFLICT(cache) DO UPDATE SET writes = cache_figures.writes + 1,
         applied = cache_figures.applied + excluded.applied, superseded = cache_figures.superseded + excluded.superseded,
         repeated = cache_figures.repeated + excluded.repeated, out_of_order = cache_figures.out_of_order + excluded.out_of_order`,
      [w.cache, wins ? 1 : 0, wins ? 0 : 1, repeated, outOfOrder],
    );
    if (!wins) return;
    if (w.replicate === "none") return;
    // Relayed once stored: never a value a rolled-back group (or message) wrote. The writes of one
    // commit go out together, in one pass over the connected nodes.
    const relay: Pending = { cache: w.cache, part, scope: w.replicate, origin: node, args: replicaArgs(w) };
    afterCommit(() => {
      if (this.#pending.length === 0) queueMicrotask(() => this.#relay());
      this.#pending.push(relay);
      this.#d.announce?.({ cache: w.cache, part, scope: w.replicate, origin: node, key: w.key });
    });
  }

  /**
   * A write another replica stored: relayed to this replica's holders of its partition, with the value
   * the store holds now (a later write that won meanwhile goes out instead: its own relay follows).
   */
  async relayStored(w: StoredWrite): Promise<void> {
    // Nothing to read when no node here holds the cache in that scope.
    if (![...this.#holders.values()].some((h) => h.get(w.cache) === w.scope)) return;
    const row = await this.#d.sql.get<{
      value: Uint8Array | string | null;
      text: number;
      hlc: string;
      ttl_ms: number | null;
    }>("SELECT value, text, hlc, ttl_ms FROM cache_data WHERE cache = ? AND part = ? AND key = ?", [
      w.cache,
      w.part,
      w.key,
    ]);
    if (!row) return;
    const args: Record<string, unknown> = { cache: w.cache, key: w.key, hlc: row.hlc };
    if (row.value !== null) args.value = asWritten(row.value, row.text);
    if (row.ttl_ms !== null) args.ttl_ms = row.ttl_ms;
    if (this.#pending.length === 0) queueMicrotask(() => this.#relay());
    this.#pending.push({ cache: w.cache, part: w.part, scope: w.scope, origin: w.origin, args });
  }

  /** A strong read: the hub's value of a key in the reading node's partition (null: none). */
  async read(
    node: string,
    r: Body<"cache_read">,
  ): Promise<{ value?: Uint8Array | string; hlc?: string } | null> {
    const rec = this.#d.node(node);
    const part = partitionOf(r.replicate, rec ?? { id: node, level: 0, labels: {} });
    const row = await this.#d.sql.get<{ value: Uint8Array | string | null; text: number; hlc: string }>(
      "SELECT value, text, hlc FROM cache_data WHERE cache = ? AND part = ? AND key = ?",
      [r.cache, part, r.key],
    );
    if (!row) return null;
    return row.value === null ? { hlc: row.hlc } : { value: asWritten(row.value, row.text), hlc: row.hlc };
  }

  /** A node said hello: its caches are noted, its declarations sent, and its partitions caught up. */
  async onSession(
    rec: NodeRecord,
    caches: readonly { name: string; replicate: Scope; prefetch?: number }[] | undefined,
  ): Promise<void> {
    const held = new Map<string, Scope>();
    const prefetch = new Map<string, number>();
    for (const c of caches ?? []) {
      held.set(c.name, c.replicate);
      prefetch.set(c.name, Math.min(c.prefetch ?? DEFAULT_PREFETCH, CATCH_UP_LIMIT));
    }
    this.#holders.set(rec.id, held);
    for (const def of await this.definitions()) {
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
      const rows = await this.#d.sql.all<{
        key: string;
        value: Uint8Array | string | null;
        text: number;
        hlc: string;
        ttl_ms: number | null;
      }>(
        `SELECT d.key, d.value, d.text, d.hlc, d.ttl_ms,
           (SELECT coalesce(sum(h.count), 0) FROM cache_hot h WHERE h.cache = d.cache AND h.key = d.key) AS heat
         FROM cache_data d WHERE d.cache = ? AND d.part = ? AND d.origin != ?
         ORDER BY heat DESC, d.updated DESC LIMIT ?`,
        [cache, partitionOf(scope, rec), rec.id, limit],
      );
      for (const r of rows) {
        this.#d.send(rec.id, "cache_replica", {
          cache,
          key: r.key,
          hlc: r.hlc,
          ...(r.value !== null ? { value: asWritten(r.value, r.text) } : {}),
          ...(r.ttl_ms !== null ? { ttl_ms: r.ttl_ms } : {}),
        });
        this.#sent.set(cache, (this.#sent.get(cache) ?? 0) + 1);
      }
    }
  }

  /** Stores a declaration and sends it to the targeted nodes now connected (others get it at hello). */
  async define(name: string, spec: CacheSpec, target: CacheTarget): Promise<{ delivered: string[] }> {
    await this.#d.sql.run(
      `INSERT INTO cache_defs (name, spec, target, updated) VALUES (?, ?, ?, ?)
       ON CONFLICT(name) DO UPDATE SET spec = excluded.spec, target = excluded.target, updated = excluded.updated`,
      [name, JSON.stringify(spec), JSON.stringify(target), this.#d.now()],
    );
    const delivered = this.#d
      .connected()
      .filter((n) => targets(target, n) && this.#d.send(n.id, "cache_define", { name, spec }))
      .map((n) => n.id);
    for (const n of delivered) if (!this.#holders.get(n)?.has(name)) this.#hold(n, name, spec.replicate);
    return { delivered };
  }

  /** A node's hot-key report (an event: `fields.cache`, `fields.keys` as [key, count] pairs); bad ones are ignored. */
  async onHotKeys(tx: HubSql, node: string, fields: Record<string, unknown>, at: number): Promise<void> {
    const cache = fields.cache;
    const keys = fields.keys;
    if (typeof cache !== "string" || !Array.isArray(keys)) return;
    await tx.run("DELETE FROM cache_hot WHERE cache = ? AND node = ?", [cache, node]);
    for (const pair of keys.slice(0, MAX_HOT_KEYS)) {
      if (!Array.isArray(pair) || typeof pair[0] !== "string" || !Number.isFinite(pair[1])) continue;
      await tx.run(
        `INSERT INTO cache_hot (cache, key, node, count, at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(cache, key, node) DO UPDATE SET count = excluded.count, at = excluded.at`,
        [cache, pair[0], node, Math.min(Number.MAX_SAFE_INTEGER, Math.max(0, Math.floor(pair[1]))), at],
      );
    }
  }

  /** A cache's hot keys across the fleet: reads summed over the nodes' latest reports, hottest first. */
  async hotKeys(cache: string, limit = 20): Promise<{ key: string; count: number; nodes: string[] }[]> {
    const sql = this.#d.sql;
    const rows = await sql.all<{ key: string; count: number; nodes: string }>(
      `SELECT key, sum(count) AS count, ${groupConcat(sql.dialect, "node")} AS nodes FROM cache_hot WHERE cache = ?
       GROUP BY key ORDER BY count DESC, key LIMIT ?`,
      [cache, limit],
    );
    return rows.map((r) => ({ key: r.key, count: Number(r.count), nodes: r.nodes.split(",").sort() }));
  }

  async definitions(): Promise<{ name: string; spec: CacheSpec; target: CacheTarget }[]> {
    const rows = await this.#d.sql.all<{ name: string; spec: string; target: string }>(
      "SELECT name, spec, target FROM cache_defs ORDER BY name",
    );
    return rows.map((r) => ({ name: r.name, spec: JSON.parse(r.spec), target: JSON.parse(r.target) }));
  }

  /** Each cache's figures as last read by `list` or `refreshFigures` (for the metrics collectors). */
  figures(): readonly CacheFigures[] {
    return this.#figures;
  }

  /** Reads every cache's figures again (before a metrics scrape). */
  async refreshFigures(): Promise<void> {
    await this.list();
  }

  /** Every cache the hub knows of (declared, held or written), with its figures. */
  async list(): Promise<CacheFigures[]> {
    const names = new Set<string>();
    const sql = this.#d.sql;
    const figures = new Map(
      (
        await sql.all<Omit<CacheFigures, "name" | "keys" | "holders" | "replicas_sent"> & { cache: string }>(
          "SELECT * FROM cache_figures",
        )
      ).map((r) => [r.cache, r]),
    );
    const keys = new Map(
      (
        await sql.all<{ cache: string; n: number }>(
          "SELECT cache, count(*) AS n FROM cache_data WHERE value IS NOT NULL GROUP BY cache",
        )
      ).map((r) => [r.cache, Number(r.n)]),
    );
    const defs = new Map((await this.definitions()).map((d) => [d.name, d]));
    for (const n of [...figures.keys(), ...defs.keys()]) names.add(n);
    for (const held of this.#holders.values()) for (const n of held.keys()) names.add(n);
    this.#figures = [...names].sort().map((name) => {
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
    return this.#figures;
  }

  /** The hub's value of one key (each partition's), for GET /api/v1/caches/{name}/entries/{key}. */
  async entry(
    cache: string,
    key: string,
  ): Promise<{ part: string; value: string | null; hlc: string; origin: string }[]> {
    const rows = await this.#d.sql.all<{
      part: string;
      value: Uint8Array | string | null;
      text: number;
      hlc: string;
      origin: string;
    }>("SELECT part, value, text, hlc, origin FROM cache_data WHERE cache = ? AND key = ? ORDER BY part", [
      cache,
      key,
    ]);
    return rows.map((r) => ({
      part: r.part,
      value: r.value === null ? null : shown(asWritten(r.value, r.text)),
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

// The later of two stamps: their text order is their time order, byte by byte (never a locale's).
function laterStamp(dialect: Dialect, a: string, b: string): string {
  return `CASE WHEN ${textOrder(dialect, a)} < ${textOrder(dialect, b)} THEN ${b} ELSE ${a} END`;
}

// A value as stored: bytes (a string as its UTF-8, with `text` set), since PostgreSQL's column is BYTEA.
function stored(value: Uint8Array | string): Uint8Array {
  return typeof value === "string" ? new TextEncoder().encode(value) : value;
}

// A value as written: a string again when it was one (a hub.db from before `text` holds strings as text).
function asWritten(value: Uint8Array | string, text: number): Uint8Array | string {
  if (typeof value === "string") return value;
  return text === 1 ? new TextDecoder().decode(value) : value;
}

// As the API shows a value: text as it is, bytes in base64.
function shown(value: Uint8Array | string): string {
  return typeof value === "string" ? value : Buffer.from(value).toString("base64");
}

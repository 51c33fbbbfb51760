// Hub-pushed cache entries: stored once, sent to every node they target now and again on each hello; deletable.
//
// A deleted entry leaves a deletion (key, version, target) behind: it goes to the targeted nodes now
// and on every hello, so a node that was away drops the entry too, and a new entry of that key must
// carry a higher version (the nodes remember the deleted one and refuse anything at or below it).
// An entry stored before keys were checked in bytes (or written to the database by hand) that the
// shared key definition refuses is never sent: it is counted, logged once and listed as invalid,
// and DELETE removes it.
import { keyProblem, valueProblem } from "../../shared/cache/index.ts";
import { NotFoundError, RequestError } from "../../shared/errors.ts";
import type { Logger } from "../../shared/log.ts";
import type { NodeRecord } from "../registry/index.ts";
import { forUpdate, type HubSql, keyLock } from "../store/sql/index.ts";
import { type CachePut, type CacheTarget, targets } from "./cache-entry.ts";

interface EntryRow {
  key: string;
  value: string;
  version: number;
  ttl_ms: number | null;
  target: string;
}

/** A deleted entry: nodes drop their copy at or below `version`. */
export interface CacheDeletion {
  key: string;
  version: number;
  target: CacheTarget;
}

/** A node that said it could not apply an entry. */
export interface CacheRefusal {
  node: string;
  key: string;
  version: number;
  reason: string;
  at: number;
}

export interface CacheSender {
  put(node: string, entry: CachePut): boolean;
  delete(node: string, d: CacheDeletion): boolean;
}

const MAX_REFUSALS = 100;

/** Keeps the entries and hands each to the nodes it targets. */
export class CacheDistributor {
  readonly #sql: HubSql;
  readonly #send: CacheSender;
  readonly #log: Logger | undefined;
  readonly #refusals: CacheRefusal[] = [];
  readonly #warned = new Set<string>();
  /** Entries the hub would not send because the shared key/value definition refuses them. */
  invalidSkipped = 0;

  constructor(sql: HubSql, send: CacheSender, log?: Logger) {
    this.#sql = sql;
    this.#send = send;
    this.#log = log;
  }

  /** Stores an entry (an older version than the stored or deleted one is refused) and sends it to targeted nodes now connected. */
  async put(entry: CachePut, connected: readonly NodeRecord[]): Promise<{ delivered: string[] }> {
    // Checked and stored in one transaction under the key's lock: of two puts on two replicas, the
    // older version is refused whichever arrives first.
    const refused = await this.#sql.tx(async (tx) => {
      await this.#lockKey(tx, entry.key);
      const current = await tx.get<{ version: number }>(
        `SELECT version FROM cache_entries WHERE key = ?${forUpdate(tx.dialect)}`,
        [entry.key],
      );
      if (current && current.version > entry.version)
        return `version ${entry.version} is older than the stored version ${current.version}`;
      const deleted = await tx.get<{ version: number }>(
        `SELECT version FROM cache_deletions WHERE key = ?${forUpdate(tx.dialect)}`,
        [entry.key],
      );
      if (deleted && deleted.version >= entry.version)
        return `version ${entry.version} is not above the deleted version ${deleted.version}`;
      await tx.run("DELETE FROM cache_deletions WHERE key = ?", [entry.key]);
      await tx.run(
        `INSERT INTO cache_entries (key, value, version, ttl_ms, target, updated) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value, version = excluded.version, ttl_ms = excluded.ttl_ms,
           target = excluded.target, updated = excluded.updated`,
        [
          entry.key,
          entry.value,
          entry.version,
          entry.ttl_ms ?? null,
          JSON.stringify(entry.target),
          Date.now(),
        ],
      );
      return undefined;
    });
    // Refused after the transaction, which wrote nothing.
    if (refused) throw new RequestError(refused, "version");
    const delivered = connected
      .filter((n) => targets(entry.target, n) && this.#send.put(n.id, entry))
      .map((n) => n.id);
    return { delivered };
  }

  /**
   * Deletes an entry: the nodes it targets drop it now (those connected) or at their next hello.
   * Any key the hub holds can be deleted, also one the shared definition refuses.
   */
  async delete(
    key: string,
    connected: readonly NodeRecord[],
  ): Promise<{ key: string; version: number; delivered: string[] }> {
    const d = await this.#sql.tx(async (tx) => {
      await this.#lockKey(tx, key);
      const row = await tx.get<EntryRow>(
        `SELECT * FROM cache_entries WHERE key = ?${forUpdate(tx.dialect)}`,
        [key],
      );
      if (!row) return undefined;
      await tx.run("DELETE FROM cache_entries WHERE key = ?", [key]);
      await tx.run(
        `INSERT INTO cache_deletions (key, version, target, at) VALUES (?, ?, ?, ?)
         ON CONFLICT(key) DO UPDATE SET version = excluded.version, target = excluded.target, at = excluded.at`,
        [key, row.version, row.target, Date.now()],
      );
      return { key, version: row.version, target: JSON.parse(row.target) as CacheTarget };
    });
    if (!d) throw new NotFoundError(`no hub cache entry ${JSON.stringify(key)}`);
    const delivered =
      keyProblem(key) === undefined
        ? connected.filter((n) => targets(d.target, n) && this.#send.delete(n.id, d)).map((n) => n.id)
        : [];
    return { key, version: d.version, delivered };
  }

  // A key with no row yet has nothing to lock: on PostgreSQL the key's name is locked instead.
  async #lockKey(tx: HubSql, key: string): Promise<void> {
    const lock = keyLock(tx.dialect);
    if (lock) await tx.get(lock, [`cache_entries:${key}`]);
  }

  /** Every stored entry, with `invalid` naming what the shared definition refuses in it. */
  async list(via: HubSql = this.#sql): Promise<(CachePut & { invalid?: string })[]> {
    return (await via.all<EntryRow>("SELECT * FROM cache_entries ORDER BY key")).map((r) => {
      const problem = entryProblem(r);
      return {
        key: r.key,
        value: r.value,
        version: r.version,
        ...(r.ttl_ms !== null ? { ttl_ms: r.ttl_ms } : {}),
        target: JSON.parse(r.target),
        ...(problem ? { invalid: problem } : {}),
      };
    });
  }

  async deletions(via: HubSql = this.#sql): Promise<CacheDeletion[]> {
    const rows = await via.all<{ key: string; version: number; target: string }>(
      "SELECT key, version, target FROM cache_deletions ORDER BY key",
    );
    return rows.map((r) => ({ key: r.key, version: r.version, target: JSON.parse(r.target) }));
  }

  /** Recent refusals reported by nodes, newest last. */
  refusals(): readonly CacheRefusal[] {
    return this.#refusals;
  }

  /** A node refused an entry (its reply to a `cache_put`). */
  onRefused(node: string, key: string, version: number, reason: string, at: number): void {
    this.#refusals.push({ node, key, version, reason, at });
    if (this.#refusals.length > MAX_REFUSALS) this.#refusals.shift();
    this.#log?.warn("a node refused a hub cache entry", { node, key, version, reason });
  }

  /** A node said hello: it gets every deletion and every valid entry that targets it. */
  async onSession(node: NodeRecord): Promise<void> {
    // Deletions and entries read together, as one state of the store.
    const { deletions, entries } = await this.#sql.tx(async (tx) => ({
      deletions: await this.deletions(tx),
      entries: await this.list(tx),
    }));
    for (const d of deletions) if (targets(d.target, node)) this.#send.delete(node.id, d);
    for (const e of entries) {
      if (!targets(e.target, node)) continue;
      if (e.invalid) {
        this.invalidSkipped++;
        if (!this.#warned.has(e.key)) {
          this.#warned.add(e.key);
          this.#log?.warn("hub cache entry not sent: invalid (DELETE /api/v1/cache/KEY removes it)", {
            key: e.key,
            error: e.invalid,
          });
        }
        continue;
      }
      const { invalid: _, ...entry } = e;
      this.#send.put(node.id, entry);
    }
  }
}

function entryProblem(r: EntryRow): string | undefined {
  const k = keyProblem(r.key);
  if (k) return `key: ${k}`;
  const v = valueProblem(r.value);
  return v ? `value: ${v}` : undefined;
}

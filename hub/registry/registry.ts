// The node registry: identity, credentials, liveness and health status of every node.
import { timingSafeEqual } from "node:crypto";
import type { HelloBody } from "../../shared/protocol/index.ts";
import { encodeKey, keysEqual, legacyProof } from "../../shared/secure/index.ts";
import { forUpdate, keyLock, textOrder } from "../store/sql/dialect.ts";
import type { HubSql } from "../store/sql/index.ts";
import { type JoinScope, JoinTokens, outOfScope } from "./join-tokens.ts";
import { type EpochReports, type EpochVerdict, NodeEpochs } from "./node-epochs.ts";

export type NodeStatus = "ready" | "suspect" | "down" | "draining";

export interface NodeRecord {
  id: string;
  /** `hub`: a child hub that stands for its subtree; `agent` otherwise. */
  kind: "agent" | "hub";
  level: number;
  labels: Record<string, string>;
  capabilities: string[];
  resources: Record<string, unknown>;
  version: string;
  boot_id: string;
  transport: string;
  draining: boolean;
  first_seen: number;
  last_seen: number;
  last_seq: number;
  samples: number;
  /** Of `samples`, those that arrived folded into 1-minute rollups. */
  rolled_up: number;
  batches: number;
  duplicates: number;
  /** Samples received again (same series and time), not stored twice. */
  duplicate_samples: number;
  gaps: number;
}

export interface StatusPolicy {
  suspectAfterMs: number;
  downAfterMs: number;
  restartGraceMs: number;
  /**
   * Longest share of each timeout added per node (0.1: up to 10%), the same for a node on every
   * start, so nodes silenced together (a hub restart, a site outage) do not expire together.
   */
  jitter?: number;
  /** How long a node key is good for before the hub asks for a new one (past expiry it still renews). */
  keyLifetimeMs: number;
  /**
   * Accept a protocol 1 credential's proof, once per node, to move it to a key. Those credentials
   * travelled in clear, so anyone who recorded the old traffic could claim the id: off by default,
   * on only for a migration window.
   */
  acceptLegacyCredentials?: boolean;
}

/** What the session layer proved about a peer. */
export interface PeerAuth {
  /** The static key the peer proved it holds. */
  key: Uint8Array;
  /** The session's handshake hash: proofs in the hello are bound to it. */
  hash: Uint8Array;
}

interface NodeRow {
  id: string;
  kind: string;
  level: number;
  labels: string;
  capabilities: string;
  resources: string;
  version: string;
  boot_id: string;
  transport: string;
  cred_hash: string | null;
  pubkey: string | null;
  prev_pubkey: string | null;
  rejoin_until: number | null;
  /** The key an operator reset took away: never bound again. */
  revoked_pubkey: string | null;
  /** The scope (levels, labels) of the join token that admitted the node: it holds for every later hello. */
  scope: string | null;
  draining: number;
  key_set_at: number;
  rotate_requested: number;
  first_seen: number;
  last_seen: number;
  last_seq: number;
  samples: number;
  /** Of `samples`, those that arrived folded into 1-minute rollups. */
  rolled_up: number;
  batches: number;
  duplicates: number;
  duplicate_samples: number;
  gaps: number;
}

/** Constant-time comparison of two secrets. */
export function secretsEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export type AdmitResult =
  | { ok: true; node: NodeRecord; keyExpires: number; rotate: boolean; joined: boolean }
  | { ok: false; reason: string; code?: "key_revoked" };

/**
 * Registry of nodes, backed by the hub database. Every node's row is kept in memory (read at `load`,
 * after each write of this registry, and by `refresh`, which picks up what ingest and other hubs on
 * the same store wrote), so the synchronous readers (the gateway, the monitor, placement's fleet
 * view) never wait for the store; `fresh` reads one row from the store. Liveness is kept in memory
 * and written with `flushSeen`.
 */
export class Registry {
  readonly #sql: HubSql;
  readonly #policy: StatusPolicy;
  readonly #startedAt: number;
  readonly #now: () => number;
  readonly #connected = new Map<string, string>();
  readonly #lastSeen = new Map<string, number>();
  /** Nodes heard from since their last-seen time was written. */
  readonly #seenDirty = new Set<string>();
  readonly #rtt = new Map<string, number>();
  readonly #uptime = new Map<string, { since: number; ms: number; at: number | undefined }>();
  /** Every node's row, as last read or written. */
  #rows = new Map<string, NodeRow>();
  #sorted: NodeRow[] | undefined;
  /** Counts this registry's writes; a row written after a refresh began is not replaced by what it read. */
  #writes = 0;
  readonly #writtenAt = new Map<string, number>();
  /** When each admitted node's key is due for rotation (0: asked by an operator). */
  readonly #rotateAt = new Map<string, number>();
  readonly joinTokens: JoinTokens;
  /** Each node's store epochs and the counters it reported from them. */
  readonly epochs: NodeEpochs;
  /** Told when a session starts (true) or ends (false): the failover monitor listens. */
  onLiveness: ((id: string, connected: boolean) => void) | undefined;
  /** Where a node's status comes from when set: the failover monitor, which writes it (hub/failover). */
  statusSource: ((id: string) => NodeStatus | undefined) | undefined;
  /**
   * Replicas: whether another live replica holds the node's session (hub/replicas). Such a node counts
   * as connected here, heard from when that replica last wrote its last-seen time.
   */
  elsewhere: ((id: string) => boolean) | undefined;

  constructor(sql: HubSql, policy: StatusPolicy, now: () => number = Date.now) {
    this.#sql = sql;
    this.#policy = policy;
    this.#now = now;
    this.#startedAt = now();
    this.joinTokens = new JoinTokens(sql);
    this.epochs = new NodeEpochs(sql, now);
  }

  /** Reads every node (and the join tokens the handshake proves) from the store; the hub awaits it before it takes sessions. */
  async load(): Promise<void> {
    await this.refresh();
  }

  /** Reads every node again: counters ingest wrote, and what another hub on the same store changed. */
  async refresh(): Promise<void> {
    const began = this.#writes;
    const rows = await this.#sql.all<NodeRow>("SELECT * FROM nodes");
    const next = new Map<string, NodeRow>();
    for (const r of rows) {
      // A row this registry wrote after the read began is newer than what the read saw.
      const mine = (this.#writtenAt.get(r.id) ?? 0) > began ? this.#rows.get(r.id) : undefined;
      next.set(r.id, mine ?? r);
    }
    for (const [id, at] of this.#writtenAt) {
      if (at > began && !next.has(id)) {
        const mine = this.#rows.get(id);
        if (mine) next.set(id, mine);
      }
    }
    this.#rows = next;
    this.#sorted = undefined;
    await this.joinTokens.refresh();
  }

  // Keeps a row this registry just wrote (read back in the writing transaction).
  #put(row: NodeRow | undefined): void {
    if (!row) return;
    this.#writtenAt.set(row.id, ++this.#writes);
    this.#rows.set(row.id, row);
    this.#sorted = undefined;
  }

  /** One node's row read from the store now (ingest's counters as committed), kept as the newest. */
  async fresh(id: string): Promise<NodeRecord | undefined> {
    const began = this.#writes;
    const row = await this.#sql.get<NodeRow>("SELECT * FROM nodes WHERE id = ?", [id]);
    if (!row) return undefined;
    // Kept only when nothing this registry wrote to the row since the read began is newer.
    if ((this.#writtenAt.get(id) ?? 0) <= began) {
      this.#rows.set(id, row);
      this.#sorted = undefined;
    }
    return this.#toRecord(row);
  }

  /**
   * Admits a hello on an authenticated session. The session proved the node holds `auth.key`; this
   * decides whether that key may speak for `hello.node_id`:
   * - the node's registered key (or the one before it, while a rotation is unconfirmed);
   * - a join token's proof, for a node id not registered yet (or one an operator reset);
   * - a protocol 1 credential's proof, once, for a node registered before keys existed.
   * One transaction, the node's row (or, for a new id, its name) locked: two hubs admitting one node
   * at once decide in turn.
   */
  async admit(hello: HelloBody, auth: PeerAuth, transport: string): Promise<AdmitResult> {
    const now = this.#now();
    const key = encodeKey(auth.key);
    const out = await this.#sql.tx(async (tx): Promise<{ result: AdmitResult; row?: NodeRow }> => {
      const lock = keyLock(tx.dialect);
      if (lock) await tx.get(lock, [`node:${hello.node_id}`]);
      const row = await tx.get<NodeRow>(`SELECT * FROM nodes WHERE id = ?${forUpdate(tx.dialect)}`, [
        hello.node_id,
      ]);
      let rotate = false;
      let bind = false;
      let scope: string | null = null;
      const join = async () => {
        if (!hello.join) return { ok: false as const, reason: "no join token proof given" };
        const j = await this.joinTokens.admit(tx, hello.join, auth.hash, hello, now);
        if (j.ok) scope = j.scope ? JSON.stringify(j.scope) : null;
        return j;
      };
      const refuse = (result: Extract<AdmitResult, { ok: false }>) => ({ result });
      // The admitting token's levels and labels bind the node for good, not just its first hello.
      if (row?.scope) {
        const out = outOfScope(JSON.parse(row.scope) as JoinScope, hello);
        if (out)
          return refuse({ ok: false, reason: `node ${row.id} was admitted by a join token that ${out}` });
      }
      if (row?.pubkey) {
        if (row.pubkey === key) {
          // The node proved its current key: a rotation before this one is complete.
          if (row.prev_pubkey) await tx.run("UPDATE nodes SET prev_pubkey = NULL WHERE id = ?", [row.id]);
        } else if (row.prev_pubkey === key) {
          rotate = true; // it never heard that its new key was recorded: it will offer it again
        } else {
          return refuse({
            ok: false,
            reason: `node ${row.id} is registered with another key; a join token admits new node ids only (an operator can reset its key)`,
          });
        }
      } else if (row?.cred_hash) {
        if (!this.#policy.acceptLegacyCredentials) {
          return refuse({
            ok: false,
            reason: `node ${row.id} was registered under protocol 1; this hub does not take protocol 1 credentials (--legacy-credentials), so an operator must reset its key`,
          });
        }
        if (!hello.legacy || !keysEqual(hello.legacy, legacyProof(row.cred_hash, auth.hash))) {
          return refuse({
            ok: false,
            reason: `node ${row.id} was registered under protocol 1: it must prove its old credential, or an operator must reset its key`,
          });
        }
        bind = true;
      } else if (row) {
        // Reset by an operator: a join token may claim the id again, within the window the reset gave.
        if ((row.rejoin_until ?? 0) < now) {
          return refuse({
            ok: false,
            reason: `node ${row.id} has no key; an operator must reset it before it can join again`,
          });
        }
        if (row.revoked_pubkey === key) {
          return refuse({
            ok: false,
            code: "key_revoked",
            reason: `the key of node ${row.id} was revoked by an operator; the node must make a new one`,
          });
        }
        const j = await join();
        if (!j.ok) return refuse(j);
        bind = true;
      } else {
        const j = await join();
        if (!j.ok) return refuse(j);
        bind = true;
      }
      const kind = hello.kind === "hub" ? "hub" : "agent";
      const labels = JSON.stringify(hello.labels);
      const caps = JSON.stringify(hello.capabilities);
      const res = JSON.stringify(hello.resources);
      await tx.run(
        `INSERT INTO nodes (id, kind, level, labels, capabilities, resources, version, boot_id, transport, pubkey, key_set_at, first_seen, last_seen)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, level = excluded.level, labels = excluded.labels,
           capabilities = excluded.capabilities, resources = excluded.resources, version = excluded.version,
           boot_id = excluded.boot_id, transport = excluded.transport, last_seen = excluded.last_seen`,
        [
          hello.node_id,
          kind,
          hello.level,
          labels,
          caps,
          res,
          hello.version,
          hello.boot_id,
          transport,
          key,
          now,
          now,
          now,
        ],
      );
      if (bind && row) {
        await tx.run(
          "UPDATE nodes SET pubkey = ?, prev_pubkey = NULL, cred_hash = NULL, key_set_at = ?, rejoin_until = NULL, scope = coalesce(?, scope) WHERE id = ?",
          [key, now, scope, row.id],
        );
      } else if (bind && scope) {
        await tx.run("UPDATE nodes SET scope = ? WHERE id = ?", [scope, hello.node_id]);
      }
      const fresh = (await tx.get<NodeRow>("SELECT * FROM nodes WHERE id = ?", [hello.node_id]))!;
      const expires = fresh.key_set_at + this.#policy.keyLifetimeMs;
      return {
        result: { ok: true, node: this.#toRecord(fresh), keyExpires: expires, rotate, joined: bind },
        row: fresh,
      };
    });
    const { result, row } = out;
    if (result.ok && row) {
      this.#put(row);
      const rotateAt = row.rotate_requested !== 0 ? 0 : this.#rotationPoint(row.key_set_at);
      this.#rotateAt.set(row.id, rotateAt);
      if (now > rotateAt) result.rotate = true;
      this.#lastSeen.set(row.id, now);
      result.node = this.#toRecord(row);
    }
    return result;
  }

  /** A hello naming a store epoch (see NodeEpochs.hello), in a transaction of its own. */
  epochHello(
    node: string,
    epoch: string,
    seqHigh: number,
    storedSeq: number,
    storedSamples: number,
  ): Promise<EpochVerdict> {
    return this.#sql.tx((tx) => this.epochs.hello(tx, node, epoch, seqHigh, storedSeq, storedSamples));
  }

  /** Whether a session with `key` could ever be admitted as `node` (checked before a session replaces another). */
  mayClaim(node: string, key: Uint8Array): boolean {
    const row = this.#rows.get(node);
    if (!row?.pubkey) return true;
    const k = encodeKey(key);
    return row.pubkey === k || row.prev_pubkey === k;
  }

  /** Whether `key` is the node's registered key (or the one before it) now, as this registry holds it. */
  holdsKey(node: string, key: Uint8Array): boolean {
    const row = this.#rows.get(node);
    const k = encodeKey(key);
    return row?.pubkey === k || row?.prev_pubkey === k;
  }

  /**
   * Records a node's new key, offered inside a session that proved `current`. The old key stays
   * valid until the node first proves the new one. Returns the new key's expiry, or why not.
   */
  async rekey(
    node: string,
    current: Uint8Array,
    next: Uint8Array,
  ): Promise<{ ok: true; expires: number } | { ok: false; reason: string }> {
    const now = this.#now();
    const cur = encodeKey(current);
    const nxt = encodeKey(next);
    const out = await this.#sql.tx(async (tx) => {
      const row = await tx.get<NodeRow>(`SELECT * FROM nodes WHERE id = ?${forUpdate(tx.dialect)}`, [node]);
      if (!row) return { ok: false as const, reason: `node ${node} is not registered` };
      if (row.pubkey === nxt)
        return { ok: true as const, expires: row.key_set_at + this.#policy.keyLifetimeMs, row };
      // Only the current key rotates: a previous one (still taken for a session until the node proves
      // its new key) could otherwise be used by whoever stole it to take the id back.
      if (row.pubkey !== cur)
        return { ok: false as const, reason: "only the node's current key can rotate it" };
      await tx.run(
        "UPDATE nodes SET prev_pubkey = ?, pubkey = ?, key_set_at = ?, rotate_requested = 0 WHERE id = ?",
        [cur, nxt, now, node],
      );
      const fresh = await tx.get<NodeRow>("SELECT * FROM nodes WHERE id = ?", [node]);
      return { ok: true as const, expires: now + this.#policy.keyLifetimeMs, row: fresh, rotated: true };
    });
    if (!out.ok) return out;
    this.#put(out.row);
    if ("rotated" in out) this.#rotateAt.set(node, this.#rotationPoint(now));
    return { ok: true, expires: out.expires };
  }

  /**
   * Whether a node with a session should be asked to rotate its key now. Asked on every heartbeat,
   * so it reads memory (set when the node was admitted), not the database.
   */
  rotationDue(node: string): boolean {
    const at = this.#rotateAt.get(node);
    return at !== undefined && this.#now() > at;
  }

  // A key is renewed once two thirds of its lifetime have passed.
  #rotationPoint(keySetAt: number): number {
    return keySetAt + (this.#policy.keyLifetimeMs * 2) / 3;
  }

  // One statement on a node's row, then the row kept as written; false for an unknown node.
  async #update(node: string, sql: string, params: (string | number | null)[]): Promise<boolean> {
    const row = await this.#sql.tx(async (tx) => {
      if ((await tx.run(sql, params)).changes === 0) return undefined;
      return tx.get<NodeRow>("SELECT * FROM nodes WHERE id = ?", [node]);
    });
    this.#put(row);
    return row !== undefined;
  }

  /** An operator asks a node to rotate its key (at its next heartbeat or session). */
  async requestRotation(node: string): Promise<boolean> {
    const asked = await this.#update(node, "UPDATE nodes SET rotate_requested = 1 WHERE id = ?", [node]);
    if (asked && this.#rotateAt.has(node)) this.#rotateAt.set(node, 0);
    return asked;
  }

  /**
   * An operator forgets a node's key: for `windowMs` a join token may claim the id again (a node
   * rebuilt from scratch, a stolen key). Until then nobody can speak for it.
   */
  async resetKey(node: string, windowMs: number): Promise<boolean> {
    this.#rotateAt.delete(node);
    return this.#update(
      node,
      "UPDATE nodes SET revoked_pubkey = coalesce(pubkey, revoked_pubkey), pubkey = NULL, prev_pubkey = NULL, cred_hash = NULL, rotate_requested = 0, rejoin_until = ? WHERE id = ?",
      [this.#now() + windowMs, node],
    );
  }

  /** A node's key and when it was set, for the API. */
  keyInfo(
    node: string,
  ): { public_key: string | null; key_set_at: number; key_expires: number | null } | undefined {
    const row = this.#rows.get(node);
    if (!row) return undefined;
    return {
      public_key: row.pubkey,
      key_set_at: row.key_set_at,
      key_expires: row.pubkey ? row.key_set_at + this.#policy.keyLifetimeMs : null,
    };
  }

  /** Records the round trip the node measured to this hub (from its heartbeats). */
  setRtt(id: string, rttMs: number): void {
    this.#rtt.set(id, rttMs);
  }

  /** Last hub round trip the node reported, in ms. */
  rtt(id: string): number | undefined {
    return this.#rtt.get(id);
  }

  /**
   * Share of time the node was connected since this hub started (or since it first appeared, if
   * later), 0..1. A hub that just started knows little: an unseen node counts as 0.
   */
  availability(id: string): number {
    const now = this.#now();
    const up = this.#uptime.get(id);
    if (!up) return 0;
    const total = now - up.since;
    if (total <= 0) return this.#connected.has(id) ? 1 : 0;
    const connectedMs = up.ms + (up.at !== undefined ? now - up.at : 0);
    return Math.min(1, connectedMs / total);
  }

  /** Marks a node connected through `via` (ws, mqtt). */
  setConnected(id: string, via: string): void {
    this.#connected.set(id, via);
    const up = this.#uptime.get(id) ?? { since: this.#now(), ms: 0, at: undefined };
    up.at ??= this.#now();
    this.#uptime.set(id, up);
    this.onLiveness?.(id, true);
  }

  /** Marks a node disconnected, keeping its last-seen time (written with the next flushSeen). */
  setDisconnected(id: string): void {
    this.#connected.delete(id);
    const up = this.#uptime.get(id);
    if (up?.at !== undefined) {
      up.ms += this.#now() - up.at;
      up.at = undefined;
    }
    this.#seenDirty.add(id);
    this.onLiveness?.(id, false);
  }

  isConnected(id: string): boolean {
    return this.#connected.has(id) || (this.elsewhere?.(id) ?? false);
  }

  /** Marks a node draining (placement leaves it alone) or not; false for an unknown node. */
  setDraining(id: string, draining: boolean): Promise<boolean> {
    return this.#update(id, "UPDATE nodes SET draining = ? WHERE id = ?", [draining ? 1 : 0, id]);
  }

  /** Records that a node was heard from; persisted lazily (every few seconds, and on disconnect). */
  seen(id: string): void {
    this.#lastSeen.set(id, this.#now());
    this.#seenDirty.add(id);
  }

  /** When the node was last heard from since this process started: by it, or by another hub on the store. */
  lastHeard(id: string): number | undefined {
    const here = this.#lastSeen.get(id);
    // Another hub on the same store (a replica holding the session) writes it every few seconds; read
    // here every 2 s. Only times since this process started count, as for its own.
    const stored = this.#rows.get(id)?.last_seen;
    return stored !== undefined && stored > this.#startedAt ? Math.max(stored, here ?? 0) : here;
  }

  /** Writes in-memory last-seen times (and counters reported in heartbeats) to the database, in one transaction. */
  async flushSeen(): Promise<void> {
    const ids = [...this.#seenDirty].sort();
    this.#seenDirty.clear();
    let written: EpochReports = [];
    try {
      await this.#sql.tx(async (tx) => {
        const seen = ids.flatMap((id) => {
          const t = this.#lastSeen.get(id);
          return t === undefined ? [] : [[id, t] as [string, number]];
        });
        if (tx.dialect === "postgres") {
          // The rows locked first, in the order ingest's groups lock them: the UPDATE below would
          // take them in whatever order its plan visits them, and two orders can deadlock.
          for (let i = 0; i < seen.length; i += 500) {
            const part = seen.slice(i, i + 500);
            await tx.all(
              `SELECT id FROM nodes WHERE id IN (${part.map(() => "?").join(", ")}) ORDER BY ${textOrder(tx.dialect, "id")} FOR UPDATE`,
              part.map(([id]) => id),
            );
          }
          for (let i = 0; i < seen.length; i += 500) {
            const part = seen.slice(i, i + 500);
            await tx.run(
              `UPDATE nodes AS n SET last_seen = GREATEST(n.last_seen, v.t)
               FROM (VALUES ${part.map(() => "(?::text, ?::bigint)").join(", ")}) AS v(id, t) WHERE n.id = v.id`,
              part.flat(),
            );
          }
        } else {
          for (const [id, t] of seen)
            await tx.run("UPDATE nodes SET last_seen = max(last_seen, ?) WHERE id = ?", [t, id]);
        }
        written = await this.epochs.flush(tx);
      });
      // Forgotten only once stored: a commit that failed leaves the reports for the next flush.
      this.epochs.flushed(written);
    } catch (err) {
      // Written with the next flush.
      for (const id of ids) this.#seenDirty.add(id);
      throw err;
    }
  }

  get(id: string): NodeRecord | undefined {
    const row = this.#rows.get(id);
    return row ? this.#toRecord(row) : undefined;
  }

  /** Number of nodes the hub knows, connected or not. */
  count(): number {
    return this.#rows.size;
  }

  /** Every node, by id. */
  list(): NodeRecord[] {
    this.#sorted ??= [...this.#rows.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return this.#sorted.map((r) => this.#toRecord(r));
  }

  /**
   * Health status from connection and silence, with a grace period after a hub restart. Each
   * node's timeouts carry its own jitter, so nodes silenced together do not expire together.
   */
  status(node: NodeRecord): NodeStatus {
    if (node.draining) return "draining";
    const written = this.statusSource?.(node.id);
    if (written) return written;
    const now = this.#now();
    const silent = now - Math.max(node.last_seen, this.#startedAt);
    const jitter = this.#policy.jitter ? detectionJitter(node.id) * this.#policy.jitter : 0;
    if (this.isConnected(node.id) && silent < this.#policy.suspectAfterMs * (1 + jitter)) return "ready";
    const sinceStart = now - this.#startedAt;
    const downAfter = this.#policy.downAfterMs * (1 + jitter);
    if (silent > downAfter && sinceStart > this.#policy.restartGraceMs * (1 + jitter)) return "down";
    return "suspect";
  }

  #toRecord(row: NodeRow): NodeRecord {
    return {
      id: row.id,
      kind: row.kind === "hub" ? "hub" : "agent",
      level: row.level,
      labels: JSON.parse(row.labels),
      capabilities: JSON.parse(row.capabilities),
      resources: JSON.parse(row.resources),
      version: row.version,
      boot_id: row.boot_id,
      transport: row.transport,
      draining: row.draining !== 0,
      first_seen: row.first_seen,
      last_seen: Math.max(row.last_seen, this.#lastSeen.get(row.id) ?? 0),
      last_seq: row.last_seq,
      samples: row.samples,
      rolled_up: row.rolled_up,
      batches: row.batches,
      duplicates: row.duplicates,
      duplicate_samples: row.duplicate_samples,
      gaps: row.gaps,
    };
  }
}

/** A node's place in the jitter range: stable per id, spread evenly over [0, 1). */
export function detectionJitter(id: string): number {
  // FNV-1a: cheap, and the same on every hub restart (a node's timeout does not move around).
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  // MurmurHash3's finaliser: ids that differ in their last character land far apart.
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 0x1_0000_0000;
}

// The node registry: identity, credentials, liveness and health status of every node.
import type { Database, Statement } from "bun:sqlite";
import { timingSafeEqual } from "node:crypto";
import type { HelloBody } from "../../shared/protocol/index.ts";
import { encodeKey, keysEqual, legacyProof } from "../../shared/secure/index.ts";
import { type HubSql, wrapSqlite } from "../store/sql/index.ts";
import { type JoinScope, JoinTokens, outOfScope } from "./join-tokens.ts";
import { NodeEpochs } from "./node-epochs.ts";

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

interface KeyRow {
  pubkey: string | null;
  prev_pubkey: string | null;
  key_set_at: number;
  rotate_requested: number;
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

/** Registry of nodes, backed by the hub database; liveness is kept in memory and flushed on change. */
export class Registry {
  readonly #db: Database;
  readonly #policy: StatusPolicy;
  readonly #startedAt: number;
  readonly #now: () => number;
  readonly #connected = new Map<string, string>();
  readonly #lastSeen = new Map<string, number>();
  readonly #rtt = new Map<string, number>();
  readonly #uptime = new Map<string, { since: number; ms: number; at: number | undefined }>();
  readonly #get: Statement;
  readonly #all: Statement;
  readonly #touch: Statement;
  readonly #keys: Statement;
  /** When each admitted node's key is due for rotation (0: asked by an operator). */
  readonly #rotateAt = new Map<string, number>();
  readonly joinTokens: JoinTokens;
  /** Each node's store epochs and the counters it reported from them. */
  readonly epochs: NodeEpochs;
  /** Told when a session starts (true) or ends (false): the failover monitor listens. */
  onLiveness: ((id: string, connected: boolean) => void) | undefined;
  /** Where a node's status comes from when set: the failover monitor, which writes it (hub/failover). */
  statusSource: ((id: string) => NodeStatus | undefined) | undefined;

  /** `sql`: the async store the ported parts use (join tokens' operator side); HubSql over `db` by default. */
  constructor(
    db: Database,
    policy: StatusPolicy,
    now: () => number = Date.now,
    sql: HubSql = wrapSqlite(db),
  ) {
    this.#db = db;
    this.#policy = policy;
    this.#now = now;
    this.#startedAt = now();
    this.#get = db.query("SELECT * FROM nodes WHERE id = ?");
    this.#all = db.query("SELECT * FROM nodes ORDER BY id");
    this.#touch = db.query("UPDATE nodes SET last_seen = ? WHERE id = ?");
    this.#keys = db.query("SELECT pubkey, prev_pubkey, key_set_at, rotate_requested FROM nodes WHERE id = ?");
    this.joinTokens = new JoinTokens(db, sql);
    this.epochs = new NodeEpochs(db, now);
  }

  /**
   * Admits a hello on an authenticated session. The session proved the node holds `auth.key`; this
   * decides whether that key may speak for `hello.node_id`:
   * - the node's registered key (or the one before it, while a rotation is unconfirmed);
   * - a join token's proof, for a node id not registered yet (or one an operator reset);
   * - a protocol 1 credential's proof, once, for a node registered before keys existed.
   */
  admit(hello: HelloBody, auth: PeerAuth, transport: string): AdmitResult {
    const now = this.#now();
    const key = encodeKey(auth.key);
    const row = this.#get.get(hello.node_id) as NodeRow | null;
    const tx = this.#db.transaction((): AdmitResult => {
      let rotate = false;
      let bind = false;
      let scope: string | null = null;
      const join = () => {
        if (!hello.join) return { ok: false as const, reason: "no join token proof given" };
        const j = this.joinTokens.admit(hello.join, auth.hash, hello, now);
        if (j.ok) scope = j.scope ? JSON.stringify(j.scope) : null;
        return j;
      };
      // The admitting token's levels and labels bind the node for good, not just its first hello.
      if (row?.scope) {
        const out = outOfScope(JSON.parse(row.scope) as JoinScope, hello);
        if (out) return { ok: false, reason: `node ${row.id} was admitted by a join token that ${out}` };
      }
      if (row?.pubkey) {
        if (row.pubkey === key) {
          // The node proved its current key: a rotation before this one is complete.
          if (row.prev_pubkey) this.#db.query("UPDATE nodes SET prev_pubkey = NULL WHERE id = ?").run(row.id);
        } else if (row.prev_pubkey === key) {
          rotate = true; // it never heard that its new key was recorded: it will offer it again
        } else {
          return {
            ok: false,
            reason: `node ${row.id} is registered with another key; a join token admits new node ids only (an operator can reset its key)`,
          };
        }
      } else if (row?.cred_hash) {
        if (!this.#policy.acceptLegacyCredentials) {
          return {
            ok: false,
            reason: `node ${row.id} was registered under protocol 1; this hub does not take protocol 1 credentials (--legacy-credentials), so an operator must reset its key`,
          };
        }
        if (!hello.legacy || !keysEqual(hello.legacy, legacyProof(row.cred_hash, auth.hash))) {
          return {
            ok: false,
            reason: `node ${row.id} was registered under protocol 1: it must prove its old credential, or an operator must reset its key`,
          };
        }
        bind = true;
      } else if (row) {
        // Reset by an operator: a join token may claim the id again, within the window the reset gave.
        if ((row.rejoin_until ?? 0) < now) {
          return {
            ok: false,
            reason: `node ${row.id} has no key; an operator must reset it before it can join again`,
          };
        }
        if (row.revoked_pubkey === key) {
          return {
            ok: false,
            code: "key_revoked",
            reason: `the key of node ${row.id} was revoked by an operator; the node must make a new one`,
          };
        }
        const j = join();
        if (!j.ok) return j;
        bind = true;
      } else {
        const j = join();
        if (!j.ok) return j;
        bind = true;
      }
      this.#db
        .query(
          `INSERT INTO nodes (id, kind, level, labels, capabilities, resources, version, boot_id, transport, pubkey, key_set_at, first_seen, last_seen)
           VALUES ($id, $kind, $level, $labels, $caps, $res, $version, $boot, $transport, $key, $now, $now, $now)
           ON CONFLICT(id) DO UPDATE SET kind = $kind, level = $level, labels = $labels, capabilities = $caps, resources = $res,
             version = $version, boot_id = $boot, transport = $transport, last_seen = $now`,
        )
        .run({
          id: hello.node_id,
          kind: hello.kind === "hub" ? "hub" : "agent",
          level: hello.level,
          labels: JSON.stringify(hello.labels),
          caps: JSON.stringify(hello.capabilities),
          res: JSON.stringify(hello.resources),
          version: hello.version,
          boot: hello.boot_id,
          transport,
          key,
          now,
        });
      if (bind && row) {
        this.#db
          .query(
            "UPDATE nodes SET pubkey = ?, prev_pubkey = NULL, cred_hash = NULL, key_set_at = ?, rejoin_until = NULL, scope = coalesce(?, scope) WHERE id = ?",
          )
          .run(key, now, scope, row.id);
      } else if (bind && scope) {
        this.#db.query("UPDATE nodes SET scope = ? WHERE id = ?").run(scope, hello.node_id);
      }
      const keys = this.#keyRow(hello.node_id)!;
      const expires = keys.key_set_at + this.#policy.keyLifetimeMs;
      const rotateAt = keys.rotate_requested !== 0 ? 0 : this.#rotationPoint(keys.key_set_at);
      this.#rotateAt.set(hello.node_id, rotateAt);
      rotate ||= now > rotateAt;
      return { ok: true, node: this.get(hello.node_id)!, keyExpires: expires, rotate, joined: bind };
    });
    const result = tx();
    if (result.ok) this.#lastSeen.set(hello.node_id, now);
    return result;
  }

  /** Whether a session with `key` could ever be admitted as `node` (checked before a session replaces another). */
  mayClaim(node: string, key: Uint8Array): boolean {
    const row = this.#keyRow(node);
    if (!row?.pubkey) return true;
    const k = encodeKey(key);
    return row.pubkey === k || row.prev_pubkey === k;
  }

  /**
   * Records a node's new key, offered inside a session that proved `current`. The old key stays
   * valid until the node first proves the new one. Returns the new key's expiry, or why not.
   */
  rekey(
    node: string,
    current: Uint8Array,
    next: Uint8Array,
  ): { ok: true; expires: number } | { ok: false; reason: string } {
    const now = this.#now();
    const row = this.#keyRow(node);
    const cur = encodeKey(current);
    const nxt = encodeKey(next);
    if (!row) return { ok: false, reason: `node ${node} is not registered` };
    if (row.pubkey === nxt) return { ok: true, expires: row.key_set_at + this.#policy.keyLifetimeMs };
    // Only the current key rotates: a previous one (still taken for a session until the node proves
    // its new key) could otherwise be used by whoever stole it to take the id back.
    if (row.pubkey !== cur) return { ok: false, reason: "only the node's current key can rotate it" };
    this.#db
      .query(
        "UPDATE nodes SET prev_pubkey = ?, pubkey = ?, key_set_at = ?, rotate_requested = 0 WHERE id = ?",
      )
      .run(cur, nxt, now, node);
    this.#rotateAt.set(node, this.#rotationPoint(now));
    return { ok: true, expires: now + this.#policy.keyLifetimeMs };
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

  /** An operator asks a node to rotate its key (at its next heartbeat or session). */
  requestRotation(node: string): boolean {
    const asked = this.#db.query("UPDATE nodes SET rotate_requested = 1 WHERE id = ?").run(node).changes > 0;
    if (asked && this.#rotateAt.has(node)) this.#rotateAt.set(node, 0);
    return asked;
  }

  /**
   * An operator forgets a node's key: for `windowMs` a join token may claim the id again (a node
   * rebuilt from scratch, a stolen key). Until then nobody can speak for it.
   */
  resetKey(node: string, windowMs: number): boolean {
    this.#rotateAt.delete(node);
    return (
      this.#db
        .query(
          "UPDATE nodes SET revoked_pubkey = coalesce(pubkey, revoked_pubkey), pubkey = NULL, prev_pubkey = NULL, cred_hash = NULL, rotate_requested = 0, rejoin_until = ? WHERE id = ?",
        )
        .run(this.#now() + windowMs, node).changes > 0
    );
  }

  /** A node's key and when it was set, for the API. */
  keyInfo(
    node: string,
  ): { public_key: string | null; key_set_at: number; key_expires: number | null } | undefined {
    const row = this.#keyRow(node);
    if (!row) return undefined;
    return {
      public_key: row.pubkey,
      key_set_at: row.key_set_at,
      key_expires: row.pubkey ? row.key_set_at + this.#policy.keyLifetimeMs : null,
    };
  }

  #keyRow(node: string): KeyRow | undefined {
    return (this.#keys.get(node) as KeyRow | null) ?? undefined;
  }

  /** Marks a node connected through `via` (ws, mqtt). */
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

  setConnected(id: string, via: string): void {
    this.#connected.set(id, via);
    const up = this.#uptime.get(id) ?? { since: this.#now(), ms: 0, at: undefined };
    up.at ??= this.#now();
    this.#uptime.set(id, up);
    this.onLiveness?.(id, true);
  }

  /** Marks a node disconnected, keeping its last-seen time. */
  setDisconnected(id: string): void {
    this.#connected.delete(id);
    const up = this.#uptime.get(id);
    if (up?.at !== undefined) {
      up.ms += this.#now() - up.at;
      up.at = undefined;
    }
    this.#flushSeen(id);
    this.onLiveness?.(id, false);
  }

  isConnected(id: string): boolean {
    return this.#connected.has(id);
  }

  /** Marks a node draining (placement leaves it alone) or not; false for an unknown node. */
  setDraining(id: string, draining: boolean): boolean {
    return this.#db.query("UPDATE nodes SET draining = ? WHERE id = ?").run(draining ? 1 : 0, id).changes > 0;
  }

  /** Records that a node was heard from; persisted lazily (every few seconds, and on disconnect). */
  seen(id: string): void {
    this.#lastSeen.set(id, this.#now());
  }

  /** When the node was last heard from by this hub process (memory only; undefined: not since start). */
  lastHeard(id: string): number | undefined {
    return this.#lastSeen.get(id);
  }

  /** Writes in-memory last-seen times (and counters reported in heartbeats) to the database. */
  flushSeen(): void {
    const tx = this.#db.transaction(() => {
      for (const id of this.#lastSeen.keys()) this.#flushSeen(id);
      this.epochs.flush();
    });
    tx();
  }

  #flushSeen(id: string): void {
    const t = this.#lastSeen.get(id);
    if (t !== undefined) this.#touch.run(t, id);
  }

  get(id: string): NodeRecord | undefined {
    const row = this.#get.get(id) as NodeRow | null;
    return row ? this.#toRecord(row) : undefined;
  }

  /** Number of nodes the hub knows, connected or not. */
  count(): number {
    return (this.#db.query("SELECT count(*) AS n FROM nodes").get() as { n: number }).n;
  }

  list(): NodeRecord[] {
    return (this.#all.all() as NodeRow[]).map((r) => this.#toRecord(r));
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
    if (this.#connected.has(node.id) && silent < this.#policy.suspectAfterMs * (1 + jitter)) return "ready";
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

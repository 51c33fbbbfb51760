// The node registry: identity, credentials, liveness and health status of every node.
import type { Database, Statement } from "bun:sqlite";
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { HelloBody } from "../../shared/protocol/index.ts";

export type NodeStatus = "ready" | "suspect" | "down" | "draining";

export interface NodeRecord {
  id: string;
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
  gaps: number;
}

export interface StatusPolicy {
  suspectAfterMs: number;
  downAfterMs: number;
  restartGraceMs: number;
}

interface NodeRow {
  id: string;
  level: number;
  labels: string;
  capabilities: string;
  resources: string;
  version: string;
  boot_id: string;
  transport: string;
  cred_hash: string | null;
  draining: number;
  first_seen: number;
  last_seen: number;
  last_seq: number;
  samples: number;
  /** Of `samples`, those that arrived folded into 1-minute rollups. */
  rolled_up: number;
  batches: number;
  duplicates: number;
  gaps: number;
}

const hash = (secret: string) => createHash("sha256").update(secret).digest("hex");

/** Constant-time comparison of two secrets. */
export function secretsEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export type AdmitResult = { ok: true; credential?: string; node: NodeRecord } | { ok: false; reason: string };

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

  constructor(db: Database, policy: StatusPolicy, now: () => number = Date.now) {
    this.#db = db;
    this.#policy = policy;
    this.#now = now;
    this.#startedAt = now();
    this.#get = db.query("SELECT * FROM nodes WHERE id = ?");
    this.#all = db.query("SELECT * FROM nodes ORDER BY id");
    this.#touch = db.query("UPDATE nodes SET last_seen = ? WHERE id = ?");
  }

  /**
   * Authenticates a hello and records the node. A known credential, or the join token (which
   * issues a fresh per-node credential, stored hashed), admits it.
   */
  admit(hello: HelloBody, joinToken: string, transport: string): AdmitResult {
    const row = this.#get.get(hello.node_id) as NodeRow | null;
    let credential: string | undefined;
    if (hello.credential && row?.cred_hash && secretsEqual(hash(hello.credential), row.cred_hash)) {
      // known node, valid credential
    } else if (hello.join_token && joinToken && secretsEqual(hello.join_token, joinToken)) {
      credential = randomBytes(24).toString("base64url");
    } else if (hello.credential && !hello.join_token) {
      return { ok: false, reason: `credential for node ${hello.node_id} is not valid` };
    } else {
      return {
        ok: false,
        reason: hello.join_token ? "join token is not valid" : "no join token or credential given",
      };
    }
    const now = this.#now();
    this.#db
      .query(
        `INSERT INTO nodes (id, level, labels, capabilities, resources, version, boot_id, transport, cred_hash, first_seen, last_seen)
         VALUES ($id, $level, $labels, $caps, $res, $version, $boot, $transport, $cred, $now, $now)
         ON CONFLICT(id) DO UPDATE SET level = $level, labels = $labels, capabilities = $caps, resources = $res,
           version = $version, boot_id = $boot, transport = $transport, last_seen = $now,
           cred_hash = coalesce($cred, cred_hash)`,
      )
      .run({
        id: hello.node_id,
        level: hello.level,
        labels: JSON.stringify(hello.labels),
        caps: JSON.stringify(hello.capabilities),
        res: JSON.stringify(hello.resources),
        version: hello.version,
        boot: hello.boot_id,
        transport,
        cred: credential ? hash(credential) : null,
        now,
      });
    this.#lastSeen.set(hello.node_id, now);
    const node = this.get(hello.node_id)!;
    return credential ? { ok: true, credential, node } : { ok: true, node };
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
  }

  isConnected(id: string): boolean {
    return this.#connected.has(id);
  }

  /** Records that a node was heard from; persisted lazily (every few seconds, and on disconnect). */
  seen(id: string): void {
    this.#lastSeen.set(id, this.#now());
  }

  /** Writes in-memory last-seen times to the database. */
  flushSeen(): void {
    const tx = this.#db.transaction(() => {
      for (const id of this.#lastSeen.keys()) this.#flushSeen(id);
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

  list(): NodeRecord[] {
    return (this.#all.all() as NodeRow[]).map((r) => this.#toRecord(r));
  }

  /** Health status from connection and silence, with a grace period after a hub restart. */
  status(node: NodeRecord): NodeStatus {
    if (node.draining) return "draining";
    const now = this.#now();
    const silent = now - Math.max(node.last_seen, this.#startedAt);
    if (this.#connected.has(node.id) && silent < this.#policy.suspectAfterMs) return "ready";
    const sinceStart = now - this.#startedAt;
    if (silent > this.#policy.downAfterMs && sinceStart > this.#policy.restartGraceMs) return "down";
    return "suspect";
  }

  #toRecord(row: NodeRow): NodeRecord {
    return {
      id: row.id,
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
      gaps: row.gaps,
    };
  }
}

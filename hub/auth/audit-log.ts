// The audit log: append-only, each entry chained to the one before by SHA-256; verify finds the first bad entry.
import type { Database } from "bun:sqlite";
import { createHash } from "node:crypto";

/** One entry as stored and listed. `before`/`after` are SHA-256 digests of the object's state (hex), or null. */
export interface AuditEntry {
  seq: number;
  at: number;
  /** `token:<name>`, `bootstrap`, or `hub` for the hub's own decisions. */
  actor: string;
  /** `POST /api/v1/workloads` for a change through the API; `failover.mark_lost`, `placement.place`, ... */
  action: string;
  /** What changed: `workloads/web`, `nodes/n1/drain`, `allocs/<id>`. */
  object: string;
  before: string | null;
  after: string | null;
  /** The HTTP status of an API change; null for the hub's decisions. */
  status: number | null;
  /** Why, for the hub's decisions (the reconciler's reason); null for API changes. */
  detail: string | null;
  prev_hash: string;
  hash: string;
}

export type AuditInput = Omit<AuditEntry, "seq" | "at" | "prev_hash" | "hash" | "status" | "detail"> &
  Partial<Pick<AuditEntry, "status" | "detail">>;

export interface AuditQuery {
  since?: number;
  until?: number;
  actor?: string;
  /** The object itself or anything under it (`workloads/web` finds `workloads/web/promote`). */
  object?: string;
  limit?: number;
}

export type VerifyResult =
  | { ok: true; entries: number }
  | { ok: false; entries: number; first_bad: { seq: number; reason: string } };

const GENESIS = "0".repeat(64);

/** A SHA-256 digest (hex) of some state; null stays null. */
export function stateDigest(state: string | null | undefined): string | null {
  return state === null || state === undefined ? null : createHash("sha256").update(state).digest("hex");
}

function entryHash(e: Omit<AuditEntry, "hash">): string {
  const fields = [
    e.seq,
    e.at,
    e.actor,
    e.action,
    e.object,
    e.before,
    e.after,
    e.status,
    e.detail,
    e.prev_hash,
  ];
  return createHash("sha256").update(JSON.stringify(fields)).digest("hex");
}

/** The `audit_log` table (rows may be added, never changed: triggers refuse UPDATE and DELETE). */
export class AuditLog {
  readonly #db: Database;
  readonly #now: () => number;

  constructor(db: Database, now: () => number) {
    this.#db = db;
    this.#now = now;
    db.run(`CREATE TABLE IF NOT EXISTS audit_log (
      seq INTEGER PRIMARY KEY,
      at INTEGER NOT NULL,
      actor TEXT NOT NULL,
      action TEXT NOT NULL,
      object TEXT NOT NULL,
      before TEXT,
      after TEXT,
      status INTEGER,
      detail TEXT,
      prev_hash TEXT NOT NULL,
      hash TEXT NOT NULL
    )`);
    db.run("CREATE INDEX IF NOT EXISTS audit_log_by_time ON audit_log (at)");
    // The newest seq and hash, written with each entry: a deleted last entry shows as a gap here.
    db.run(
      "CREATE TABLE IF NOT EXISTS audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL)",
    );
    db.run(`CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
      BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END`);
    db.run(`CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
      BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END`);
  }

  /** Appends one entry, chained to the newest. */
  append(input: AuditInput): AuditEntry {
    return this.#db.transaction(() => {
      const head = this.#db.query("SELECT seq, hash FROM audit_head WHERE id = 1").get() as {
        seq: number;
        hash: string;
      } | null;
      const base = {
        seq: (head?.seq ?? 0) + 1,
        at: this.#now(),
        actor: input.actor,
        action: input.action,
        object: input.object,
        before: input.before,
        after: input.after,
        status: input.status ?? null,
        detail: input.detail ?? null,
        prev_hash: head?.hash ?? GENESIS,
      };
      const entry: AuditEntry = { ...base, hash: entryHash(base) };
      this.#db
        .query(
          `INSERT INTO audit_log (seq, at, actor, action, object, before, after, status, detail, prev_hash, hash)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          entry.seq,
          entry.at,
          entry.actor,
          entry.action,
          entry.object,
          entry.before,
          entry.after,
          entry.status,
          entry.detail,
          entry.prev_hash,
          entry.hash,
        );
      this.#db
        .query(
          "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        )
        .run(entry.seq, entry.hash);
      return entry;
    })();
  }

  /** Entries matching the query, newest first. */
  query(q: AuditQuery = {}): AuditEntry[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    const add = (clause: string, ...values: (string | number)[]) => {
      where.push(clause);
      args.push(...values);
    };
    if (q.since !== undefined) add("at >= ?", q.since);
    if (q.until !== undefined) add("at <= ?", q.until);
    if (q.actor !== undefined) add("actor = ?", q.actor);
    if (q.object !== undefined) {
      add("(object = ? OR substr(object, 1, ?) = ?)", q.object, q.object.length + 1, `${q.object}/`);
    }
    const sql = `SELECT * FROM audit_log ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY seq DESC LIMIT ?`;
    return this.#db.query(sql).all(...args, q.limit ?? 100) as AuditEntry[];
  }

  /** Walks the chain from the first entry: a missing, reordered or edited entry is named with its seq. */
  verify(): VerifyResult {
    let expected = 1;
    let prev = GENESIS;
    let count = 0;
    const bad = (seq: number, reason: string): VerifyResult => ({
      ok: false,
      entries: count,
      first_bad: { seq, reason },
    });
    for (const row of this.#db
      .query("SELECT * FROM audit_log ORDER BY seq")
      .iterate() as Iterable<AuditEntry>) {
      count++;
      if (row.seq !== expected)
        return bad(expected, `entry ${expected} is missing (the next entry is ${row.seq})`);
      if (row.prev_hash !== prev)
        return bad(row.seq, `its prev_hash does not match the hash of entry ${row.seq - 1}`);
      const { hash, ...rest } = row;
      if (entryHash(rest) !== hash) return bad(row.seq, "its contents do not match its hash (edited)");
      prev = hash;
      expected++;
    }
    const head = this.#db.query("SELECT seq, hash FROM audit_head WHERE id = 1").get() as {
      seq: number;
      hash: string;
    } | null;
    if (head && head.seq >= expected)
      return bad(expected, `entry ${expected} is missing (${head.seq} entries were written)`);
    if (head && head.seq === expected - 1 && head.hash !== prev)
      return bad(head.seq, "its hash differs from the one recorded when it was written");
    return { ok: true, entries: count };
  }
}

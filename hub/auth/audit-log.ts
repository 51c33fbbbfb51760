// The audit log: append-only, each entry chained to the one before by SHA-256; verify finds the first bad entry.
import { createHash } from "node:crypto";
import { forUpdate, type HubSql } from "../store/sql/index.ts";

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

/** Rows read per query while the chain is verified. */
const VERIFY_PAGE = 1000;

/**
 * The `audit_log` table (made by the migrations; rows may be added, never changed: triggers refuse
 * UPDATE and DELETE). Appends on one hub or several replicas form one chain: each takes the head's
 * row lock first.
 */
export class AuditLog {
  readonly #sql: HubSql;
  readonly #now: () => number;

  constructor(sql: HubSql, now: () => number) {
    this.#sql = sql;
    this.#now = now;
  }

  /** Appends one entry, chained to the newest. */
  append(input: AuditInput): Promise<AuditEntry> {
    return this.#sql.tx(async (tx) => {
      // The head row exists before it is locked, so the first two appends at once also queue on it.
      await tx.run("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, ?) ON CONFLICT (id) DO NOTHING", [
        GENESIS,
      ]);
      const head = await tx.get<{ seq: number; hash: string }>(
        `SELECT seq, hash FROM audit_head WHERE id = 1${forUpdate(tx.dialect)}`,
      );
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
      await tx.run(
        `INSERT INTO audit_log (seq, at, actor, action, object, before, after, status, detail, prev_hash, hash)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [
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
        ],
      );
      await tx.run("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", [entry.seq, entry.hash]);
      return entry;
    });
  }

  /** Entries matching the query, newest first. */
  query(q: AuditQuery = {}): Promise<AuditEntry[]> {
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
    return this.#sql.all<AuditEntry>(sql, [...args, q.limit ?? 100]);
  }

  /** Walks the chain from the first entry: a missing, reordered or edited entry is named with its seq. */
  async verify(): Promise<VerifyResult> {
    let expected = 1;
    let prev = GENESIS;
    let count = 0;
    const bad = (seq: number, reason: string): VerifyResult => ({
      ok: false,
      entries: count,
      first_bad: { seq, reason },
    });
    // The head first, and the walk up to it: an entry appended meanwhile (here or on another
    // replica) is after it, not a gap. The head and its entry are written in one transaction.
    const head = await this.#sql.get<{ seq: number; hash: string }>(
      "SELECT seq, hash FROM audit_head WHERE id = 1",
    );
    const upto = head?.seq ?? Number.MAX_SAFE_INTEGER;
    for (let after = 0; ; ) {
      const page = await this.#sql.all<AuditEntry>(
        "SELECT * FROM audit_log WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
        [after, upto, VERIFY_PAGE],
      );
      for (const row of page) {
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
      if (page.length < VERIFY_PAGE) break;
      after = page.at(-1)!.seq;
    }
    if (head && head.seq >= expected)
      return bad(expected, `entry ${expected} is missing (${head.seq} entries were written)`);
    if (head && head.seq === expected - 1 && head.hash !== prev)
      return bad(head.seq, "its hash differs from the one recorded when it was written");
    return { ok: true, entries: count };
  }
}

// Operator tokens: minted with a role and an optional expiry, stored only as a SHA-256 digest, revoked at once.
import type { Database } from "bun:sqlite";
import { createHash, randomBytes } from "node:crypto";
import type { Role } from "./roles.ts";

/** A token as listed (never its secret). */
export interface OperatorToken {
  id: string;
  name: string;
  role: Role;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
  last_used_at: number | null;
}

/** Who a presented token belongs to, when it is good. */
export interface TokenIdentity {
  id: string;
  name: string;
  role: Role;
}

const PREFIX = "nco_";

// The secret has 192 random bits, so one SHA-256 is enough: nothing to guess a slow hash would protect.
const digest = (token: string) => createHash("sha256").update(token).digest("hex");

/** The `operator_tokens` table: mint, list, revoke, and look up a presented token. */
export class OperatorTokens {
  readonly #db: Database;
  readonly #now: () => number;

  constructor(db: Database, now: () => number) {
    this.#db = db;
    this.#now = now;
    db.run(`CREATE TABLE IF NOT EXISTS operator_tokens (
      id TEXT PRIMARY KEY,
      name TEXT NOT NULL,
      role TEXT NOT NULL,
      hash TEXT NOT NULL UNIQUE,
      created_at INTEGER NOT NULL,
      expires_at INTEGER,
      revoked_at INTEGER,
      last_used_at INTEGER
    )`);
  }

  /** Mints a token; its secret is returned here only. */
  mint(name: string, role: Role, expiresAt: number | null): OperatorToken & { token: string } {
    const id = randomBytes(8).toString("hex");
    const token = `${PREFIX}${randomBytes(24).toString("base64url")}`;
    const created = this.#now();
    this.#db
      .query(
        "INSERT INTO operator_tokens (id, name, role, hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
      )
      .run(id, name, role, digest(token), created, expiresAt);
    return { ...this.get(id)!, token };
  }

  /** An active (not revoked, not expired) token of this name, if any. */
  activeNamed(name: string): OperatorToken | undefined {
    const now = this.#now();
    return this.list().find(
      (t) => t.name === name && t.revoked_at === null && (t.expires_at === null || t.expires_at > now),
    );
  }

  get(id: string): OperatorToken | undefined {
    return (
      (this.#db
        .query(
          "SELECT id, name, role, created_at, expires_at, revoked_at, last_used_at FROM operator_tokens WHERE id = ?",
        )
        .get(id) as OperatorToken | null) ?? undefined
    );
  }

  /** Every token, oldest first. */
  list(): OperatorToken[] {
    return this.#db
      .query(
        "SELECT id, name, role, created_at, expires_at, revoked_at, last_used_at FROM operator_tokens ORDER BY created_at, id",
      )
      .all() as OperatorToken[];
  }

  /** Revokes a token; undefined when there is no such token, the first revocation time when it was already revoked. */
  revoke(id: string): number | undefined {
    const t = this.get(id);
    if (!t) return undefined;
    if (t.revoked_at !== null) return t.revoked_at;
    const at = this.#now();
    this.#db.query("UPDATE operator_tokens SET revoked_at = ? WHERE id = ?").run(at, id);
    return at;
  }

  /** The identity behind a presented token, or why it is refused. Read from the database every time. */
  check(token: string): TokenIdentity | { refused: string } {
    if (!token.startsWith(PREFIX)) return { refused: "unknown token" };
    const row = this.#db
      .query(
        "SELECT id, name, role, expires_at, revoked_at, last_used_at FROM operator_tokens WHERE hash = ?",
      )
      .get(digest(token)) as
      | (TokenIdentity & {
          expires_at: number | null;
          revoked_at: number | null;
          last_used_at: number | null;
        })
      | null;
    if (!row) return { refused: "unknown token" };
    const now = this.#now();
    if (row.revoked_at !== null) return { refused: "the token was revoked" };
    if (row.expires_at !== null && row.expires_at <= now) return { refused: "the token expired" };
    // Written at most every 10 s per token, so a busy client does not write on every request.
    if (row.last_used_at === null || now - row.last_used_at >= 10_000)
      this.#db.query("UPDATE operator_tokens SET last_used_at = ? WHERE id = ?").run(now, row.id);
    return { id: row.id, name: row.name, role: row.role };
  }
}

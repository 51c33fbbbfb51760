// Operator tokens: minted with a role and an optional expiry, stored only as a SHA-256 digest, revoked at once.
import { createHash, randomBytes } from "node:crypto";
import { type HubSql, keyLock } from "../store/sql/index.ts";
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

const COLUMNS = "id, name, role, created_at, expires_at, revoked_at, last_used_at";

// The secret has 192 random bits, so one SHA-256 is enough: nothing to guess a slow hash would protect.
const digest = (token: string) => createHash("sha256").update(token).digest("hex");

/** The `operator_tokens` table (made by the migrations): mint, list, revoke, and look up a presented token. */
export class OperatorTokens {
  readonly #sql: HubSql;
  readonly #now: () => number;

  constructor(sql: HubSql, now: () => number) {
    this.#sql = sql;
    this.#now = now;
  }

  /** Mints a token; its secret is returned here only. */
  mint(name: string, role: Role, expiresAt: number | null): Promise<OperatorToken & { token: string }> {
    return this.#insert(this.#sql, name, role, expiresAt);
  }

  /**
   * Mints a token unless an active one has the name (the check and the insert in one transaction, on
   * one hub or across replicas); the answer is then that token.
   */
  mintUnique(
    name: string,
    role: Role,
    expiresAt: number | null,
  ): Promise<(OperatorToken & { token: string }) | { taken: OperatorToken }> {
    return this.#sql.tx(async (tx) => {
      const lock = keyLock(tx.dialect);
      if (lock) await tx.get(lock, [`operator_tokens:${name}`]);
      const taken = await this.activeNamed(name, tx);
      return taken ? { taken } : this.#insert(tx, name, role, expiresAt);
    });
  }

  async #insert(
    on: HubSql,
    name: string,
    role: Role,
    expiresAt: number | null,
  ): Promise<OperatorToken & { token: string }> {
    const id = randomBytes(8).toString("hex");
    const token = `${PREFIX}${randomBytes(24).toString("base64url")}`;
    const created = this.#now();
    await on.run(
      "INSERT INTO operator_tokens (id, name, role, hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
      [id, name, role, digest(token), created, expiresAt],
    );
    return {
      id,
      name,
      role,
      created_at: created,
      expires_at: expiresAt,
      revoked_at: null,
      last_used_at: null,
      token,
    };
  }

  /** An active (not revoked, not expired) token of this name, if any. */
  activeNamed(name: string, on: HubSql = this.#sql): Promise<OperatorToken | undefined> {
    return on.get<OperatorToken>(
      `SELECT ${COLUMNS} FROM operator_tokens
       WHERE name = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)
       ORDER BY created_at, id LIMIT 1`,
      [name, this.#now()],
    );
  }

  get(id: string): Promise<OperatorToken | undefined> {
    return this.#sql.get<OperatorToken>(`SELECT ${COLUMNS} FROM operator_tokens WHERE id = ?`, [id]);
  }

  /** Every token, oldest first. */
  list(): Promise<OperatorToken[]> {
    return this.#sql.all<OperatorToken>(`SELECT ${COLUMNS} FROM operator_tokens ORDER BY created_at, id`);
  }

  /** Revokes a token; undefined when there is no such token, the first revocation time when it was already revoked. */
  async revoke(id: string): Promise<number | undefined> {
    const at = this.#now();
    // One statement, so two replicas revoking at once agree on the first time.
    await this.#sql.run("UPDATE operator_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", [
      at,
      id,
    ]);
    return (await this.get(id))?.revoked_at ?? undefined;
  }

  /** The identity behind a presented token, or why it is refused. Read from the database every time. */
  async check(token: string): Promise<TokenIdentity | { refused: string }> {
    if (!token.startsWith(PREFIX)) return { refused: "unknown token" };
    const row = await this.#sql.get<
      TokenIdentity & { expires_at: number | null; revoked_at: number | null; last_used_at: number | null }
    >("SELECT id, name, role, expires_at, revoked_at, last_used_at FROM operator_tokens WHERE hash = ?", [
      digest(token),
    ]);
    if (!row) return { refused: "unknown token" };
    const now = this.#now();
    if (row.revoked_at !== null) return { refused: "the token was revoked" };
    if (row.expires_at !== null && row.expires_at <= now) return { refused: "the token expired" };
    // Written at most every 10 s per token, so a busy client does not write on every request.
    if (row.last_used_at === null || now - row.last_used_at >= 10_000)
      await this.#sql.run("UPDATE operator_tokens SET last_used_at = ? WHERE id = ?", [now, row.id]);
    return { id: row.id, name: row.name, role: row.role };
  }
}

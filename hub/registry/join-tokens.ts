// Join tokens: minted, scoped (expiry, uses, levels, labels), listed and revoked; they admit new node ids only.
import { randomBytes } from "node:crypto";
import { joinTokenKey, keysEqual, nodeTokenProof } from "../../shared/secure/index.ts";
import { forUpdate } from "../store/sql/dialect.ts";
import type { HubSql } from "../store/sql/index.ts";

/** The scope a join token gave a node. */
export interface JoinScope {
  levels?: [number, number];
  labels?: Record<string, string>;
}

/** How a hello falls outside a join token's scope, or undefined when it is inside. */
export function outOfScope(
  scope: JoinScope,
  node: { level: number; labels: Record<string, string> },
): string | undefined {
  if (scope.levels && (node.level < scope.levels[0] || node.level > scope.levels[1])) {
    return `admits levels ${scope.levels[0]}-${scope.levels[1]}, not ${node.level}`;
  }
  for (const [k, val] of Object.entries(scope.labels ?? {})) {
    if (node.labels[k] !== val) return `requires the label ${k}=${val}`;
  }
  return undefined;
}

export interface JoinTokenScope {
  /** Milliseconds since the epoch after which the token admits nobody. */
  expires?: number;
  /** How many nodes it may admit. */
  max_uses?: number;
  /** Levels it admits, [min, max]. */
  levels?: [number, number];
  /** Labels a node must carry to be admitted with it. */
  labels?: Record<string, string>;
  note?: string;
}

export interface JoinTokenInfo extends JoinTokenScope {
  id: string;
  created: number;
  uses: number;
  revoked: number | null;
  /** active, expired, used_up or revoked */
  state: "active" | "expired" | "used_up" | "revoked";
}

interface TokenRow {
  id: string;
  verifier: Uint8Array;
  created: number;
  expires: number | null;
  max_uses: number | null;
  uses: number;
  level_min: number | null;
  level_max: number | null;
  labels: string | null;
  note: string | null;
  revoked: number | null;
}

/** The id of the token given with --join-token (or generated into DIR/join.token). */
export const DEFAULT_TOKEN_ID = "default";

/**
 * Join tokens in the hub database (made by the migrations); only a key derived from each secret is
 * kept, never the secret. The handshake's proof (`activeKey`) is answered from the tokens as last read
 * (`refresh`: at start, after each change here, with the registry's refresh); admitting checks the
 * token's row again, locked, in the admitting transaction.
 */
export class JoinTokens {
  readonly #sql: HubSql;
  #rows = new Map<string, TokenRow>();

  constructor(sql: HubSql) {
    this.#sql = sql;
  }

  /** Reads every token again (for the handshake's proof). */
  async refresh(): Promise<void> {
    const rows = await this.#sql.all<TokenRow>("SELECT * FROM join_tokens");
    this.#rows = new Map(rows.map((r) => [r.id, r]));
  }

  /** Keeps the default token (from the flag or DIR/join.token) in step with its secret; a revocation holds until the secret changes. */
  async ensureDefault(secret: string, now: number): Promise<void> {
    await this.#sql.run(
      `INSERT INTO join_tokens (id, verifier, created, note) VALUES (?, ?, ?, 'the hub''s default token')
       ON CONFLICT (id) DO UPDATE SET
         revoked = CASE WHEN join_tokens.verifier = excluded.verifier THEN join_tokens.revoked ELSE NULL END,
         verifier = excluded.verifier`,
      [DEFAULT_TOKEN_ID, joinTokenKey(secret), now],
    );
    await this.refresh();
  }

  /** Mints a token; the returned string (`id.secret`) is shown once and never stored. */
  async mint(scope: JoinTokenScope, now: number): Promise<{ token: string; info: JoinTokenInfo }> {
    const id = randomBytes(6)
      .toString("base64url")
      .toLowerCase()
      .replace(/[^a-z0-9]/g, "0")
      .slice(0, 8);
    const secret = randomBytes(24).toString("base64url");
    await this.#sql.run(
      `INSERT INTO join_tokens (id, verifier, created, expires, max_uses, level_min, level_max, labels, note)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        id,
        joinTokenKey(secret),
        now,
        scope.expires ?? null,
        scope.max_uses ?? null,
        scope.levels?.[0] ?? null,
        scope.levels?.[1] ?? null,
        scope.labels ? JSON.stringify(scope.labels) : null,
        scope.note ?? null,
      ],
    );
    await this.refresh();
    return { token: `${id}.${secret}`, info: (await this.get(id, now))! };
  }

  async get(id: string, now: number): Promise<JoinTokenInfo | undefined> {
    const row = await this.#sql.get<TokenRow>("SELECT * FROM join_tokens WHERE id = ?", [id]);
    return row ? toInfo(row, now) : undefined;
  }

  async list(now: number): Promise<JoinTokenInfo[]> {
    return (await this.#sql.all<TokenRow>("SELECT * FROM join_tokens ORDER BY created, id")).map((r) =>
      toInfo(r, now),
    );
  }

  /** Revokes a token at once; false when there is no such token. */
  async revoke(id: string, now: number): Promise<boolean> {
    const r = await this.#sql.run("UPDATE join_tokens SET revoked = ? WHERE id = ? AND revoked IS NULL", [
      now,
      id,
    ]);
    await this.refresh();
    return r.changes > 0;
  }

  /** The key of a token that may still admit someone (for the hub's proof in the handshake), as last read. */
  activeKey(id: string, now: number): Uint8Array | undefined {
    const row = this.#rows.get(id);
    return row && toInfo(row, now).state === "active" ? new Uint8Array(row.verifier) : undefined;
  }

  /**
   * Checks a node's proof of a token (bound to its session's handshake hash) and the token's scope,
   * and counts one use, through `tx`: the transaction that registers the node (the token's row locked,
   * so two hubs never both take its last use).
   */
  async admit(
    tx: HubSql,
    join: { id: string; proof: Uint8Array },
    hash: Uint8Array,
    node: { level: number; labels: Record<string, string> },
    now: number,
  ): Promise<{ ok: true; scope: JoinScope | undefined } | { ok: false; reason: string }> {
    const row = await tx.get<TokenRow>(`SELECT * FROM join_tokens WHERE id = ?${forUpdate(tx.dialect)}`, [
      join.id,
    ]);
    if (!row || !keysEqual(join.proof, nodeTokenProof(new Uint8Array(row.verifier), hash))) {
      return { ok: false, reason: "join token is not valid" };
    }
    const info = toInfo(row, now);
    if (info.state === "revoked") return { ok: false, reason: `join token ${row.id} was revoked` };
    if (info.state === "expired")
      return { ok: false, reason: `join token ${row.id} expired at ${new Date(row.expires!).toISOString()}` };
    if (info.state === "used_up")
      return { ok: false, reason: `join token ${row.id} has admitted its ${row.max_uses} nodes` };
    const scope: JoinScope = {};
    if (info.levels) scope.levels = info.levels;
    if (info.labels) scope.labels = info.labels;
    const out = outOfScope(scope, node);
    if (out) return { ok: false, reason: `join token ${row.id} ${out}` };
    await tx.run("UPDATE join_tokens SET uses = uses + 1 WHERE id = ?", [row.id]);
    return { ok: true, scope: scope.levels || scope.labels ? scope : undefined };
  }
}

function toInfo(row: TokenRow, now: number): JoinTokenInfo {
  const info: JoinTokenInfo = {
    id: row.id,
    created: row.created,
    uses: row.uses,
    revoked: row.revoked,
    state:
      row.revoked !== null
        ? "revoked"
        : row.expires !== null && now > row.expires
          ? "expired"
          : row.max_uses !== null && row.uses >= row.max_uses
            ? "used_up"
            : "active",
  };
  if (row.expires !== null) info.expires = row.expires;
  if (row.max_uses !== null) info.max_uses = row.max_uses;
  if (row.level_min !== null && row.level_max !== null) info.levels = [row.level_min, row.level_max];
  if (row.labels) info.labels = JSON.parse(row.labels);
  if (row.note) info.note = row.note;
  return info;
}

// The few SQL spellings that differ between SQLite and PostgreSQL, in one place.
import type { Dialect } from "./types.ts";

/** Row lock for a SELECT inside a transaction; SQLite's write transaction (BEGIN IMMEDIATE) already excludes others. */
export function forUpdate(dialect: Dialect): string {
  return dialect === "postgres" ? " FOR UPDATE" : "";
}

/**
 * A statement that locks `key` until the transaction ends, for a check-then-insert with no row to lock
 * yet (a name that must stay unique among the active ones). SQLite's write transaction (BEGIN
 * IMMEDIATE) already excludes others: undefined there.
 */
export function keyLock(dialect: Dialect): string | undefined {
  return dialect === "postgres" ? "SELECT pg_advisory_xact_lock(hashtext(?))" : undefined;
}

/** Text compared byte by byte (PostgreSQL would use the database's locale; SQLite's default is binary). */
export function textOrder(dialect: Dialect, expr: string): string {
  return dialect === "postgres" ? `${expr} COLLATE "C"` : expr;
}

/** The values of a group joined with commas: SQLite's group_concat, PostgreSQL's string_agg. */
export function groupConcat(dialect: Dialect, expr: string): string {
  return dialect === "postgres" ? `string_agg(${expr}, ',')` : `group_concat(${expr})`;
}

const SPELLINGS: Record<string, Record<Dialect, string>> = {
  // Times, sequence numbers and counters are 64-bit.
  "{big}": { sqlite: "INTEGER", postgres: "BIGINT" },
  "{bytes}": { sqlite: "BLOB", postgres: "BYTEA" },
  "{norowid}": { sqlite: " WITHOUT ROWID", postgres: "" },
  // A row id the database assigns, rising and never reused. ALWAYS on PostgreSQL: an id given by the
  // writer would not move the sequence on, and a later row would collide with it (the hub gives none).
  "{autoid}": {
    sqlite: "INTEGER PRIMARY KEY AUTOINCREMENT",
    postgres: "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
  },
  // SQLite adopts a hub.db whose tables openHubDb made before migrations ran it; PostgreSQL's tables
  // exist only through the migrations, so one found there already is an error worth seeing.
  "{ine}": { sqlite: " IF NOT EXISTS", postgres: "" },
};

/** `text` with its {big}, {bytes}, {norowid}, {autoid} and {ine} spelled for `dialect`. */
export function spellFor(dialect: Dialect, text: string): string {
  return text.replace(/\{(?:big|bytes|norowid|autoid|ine)\}/g, (token) => SPELLINGS[token]![dialect]);
}

/** `text` spelled for each dialect. */
export function spell(text: string): Record<Dialect, string> {
  return { sqlite: spellFor("sqlite", text), postgres: spellFor("postgres", text) };
}

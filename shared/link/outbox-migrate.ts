// The outbox's schema, and the move of an outbox made by an older schema to it (bodies in their own table).
import type { Database } from "bun:sqlite";

/**
 * One row per held message, small: its id (the storage key), its wire number (null until the row is
 * first sent) and what the budget and the send order need. `bulk` orders the unsent: other kinds
 * first, then bulk. The body is in `outbox_body` under the same id.
 */
export const OUTBOX_TABLE = `CREATE TABLE IF NOT EXISTS outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  seq INTEGER,
  bulk INTEGER NOT NULL,
  type TEXT NOT NULL,
  created INTEGER NOT NULL,
  samples INTEGER NOT NULL DEFAULT 0,
  bytes INTEGER NOT NULL)`;

/** The bodies, written once when a row is stored and deleted with it: nothing on the drain path rewrites one. */
export const BODY_TABLE = `CREATE TABLE IF NOT EXISTS outbox_body (
  id INTEGER PRIMARY KEY,
  body BLOB NOT NULL)`;

/**
 * Migrates a store whose `outbox` rows still hold their bodies, in one transaction, keeping its
 * backlog, its order and every wire number that may have been sent. Two older schemas:
 * - keyed by `seq` (before rows had ids): each row's id is its old number; rows at or below the old
 *   durable sent mark may have reached a hub, so they keep that number as their wire number; the rest
 *   were never sent and are numbered when they are; the next wire number follows the sent mark.
 * - keyed by `id` with a `seq` column: ids and wire numbers stay as they are.
 * Ids are never reused: the new table's id counter starts where the old one stood. Does nothing for
 * a store that is new or already migrated. The move copies every body once (the old table is then
 * dropped and its pages reused), so it needs free room of about the backlog's size.
 */
export function migrateOutbox(db: Database, bulkTypes: readonly string[]): boolean {
  const cols = new Set(
    (db.query("PRAGMA table_info(outbox)").all() as { name: string }[]).map((c) => c.name),
  );
  if (cols.size === 0 || !cols.has("body")) return false;
  const keyedBySeq = !cols.has("id");
  const bulk = bulkTypes.map((t) => `'${t.replaceAll("'", "''")}'`).join(", ");
  db.transaction(() => {
    const issued =
      (db.query("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").get() as { seq: number } | null)
        ?.seq ?? 0;
    // Its indexes go with it (and are made again on the new table by the Outbox).
    db.run("ALTER TABLE outbox RENAME TO outbox_before_bodies");
    for (const index of ["outbox_by_seq", "outbox_unsent"]) db.run(`DROP INDEX IF EXISTS ${index}`);
    db.run(OUTBOX_TABLE);
    db.run(BODY_TABLE);
    if (keyedBySeq) {
      const sent =
        (db.query("SELECT value FROM counters WHERE name = 'sent_high'").get() as { value: number } | null)
          ?.value ?? 0;
      db.query(
        `INSERT INTO outbox (id, seq, bulk, type, created, samples, bytes)
         SELECT seq, CASE WHEN seq <= ? THEN seq END, type IN (${bulk}), type, created, samples, bytes
         FROM outbox_before_bodies ORDER BY seq`,
      ).run(sent);
      db.run("INSERT INTO outbox_body (id, body) SELECT seq, body FROM outbox_before_bodies ORDER BY seq");
      db.query(
        "INSERT INTO counters (name, value) VALUES ('last_seq', ?) ON CONFLICT(name) DO UPDATE SET value = max(value, excluded.value)",
      ).run(sent);
      db.run("DELETE FROM counters WHERE name = 'sent_high'");
    } else {
      db.run(
        `INSERT INTO outbox (id, seq, bulk, type, created, samples, bytes)
         SELECT id, seq, bulk, type, created, samples, bytes FROM outbox_before_bodies ORDER BY id`,
      );
      db.run("INSERT INTO outbox_body (id, body) SELECT id, body FROM outbox_before_bodies ORDER BY id");
    }
    db.run("DROP TABLE outbox_before_bodies");
    db.query("DELETE FROM sqlite_sequence WHERE name IN ('outbox', 'outbox_before_bodies')").run();
    db.query("INSERT INTO sqlite_sequence (name, seq) VALUES ('outbox', ?)").run(issued);
  })();
  return true;
}

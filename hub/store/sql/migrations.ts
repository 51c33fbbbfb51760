// The shared store's schema, as numbered migrations applied in order (see migrate.ts).
import { spell } from "./dialect.ts";
import { HUB_TABLES } from "./hub-tables.ts";
import type { Dialect } from "./types.ts";

/** A column a migration adds where its table lacks it: [table, column, type with {big} etc.]. */
export type AddedColumn = readonly [table: string, column: string, type: string];

export interface Migration {
  version: number;
  name: string;
  /** One text for both dialects, or one for each where they differ. */
  sql: string | Record<Dialect, string>;
  /** Columns added after the text ran, each only where missing (tables older than their definition). */
  columns?: readonly AddedColumn[];
  /** Statements run after the columns were added (filling a new column in rows that exist). */
  fill?: string | Partial<Record<Dialect, string>>;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    // The ingest tables as hub/store/db.ts has them, with the node columns ingest reads and writes.
    // "end" and "interval" are quoted: both are keywords in PostgreSQL.
    // On SQLite, IF NOT EXISTS lets an existing hub.db (made by openHubDb) be adopted; see migration 4.
    name: "ingest tables",
    sql: spell(`
CREATE TABLE{ine} nodes (
  id TEXT PRIMARY KEY,
  level INTEGER NOT NULL DEFAULT 0,
  kind TEXT NOT NULL DEFAULT 'agent',
  first_seen {big} NOT NULL,
  last_seen {big} NOT NULL,
  last_seq {big} NOT NULL DEFAULT 0,
  samples {big} NOT NULL DEFAULT 0,
  rolled_up {big} NOT NULL DEFAULT 0,
  batches {big} NOT NULL DEFAULT 0,
  duplicates {big} NOT NULL DEFAULT 0,
  duplicate_samples {big} NOT NULL DEFAULT 0,
  gaps {big} NOT NULL DEFAULT 0,
  sample_end {big} NOT NULL DEFAULT 0
);
CREATE TABLE{ine} batches (
  node TEXT NOT NULL,
  seq {big} NOT NULL,
  start {big} NOT NULL,
  "end" {big} NOT NULL,
  "interval" {big} NOT NULL,
  ticks INTEGER NOT NULL,
  samples INTEGER NOT NULL,
  z INTEGER NOT NULL,
  data {bytes} NOT NULL,
  rollup INTEGER NOT NULL DEFAULT 0,
  fold {big},
  PRIMARY KEY (node, seq)
){norowid};
CREATE INDEX{ine} batches_by_time ON batches (node, start);
CREATE TABLE{ine} series (
  node TEXT NOT NULL,
  name TEXT NOT NULL,
  PRIMARY KEY (node, name)
){norowid};
CREATE TABLE{ine} messages (
  node TEXT NOT NULL,
  seq {big} NOT NULL,
  type TEXT NOT NULL,
  at {big} NOT NULL,
  body TEXT NOT NULL,
  PRIMARY KEY (node, seq)
){norowid};
CREATE TABLE{ine} node_epochs (
  node TEXT NOT NULL,
  epoch TEXT NOT NULL,
  first_seen {big} NOT NULL,
  last_seen {big} NOT NULL,
  seq_high {big} NOT NULL DEFAULT 0,
  produced {big} NOT NULL DEFAULT 0,
  dropped {big} NOT NULL DEFAULT 0,
  dropped_by TEXT NOT NULL DEFAULT '{}',
  held {big} NOT NULL DEFAULT 0,
  restored INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (node, epoch)
){norowid};
`),
  },
  {
    version: 2,
    // Leases for controllers that run once (leases.ts). The epoch is the fencing token: it only grows,
    // so a released lease keeps its row (expires_at -1) rather than being deleted.
    name: "leases",
    sql: spell(`
CREATE TABLE{ine} leases (
  name TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  epoch {big} NOT NULL,
  expires_at {big} NOT NULL,
  renewed_at {big} NOT NULL
){norowid};
`),
  },
  {
    version: 3,
    // Which replica holds each node's session (sessions.ts); replica is NULL once released or dropped,
    // so that the epoch keeps growing across claims.
    name: "node sessions",
    sql: spell(`
CREATE TABLE{ine} node_sessions (
  node TEXT PRIMARY KEY,
  replica TEXT,
  since {big} NOT NULL,
  epoch {big} NOT NULL
){norowid};
CREATE INDEX{ine} node_sessions_by_replica ON node_sessions (replica);
`),
  },
  HUB_TABLES,
  {
    version: 5,
    // A named cache's value is bytes on PostgreSQL (BYTEA), where SQLite kept a string as text: `text`
    // says the bytes are a string's UTF-8, so a string comes back a string on either store.
    name: "cache value kind",
    sql: "",
    columns: [["cache_data", "text", "INTEGER NOT NULL DEFAULT 0"]],
  },
  {
    version: 6,
    // An alert's history in order on either store: SQLite read it by rowid, which PostgreSQL lacks.
    // Steps recorded before keep their order (their rowid); `seq` counts on from there per alert.
    name: "alert history order",
    sql: "",
    columns: [["hub_alert_events", "seq", "{big}"]],
    fill: {
      sqlite: "UPDATE hub_alert_events SET seq = rowid WHERE seq IS NULL;",
      // No rowid: steps already there are numbered per alert by time, then by their place on disk.
      postgres: `WITH n AS (SELECT ctid, row_number() OVER (PARTITION BY alert ORDER BY at, ctid) AS r
        FROM hub_alert_events WHERE seq IS NULL)
        UPDATE hub_alert_events h SET seq = n.r FROM n WHERE h.ctid = n.ctid;`,
    },
  },
  {
    version: 7,
    // A node's answer to a request another replica asked for it (hub/replicas): the replica holding
    // the node's session writes it here and tells the asker, which reads it and deletes it.
    name: "node replies",
    sql: spell(`
CREATE TABLE{ine} node_replies (
  id TEXT PRIMARY KEY,
  body TEXT NOT NULL,
  at {big} NOT NULL
){norowid};
`),
  },
];

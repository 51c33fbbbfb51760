// Opens the hub's SQLite database and keeps its schema.
import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { migrate, wrapSqlite } from "./sql/index.ts";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS nodes (
  id TEXT PRIMARY KEY,
  level INTEGER NOT NULL,
  labels TEXT NOT NULL DEFAULT '{}',
  capabilities TEXT NOT NULL DEFAULT '[]',
  resources TEXT NOT NULL DEFAULT '{}',
  version TEXT NOT NULL DEFAULT '',
  boot_id TEXT NOT NULL DEFAULT '',
  transport TEXT NOT NULL DEFAULT '',
  cred_hash TEXT,
  draining INTEGER NOT NULL DEFAULT 0,
  first_seen INTEGER NOT NULL,
  last_seen INTEGER NOT NULL,
  last_seq INTEGER NOT NULL DEFAULT 0,
  samples INTEGER NOT NULL DEFAULT 0,
  batches INTEGER NOT NULL DEFAULT 0,
  duplicates INTEGER NOT NULL DEFAULT 0,
  gaps INTEGER NOT NULL DEFAULT 0
);
-- One row per metrics batch: the columnar blob as the agent encoded it (compact; decoded on query).
CREATE TABLE IF NOT EXISTS batches (
  node TEXT NOT NULL,
  seq INTEGER NOT NULL,
  start INTEGER NOT NULL,
  end INTEGER NOT NULL,
  interval INTEGER NOT NULL,
  ticks INTEGER NOT NULL,
  samples INTEGER NOT NULL,
  z INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (node, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS batches_by_time ON batches (node, start);
CREATE TABLE IF NOT EXISTS series (
  node TEXT NOT NULL,
  name TEXT NOT NULL,
  PRIMARY KEY (node, name)
) WITHOUT ROWID;
-- Reliable messages other than metrics (events, task results, ...), kept as received.
CREATE TABLE IF NOT EXISTS messages (
  node TEXT NOT NULL,
  seq INTEGER NOT NULL,
  type TEXT NOT NULL,
  at INTEGER NOT NULL,
  body TEXT NOT NULL,
  PRIMARY KEY (node, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- Workloads: the current spec and version, the previous one (for rollback), and the rollout in progress.
CREATE TABLE IF NOT EXISTS workloads (
  name TEXT PRIMARY KEY,
  version INTEGER NOT NULL,
  spec TEXT NOT NULL,
  previous_spec TEXT,
  rollout TEXT NOT NULL DEFAULT '{"state":"idle"}',
  placement TEXT,
  created INTEGER NOT NULL,
  updated INTEGER NOT NULL
);
-- One row per allocation: a workload version placed on a node. desired is 'run' or 'stop'.
CREATE TABLE IF NOT EXISTS allocs (
  id TEXT PRIMARY KEY,
  workload TEXT NOT NULL,
  node TEXT NOT NULL,
  version INTEGER NOT NULL,
  spec TEXT NOT NULL,
  desired TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending',
  message TEXT,
  generation INTEGER NOT NULL DEFAULT 0,
  pid INTEGER,
  restarts INTEGER NOT NULL DEFAULT 0,
  healthy INTEGER,
  running_since INTEGER,
  exit_code INTEGER,
  signal TEXT,
  duration_ms INTEGER,
  output_tail TEXT,
  created INTEGER NOT NULL,
  updated INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS allocs_by_node ON allocs (node, desired);
CREATE INDEX IF NOT EXISTS allocs_by_workload ON allocs (workload);
-- Alerts raised and cleared on nodes (by offline rules or stream pipelines), newest first by id.
CREATE TABLE IF NOT EXISTS alerts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  node TEXT NOT NULL,
  at INTEGER NOT NULL,
  state TEXT NOT NULL,
  severity TEXT NOT NULL,
  source TEXT NOT NULL,
  message TEXT NOT NULL,
  fields TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS alerts_by_node ON alerts (node, at);
-- Decisions nodes took on their own, and whether the hub's policy agrees.
CREATE TABLE IF NOT EXISTS decisions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  node TEXT NOT NULL,
  rule TEXT NOT NULL,
  at INTEGER NOT NULL,
  kind TEXT NOT NULL,
  action TEXT NOT NULL,
  inputs TEXT NOT NULL,
  verdict TEXT NOT NULL,
  reason TEXT NOT NULL,
  received INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_by_node ON decisions (node, at);
-- Reference data the hub distributes to node caches; a node keeps only the highest version of a key.
CREATE TABLE IF NOT EXISTS cache_entries (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  version INTEGER NOT NULL,
  ttl_ms INTEGER,
  target TEXT NOT NULL,
  updated INTEGER NOT NULL
);
-- Each store a node has spoken from (its epoch: a random id the agent makes with its store), the highest
-- sequence number stored from it, and the counters the node last reported from it.
CREATE TABLE IF NOT EXISTS node_epochs (
  node TEXT NOT NULL,
  epoch TEXT NOT NULL,
  first_seen INTEGER NOT NULL,
  last_seen INTEGER NOT NULL,
  seq_high INTEGER NOT NULL DEFAULT 0,
  produced INTEGER NOT NULL DEFAULT 0,
  dropped INTEGER NOT NULL DEFAULT 0,
  dropped_by TEXT NOT NULL DEFAULT '{}',
  held INTEGER NOT NULL DEFAULT 0,
  -- Times a copy of this store came back behind what the hub held from it (a restored snapshot, a copy).
  restored INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (node, epoch)
) WITHOUT ROWID;
-- The generation of each node's desired allocation set; it only rises.
CREATE TABLE IF NOT EXISTS node_generations (node TEXT PRIMARY KEY, generation INTEGER NOT NULL);
-- Rule sets the hub distributes to the nodes a target selects (ids, level range, labels); every change
-- is a new revision, and a deleted set keeps its row (deleted = 1) so that revisions keep rising.
CREATE TABLE IF NOT EXISTS rule_sets (
  name TEXT PRIMARY KEY,
  rev INTEGER NOT NULL,
  target TEXT NOT NULL,
  rules TEXT NOT NULL,
  deleted INTEGER NOT NULL DEFAULT 0,
  updated INTEGER NOT NULL
);
-- Every revision of every rule set: a decision is judged by the revision the node ran.
CREATE TABLE IF NOT EXISTS rule_set_revisions (
  name TEXT NOT NULL,
  rev INTEGER NOT NULL,
  target TEXT NOT NULL,
  rules TEXT NOT NULL,
  created INTEGER NOT NULL,
  PRIMARY KEY (name, rev)
);
-- Where a reported decision's rule came from, and its id in the node's log (the verdict goes back under it).
CREATE TABLE IF NOT EXISTS decision_origins (
  decision INTEGER PRIMARY KEY,
  node TEXT NOT NULL,
  agent_id INTEGER NOT NULL,
  rule_set TEXT,
  rule_set_rev INTEGER,
  condition TEXT
);
CREATE INDEX IF NOT EXISTS decision_origins_by_node ON decision_origins (node, decision);
-- What each node last reported it runs: hub rule sets and revisions, and the config revision that carried them.
CREATE TABLE IF NOT EXISTS node_rule_sets (
  node TEXT PRIMARY KEY,
  config_rev INTEGER NOT NULL,
  rule_sets TEXT NOT NULL,
  at INTEGER NOT NULL
);
-- Hub-wide counters; config_rev rises with every rule-set change, and a node applies the revision it is sent.
CREATE TABLE IF NOT EXISTS hub_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
`;

// Columns added after a table first shipped; CREATE TABLE IF NOT EXISTS does not add them to old files.
// Closed: a new column or table goes into a numbered migration (hub/store/sql/migrations.ts) only, not
// here; migration 4 repeats this list to adopt older files, and the two must not diverge.
const ADDED_COLUMNS: [table: string, column: string, type: string][] = [
  ["workloads", "placement", "TEXT"],
  // 1 for a batch of 1-minute rollups (an agent's downsampled backlog).
  ["batches", "rollup", "INTEGER NOT NULL DEFAULT 0"],
  // Of a node's samples, those that arrived folded into rollups.
  ["nodes", "rolled_up", "INTEGER NOT NULL DEFAULT 0"],
  // The node's static public key (base64url), proven in every session's handshake; the one before
  // it stays valid until the node first proves its new one.
  ["nodes", "pubkey", "TEXT"],
  ["nodes", "prev_pubkey", "TEXT"],
  ["nodes", "key_set_at", "INTEGER NOT NULL DEFAULT 0"],
  ["nodes", "rotate_requested", "INTEGER NOT NULL DEFAULT 0"],
  // After an operator resets a node's key: until when a join token may claim the id again.
  ["nodes", "rejoin_until", "INTEGER"],
  // The key an operator reset took away (never bound again), and the admitting join token's scope.
  ["nodes", "revoked_pubkey", "TEXT"],
  ["nodes", "scope", "TEXT"],
  // A rollup's id on the agent that folded it (see MetricsBatch.fold).
  ["batches", "fold", "INTEGER"],
  // Samples received again (same series and time) and not stored twice.
  ["nodes", "duplicate_samples", "INTEGER NOT NULL DEFAULT 0"],
  // The latest sample time stored: batches that start after it need no duplicate check.
  ["nodes", "sample_end", "INTEGER NOT NULL DEFAULT 0"],
  // `hub` for a child hub standing for its subtree (federation); placement never picks one.
  ["nodes", "kind", "TEXT NOT NULL DEFAULT 'agent'"],
];

function addColumns(db: Database): void {
  for (const [table, column, type] of ADDED_COLUMNS) {
    const cols = db.query(`PRAGMA table_info(${table})`).all() as { name: string }[];
    if (!cols.some((c) => c.name === column)) db.run(`ALTER TABLE ${table} ADD COLUMN ${column} ${type}`);
  }
}

/**
 * Opens (and creates) DIR/hub.db in WAL mode with full fsync on commit (an ack means durable), and
 * brings it to the newest numbered migration, recorded in `schema_migrations`.
 */
export async function openHubDb(dataDir: string): Promise<Database> {
  const db = openHubDbUnmigrated(dataDir);
  // After the schema code, so that a file from any older hub has been brought to today's shape first.
  const sql = wrapSqlite(db);
  try {
    await migrate(sql);
  } catch (err) {
    db.close();
    throw err;
  } finally {
    await sql.close();
  }
  return db;
}

/** DIR/hub.db with the pragmas and the schema code the hub ran before numbered migrations: what older hubs left. */
export function openHubDbUnmigrated(dataDir: string): Database {
  mkdirSync(dataDir, { recursive: true, mode: 0o750 });
  const db = new Database(join(dataDir, "hub.db"), { create: true, strict: true });
  db.run("PRAGMA journal_mode = WAL");
  // FULL: acks promise durability, and commits are grouped so the fsync is paid once per group.
  db.run("PRAGMA synchronous = FULL");
  db.run("PRAGMA busy_timeout = 5000");
  db.run(SCHEMA);
  addColumns(db);
  return db;
}

// Migration 4: every table of the hub beyond the ingest tables, as openHubDb and the stores' constructors make them.
import { spell } from "./dialect.ts";
import type { AddedColumn, Migration } from "./migrations.ts";

// Kept as today's hub makes them (hub/store/db.ts and each store's constructor): on SQLite every
// statement is IF NOT EXISTS, so a hub.db made by openHubDb is adopted unchanged. Times, sequence
// numbers, versions and counters are {big}; flags and small enumerations stay INTEGER.
const TABLES = `
CREATE TABLE{ine} meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE{ine} workloads (
  name TEXT PRIMARY KEY,
  version {big} NOT NULL,
  spec TEXT NOT NULL,
  previous_spec TEXT,
  rollout TEXT NOT NULL DEFAULT '{"state":"idle"}',
  placement TEXT,
  created {big} NOT NULL,
  updated {big} NOT NULL
);
CREATE TABLE{ine} allocs (
  id TEXT PRIMARY KEY,
  workload TEXT NOT NULL,
  node TEXT NOT NULL,
  version {big} NOT NULL,
  spec TEXT NOT NULL,
  desired TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending',
  message TEXT,
  generation {big} NOT NULL DEFAULT 0,
  pid INTEGER,
  restarts {big} NOT NULL DEFAULT 0,
  healthy INTEGER,
  running_since {big},
  exit_code INTEGER,
  signal TEXT,
  duration_ms {big},
  output_tail TEXT,
  created {big} NOT NULL,
  updated {big} NOT NULL
);
CREATE INDEX{ine} allocs_by_node ON allocs (node, desired);
CREATE INDEX{ine} allocs_by_workload ON allocs (workload);
CREATE TABLE{ine} alerts (
  id {autoid},
  node TEXT NOT NULL,
  at {big} NOT NULL,
  state TEXT NOT NULL,
  severity TEXT NOT NULL,
  source TEXT NOT NULL,
  message TEXT NOT NULL,
  fields TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX{ine} alerts_by_node ON alerts (node, at);
CREATE TABLE{ine} decisions (
  id {autoid},
  node TEXT NOT NULL,
  rule TEXT NOT NULL,
  at {big} NOT NULL,
  kind TEXT NOT NULL,
  action TEXT NOT NULL,
  inputs TEXT NOT NULL,
  verdict TEXT NOT NULL,
  reason TEXT NOT NULL,
  received {big} NOT NULL
);
CREATE INDEX{ine} decisions_by_node ON decisions (node, at);
CREATE TABLE{ine} cache_entries (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  version {big} NOT NULL,
  ttl_ms {big},
  target TEXT NOT NULL,
  updated {big} NOT NULL
);
CREATE TABLE{ine} node_generations (node TEXT PRIMARY KEY, generation {big} NOT NULL);
CREATE TABLE{ine} rule_sets (
  name TEXT PRIMARY KEY,
  rev {big} NOT NULL,
  target TEXT NOT NULL,
  rules TEXT NOT NULL,
  deleted INTEGER NOT NULL DEFAULT 0,
  updated {big} NOT NULL
);
CREATE TABLE{ine} rule_set_revisions (
  name TEXT NOT NULL,
  rev {big} NOT NULL,
  target TEXT NOT NULL,
  rules TEXT NOT NULL,
  created {big} NOT NULL,
  PRIMARY KEY (name, rev)
);
CREATE TABLE{ine} decision_origins (
  decision {big} PRIMARY KEY,
  node TEXT NOT NULL,
  agent_id {big} NOT NULL,
  rule_set TEXT,
  rule_set_rev {big},
  condition TEXT
);
CREATE INDEX{ine} decision_origins_by_node ON decision_origins (node, decision);
CREATE TABLE{ine} node_rule_sets (
  node TEXT PRIMARY KEY,
  config_rev {big} NOT NULL,
  rule_sets TEXT NOT NULL,
  at {big} NOT NULL
);
CREATE TABLE{ine} hub_counters (name TEXT PRIMARY KEY, value {big} NOT NULL);
CREATE TABLE{ine} failover_drains (
  node TEXT PRIMARY KEY,
  started {big} NOT NULL,
  deadline {big} NOT NULL,
  max_parallel INTEGER NOT NULL,
  done {big}
);
CREATE TABLE{ine} failover_moves (
  old TEXT PRIMARY KEY,
  new TEXT NOT NULL,
  node TEXT NOT NULL,
  workload TEXT NOT NULL,
  started {big} NOT NULL
);
CREATE TABLE{ine} failover_events (
  id {autoid},
  at {big} NOT NULL,
  kind TEXT NOT NULL,
  node TEXT,
  workload TEXT,
  alloc TEXT,
  change TEXT,
  reason TEXT NOT NULL,
  evidence TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX{ine} failover_events_by_node ON failover_events (node, id);
CREATE TABLE{ine} failover_lost (
  alloc TEXT PRIMARY KEY,
  at {big} NOT NULL,
  prev_status TEXT NOT NULL,
  message TEXT NOT NULL
);
CREATE TABLE{ine} operator_tokens (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  role TEXT NOT NULL,
  hash TEXT NOT NULL UNIQUE,
  created_at {big} NOT NULL,
  expires_at {big},
  revoked_at {big},
  last_used_at {big}
);
CREATE TABLE{ine} audit_log (
  seq {big} PRIMARY KEY,
  at {big} NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  object TEXT NOT NULL,
  before TEXT,
  after TEXT,
  status INTEGER,
  detail TEXT,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
);
CREATE INDEX{ine} audit_log_by_time ON audit_log (at);
CREATE TABLE{ine} audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq {big} NOT NULL, hash TEXT NOT NULL);
CREATE TABLE{ine} join_tokens (
  id TEXT PRIMARY KEY,
  verifier {bytes} NOT NULL,
  created {big} NOT NULL,
  expires {big},
  max_uses {big},
  uses {big} NOT NULL DEFAULT 0,
  level_min INTEGER,
  level_max INTEGER,
  labels TEXT,
  note TEXT,
  revoked {big}
);
CREATE TABLE{ine} hub_alerts (
  id {autoid},
  key TEXT NOT NULL,
  source TEXT NOT NULL,
  rule TEXT NOT NULL,
  node TEXT,
  severity TEXT NOT NULL,
  state TEXT NOT NULL,
  message TEXT NOT NULL,
  started_at {big} NOT NULL,
  updated_at {big} NOT NULL,
  acknowledged_at {big},
  acknowledged_by TEXT,
  resolved_at {big},
  resolution TEXT
);
CREATE UNIQUE INDEX{ine} hub_alerts_live ON hub_alerts (key) WHERE state != 'resolved';
CREATE INDEX{ine} hub_alerts_by_node ON hub_alerts (node, id);
CREATE TABLE{ine} hub_alert_events (
  alert {big} NOT NULL,
  at {big} NOT NULL,
  event TEXT NOT NULL,
  actor TEXT NOT NULL,
  message TEXT NOT NULL
);
CREATE INDEX{ine} hub_alert_events_by_alert ON hub_alert_events (alert);
CREATE TABLE{ine} alert_rules (
  name TEXT PRIMARY KEY,
  rule TEXT NOT NULL,
  updated_at {big} NOT NULL
);
CREATE TABLE{ine} alert_meta (
  key TEXT PRIMARY KEY,
  value {big} NOT NULL
);
CREATE TABLE{ine} webhooks (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  url TEXT NOT NULL,
  secret TEXT NOT NULL,
  events TEXT NOT NULL,
  min_severity TEXT NOT NULL,
  created_at {big} NOT NULL
);
CREATE TABLE{ine} webhook_queue (
  id {autoid},
  webhook TEXT NOT NULL,
  alert {big} NOT NULL,
  event TEXT NOT NULL,
  payload TEXT NOT NULL,
  created_at {big} NOT NULL,
  next_at {big} NOT NULL,
  attempts {big} NOT NULL DEFAULT 0,
  delivered_at {big},
  gave_up_at {big},
  last_error TEXT,
  UNIQUE (webhook, alert, event)
);
CREATE INDEX{ine} webhook_queue_due ON webhook_queue (webhook, next_at) WHERE delivered_at IS NULL AND gave_up_at IS NULL;
CREATE TABLE{ine} webhook_deliveries (
  id {autoid},
  webhook TEXT NOT NULL,
  at {big} NOT NULL,
  attempt {big} NOT NULL,
  notifications TEXT NOT NULL,
  alerts TEXT NOT NULL,
  status INTEGER,
  ok INTEGER NOT NULL,
  error TEXT,
  duration_ms {big} NOT NULL
);
CREATE INDEX{ine} webhook_deliveries_by_hook ON webhook_deliveries (webhook, id);
CREATE TABLE{ine} cache_data (
  cache TEXT NOT NULL,
  part TEXT NOT NULL,
  key TEXT NOT NULL,
  value {bytes},
  hlc TEXT NOT NULL,
  origin TEXT NOT NULL,
  ttl_ms {big},
  updated {big} NOT NULL,
  PRIMARY KEY (cache, part, key)
);
CREATE TABLE{ine} cache_seen (
  cache TEXT NOT NULL,
  key TEXT NOT NULL,
  origin TEXT NOT NULL,
  hlc TEXT NOT NULL,
  PRIMARY KEY (cache, key, origin)
);
CREATE TABLE{ine} cache_figures (
  cache TEXT PRIMARY KEY,
  writes {big} NOT NULL DEFAULT 0,
  applied {big} NOT NULL DEFAULT 0,
  superseded {big} NOT NULL DEFAULT 0,
  repeated {big} NOT NULL DEFAULT 0,
  out_of_order {big} NOT NULL DEFAULT 0
);
CREATE TABLE{ine} cache_hot (
  cache TEXT NOT NULL,
  key TEXT NOT NULL,
  node TEXT NOT NULL,
  count {big} NOT NULL,
  at {big} NOT NULL,
  PRIMARY KEY (cache, key, node)
);
CREATE TABLE{ine} cache_defs (
  name TEXT PRIMARY KEY,
  spec TEXT NOT NULL,
  target TEXT NOT NULL,
  updated {big} NOT NULL
);
CREATE TABLE{ine} cache_deletions (
  key TEXT PRIMARY KEY,
  version {big} NOT NULL,
  target TEXT NOT NULL,
  at {big} NOT NULL
);
CREATE TABLE{ine} fed_workloads (name TEXT PRIMARY KEY, hub TEXT NOT NULL, body TEXT NOT NULL, created {big} NOT NULL);
CREATE TABLE{ine} fed_rollouts (name TEXT PRIMARY KEY, body TEXT NOT NULL);
`;

// The audit log takes rows and never changes one: SQLite's triggers raise, PostgreSQL's call a function that does.
const AUDIT_TRIGGERS = {
  sqlite: `
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
`,
  postgres: `
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
`,
};

// Columns of nodes, batches and workloads beyond what migration 1 (or an older hub.db) has. The first
// part is nodes as openHubDb first made it; the rest are openHubDb's own ADDED_COLUMNS, which a hub.db
// from an older hub may lack.
const COLUMNS: readonly AddedColumn[] = [
  ["nodes", "labels", "TEXT NOT NULL DEFAULT '{}'"],
  ["nodes", "capabilities", "TEXT NOT NULL DEFAULT '[]'"],
  ["nodes", "resources", "TEXT NOT NULL DEFAULT '{}'"],
  ["nodes", "version", "TEXT NOT NULL DEFAULT ''"],
  ["nodes", "boot_id", "TEXT NOT NULL DEFAULT ''"],
  ["nodes", "transport", "TEXT NOT NULL DEFAULT ''"],
  ["nodes", "cred_hash", "TEXT"],
  ["nodes", "draining", "INTEGER NOT NULL DEFAULT 0"],
  ["workloads", "placement", "TEXT"],
  ["batches", "rollup", "INTEGER NOT NULL DEFAULT 0"],
  ["nodes", "rolled_up", "{big} NOT NULL DEFAULT 0"],
  ["nodes", "pubkey", "TEXT"],
  ["nodes", "prev_pubkey", "TEXT"],
  ["nodes", "key_set_at", "{big} NOT NULL DEFAULT 0"],
  ["nodes", "rotate_requested", "INTEGER NOT NULL DEFAULT 0"],
  ["nodes", "rejoin_until", "{big}"],
  ["nodes", "revoked_pubkey", "TEXT"],
  ["nodes", "scope", "TEXT"],
  ["batches", "fold", "{big}"],
  ["nodes", "duplicate_samples", "{big} NOT NULL DEFAULT 0"],
  ["nodes", "sample_end", "{big} NOT NULL DEFAULT 0"],
  ["nodes", "kind", "TEXT NOT NULL DEFAULT 'agent'"],
];

const tables = spell(TABLES);

export const HUB_TABLES: Migration = {
  version: 4,
  name: "hub tables",
  sql: { sqlite: tables.sqlite + AUDIT_TRIGGERS.sqlite, postgres: tables.postgres + AUDIT_TRIGGERS.postgres },
  columns: COLUMNS,
};

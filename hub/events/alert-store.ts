// The alert lifecycle in SQLite: open → acknowledged → resolved, each step kept as history; and operator rules.
import type { Database } from "bun:sqlite";
import { ConflictError, NotFoundError } from "../../shared/errors.ts";
import type { AlertRule, Severity } from "./alert-rules.ts";
import type { LiveAlert, Opening } from "./alert-evaluate.ts";

export type AlertState = "open" | "acknowledged" | "resolved";

/** One alert as `GET /api/v1/alerts?state=...` lists it. */
export interface Alert {
  id: number;
  source: "hub" | "agent";
  rule: string;
  node: string | null;
  severity: string;
  state: AlertState;
  message: string;
  started_at: number;
  updated_at: number;
  acknowledged_at: number | null;
  acknowledged_by: string | null;
  resolved_at: number | null;
  /** Why it resolved, in words. */
  resolution: string | null;
  /** What makes two alerts the same: rule and subject. */
  key: string;
}

/** One step of an alert's history. */
export interface AlertEvent {
  at: number;
  event: "opened" | "acknowledged" | "resolved" | "updated";
  actor: string;
  message: string;
}

/** A change the notifier is told about. */
export interface AlertChange {
  alert: Alert;
  event: "opened" | "acknowledged" | "resolved";
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS hub_alerts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  key TEXT NOT NULL,
  source TEXT NOT NULL,
  rule TEXT NOT NULL,
  node TEXT,
  severity TEXT NOT NULL,
  state TEXT NOT NULL,
  message TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  acknowledged_at INTEGER,
  acknowledged_by TEXT,
  resolved_at INTEGER,
  resolution TEXT
);
-- One live (open or acknowledged) alert per key: the deduplication holds even across hub restarts.
CREATE UNIQUE INDEX IF NOT EXISTS hub_alerts_live ON hub_alerts (key) WHERE state != 'resolved';
CREATE INDEX IF NOT EXISTS hub_alerts_by_node ON hub_alerts (node, id);
CREATE TABLE IF NOT EXISTS hub_alert_events (
  alert INTEGER NOT NULL,
  at INTEGER NOT NULL,
  event TEXT NOT NULL,
  actor TEXT NOT NULL,
  message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS hub_alert_events_by_alert ON hub_alert_events (alert);
CREATE TABLE IF NOT EXISTS alert_rules (
  name TEXT PRIMARY KEY,
  rule TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS alert_meta (
  key TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
`;

/** Alerts, their history and the operator's rules; subscribers hear every open, ack and resolve. */
export class AlertStore {
  readonly #db: Database;
  readonly #now: () => number;
  readonly #listeners = new Set<(c: AlertChange) => void>();

  constructor(db: Database, now: () => number) {
    this.#db = db;
    this.#now = now;
    db.run(SCHEMA);
  }

  /** Hears every open, ack and resolve (webhooks, live updates); returns the way to stop hearing. */
  subscribe(fn: (c: AlertChange) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  get db(): Database {
    return this.#db;
  }

  /** Open and acknowledged alerts (what an evaluation may resolve). */
  live(): LiveAlert[] {
    return this.#db
      .query(
        "SELECT id, key, rule, node, started_at, updated_at, message FROM hub_alerts WHERE state != 'resolved'",
      )
      .all() as LiveAlert[];
  }

  /** Opens an alert unless one with its key is live; returns it when opened. */
  open(o: Opening, source: "hub" | "agent", at = this.#now()): Alert | undefined {
    const row = this.#db
      .query(
        `INSERT INTO hub_alerts (key, source, rule, node, severity, state, message, started_at, updated_at)
         VALUES (?, ?, ?, ?, ?, 'open', ?, ?, ?) ON CONFLICT DO NOTHING RETURNING *`,
      )
      .get(o.key, source, o.rule, o.node, o.severity, o.message, at, at) as Alert | null;
    if (!row) return undefined;
    this.#history(row.id, at, "opened", source === "agent" ? `node:${o.node}` : "hub", o.message);
    this.#emit({ alert: row, event: "opened" });
    return row;
  }

  /** A live alert's news (same alert, new message): no notification. */
  update(id: number, message: string): void {
    const at = this.#now();
    const r = this.#db
      .query("UPDATE hub_alerts SET message = ?, updated_at = ? WHERE id = ? AND state != 'resolved'")
      .run(message, at, id);
    if (r.changes > 0) this.#history(id, at, "updated", "hub", message);
  }

  /** Resolves a live alert; returns it, or undefined if it was not live. */
  resolve(id: number, reason: string, actor = "hub"): Alert | undefined {
    const at = this.#now();
    const row = this.#db
      .query(
        `UPDATE hub_alerts SET state = 'resolved', resolved_at = ?, updated_at = ?, resolution = ?
         WHERE id = ? AND state != 'resolved' RETURNING *`,
      )
      .get(at, at, reason, id) as Alert | null;
    if (!row) return undefined;
    this.#history(id, at, "resolved", actor, reason);
    this.#emit({ alert: row, event: "resolved" });
    return row;
  }

  /** The live alert with `key`, if any. */
  liveByKey(key: string): Alert | undefined {
    return (
      (this.#db
        .query("SELECT * FROM hub_alerts WHERE key = ? AND state != 'resolved'")
        .get(key) as Alert | null) ?? undefined
    );
  }

  /** Acknowledges an open alert for `actor`; 404 if unknown, 409 if already acknowledged or resolved. */
  ack(id: number, actor: string, comment: string | undefined): Alert {
    const at = this.#now();
    const row = this.#db
      .query(
        `UPDATE hub_alerts SET state = 'acknowledged', acknowledged_at = ?, acknowledged_by = ?, updated_at = ?
         WHERE id = ? AND state = 'open' RETURNING *`,
      )
      .get(at, actor, at, id) as Alert | null;
    if (!row) {
      const cur = this.get(id);
      if (!cur) throw new NotFoundError(`no alert ${id}`);
      throw new ConflictError(
        cur.state === "resolved"
          ? `alert ${id} is resolved`
          : `alert ${id} was acknowledged by ${cur.acknowledged_by} already`,
      );
    }
    this.#history(id, at, "acknowledged", actor, comment ?? "");
    this.#emit({ alert: row, event: "acknowledged" });
    return row;
  }

  get(id: number): Alert | undefined {
    return (this.#db.query("SELECT * FROM hub_alerts WHERE id = ?").get(id) as Alert | null) ?? undefined;
  }

  history(id: number): AlertEvent[] {
    return this.#db
      .query("SELECT at, event, actor, message FROM hub_alert_events WHERE alert = ? ORDER BY rowid")
      .all(id) as AlertEvent[];
  }

  /** Newest first, filtered by state (`all`: every state) and node. */
  list(o: { state: AlertState | "all"; node?: string; limit: number }): Alert[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (o.state !== "all") {
      where.push("state = ?");
      args.push(o.state);
    }
    if (o.node) {
      where.push("node = ?");
      args.push(o.node);
    }
    args.push(o.limit);
    return this.#db
      .query(
        `SELECT * FROM hub_alerts ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY id DESC LIMIT ?`,
      )
      .all(...args) as Alert[];
  }

  /** Live alerts by severity (for /metrics). */
  liveCounts(): [{ severity: string; state: string }, number][] {
    const rows = this.#db
      .query(
        "SELECT severity, state, count(*) AS n FROM hub_alerts WHERE state != 'resolved' GROUP BY severity, state",
      )
      .all() as { severity: string; state: string; n: number }[];
    return rows.map((r) => [{ severity: r.severity, state: r.state }, r.n]);
  }

  /** The operator's rules (built-ins they replaced included). */
  rules(): AlertRule[] {
    return (this.#db.query("SELECT rule FROM alert_rules ORDER BY name").all() as { rule: string }[]).map(
      (r) => JSON.parse(r.rule) as AlertRule,
    );
  }

  putRule(rule: AlertRule): void {
    this.#db
      .query("INSERT OR REPLACE INTO alert_rules (name, rule, updated_at) VALUES (?, ?, ?)")
      .run(rule.name, JSON.stringify(rule), this.#now());
  }

  deleteRule(name: string): boolean {
    return this.#db.query("DELETE FROM alert_rules WHERE name = ?").run(name).changes > 0;
  }

  /** A small persisted number (the failover log position the evaluation has read up to). */
  meta(key: string): number | undefined {
    return (this.#db.query("SELECT value FROM alert_meta WHERE key = ?").get(key) as { value: number } | null)
      ?.value;
  }

  setMeta(key: string, value: number): void {
    this.#db.query("INSERT OR REPLACE INTO alert_meta (key, value) VALUES (?, ?)").run(key, value);
  }

  #emit(c: AlertChange): void {
    for (const fn of this.#listeners) fn(c);
  }

  #history(id: number, at: number, event: AlertEvent["event"], actor: string, message: string): void {
    this.#db
      .query("INSERT INTO hub_alert_events (alert, at, event, actor, message) VALUES (?, ?, ?, ?, ?)")
      .run(id, at, event, actor, message);
  }
}

/** An agent's severity word as one of ours (unknown words count as warning). */
export function agentSeverity(s: unknown): Severity {
  return s === "info" || s === "critical" ? s : "warning";
}

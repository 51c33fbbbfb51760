// The alert lifecycle in the hub's store: open → acknowledged → resolved, each step kept as history; and operator rules.
import { ConflictError, NotFoundError } from "../../shared/errors.ts";
import type { AlertRule, Severity } from "./alert-rules.ts";
import { forUpdate, type HubSql, keyLock } from "../store/sql/index.ts";
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

/** Hears a change inside the transaction that made it (the webhook queue is written with the alert). */
export type AlertListener = (tx: HubSql, c: AlertChange) => void | Promise<void>;

type Row = Alert;

/**
 * Alerts, their history and the operator's rules, on the hub's HubSql. Each change (open, ack,
 * resolve) is written with its history in one transaction, and subscribers hear it inside that
 * transaction; methods that take `via` write through the caller's transaction.
 */
export class AlertStore {
  readonly #sql: HubSql;
  readonly #now: () => number;
  readonly #listeners = new Set<AlertListener>();
  /** Live alerts by severity and state as last read (the metrics collector's; `refreshCounts` reads them). */
  #counts: [{ severity: string; state: string }, number][] = [];

  constructor(sql: HubSql, now: () => number) {
    this.#sql = sql;
    this.#now = now;
  }

  /** Hears every open, ack and resolve (webhooks), inside its transaction; returns the way to stop hearing. */
  subscribe(fn: AlertListener): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  get sql(): HubSql {
    return this.#sql;
  }

  /** Open and acknowledged alerts (what an evaluation may resolve). */
  live(via: HubSql = this.#sql): Promise<LiveAlert[]> {
    return via.all<LiveAlert>(
      "SELECT id, key, rule, node, started_at, updated_at, message FROM hub_alerts WHERE state != 'resolved'",
    );
  }

  /** Opens an alert unless one with its key is live; returns it when opened. */
  async open(via: HubSql, o: Opening, source: "hub" | "agent", at = this.#now()): Promise<Alert | undefined> {
    const row = await via.get<Row>(
      `INSERT INTO hub_alerts (key, source, rule, node, severity, state, message, started_at, updated_at)
       VALUES (?, ?, ?, ?, ?, 'open', ?, ?, ?) ON CONFLICT DO NOTHING RETURNING *`,
      [o.key, source, o.rule, o.node, o.severity, o.message, at, at],
    );
    if (!row) return undefined;
    await this.#history(via, row.id, at, "opened", source === "agent" ? `node:${o.node}` : "hub", o.message);
    await this.#emit(via, { alert: row, event: "opened" });
    return row;
  }

  /** A live alert's news (same alert, new message): no notification. */
  async update(via: HubSql, id: number, message: string): Promise<void> {
    const at = this.#now();
    const r = await via.run(
      "UPDATE hub_alerts SET message = ?, updated_at = ? WHERE id = ? AND state != 'resolved'",
      [message, at, id],
    );
    if (r.changes > 0) await this.#history(via, id, at, "updated", "hub", message);
  }

  /** Resolves a live alert; returns it, or undefined if it was not live. */
  async resolve(via: HubSql, id: number, reason: string, actor = "hub"): Promise<Alert | undefined> {
    const at = this.#now();
    const row = await via.get<Row>(
      `UPDATE hub_alerts SET state = 'resolved', resolved_at = ?, updated_at = ?, resolution = ?
       WHERE id = ? AND state != 'resolved' RETURNING *`,
      [at, at, reason, id],
    );
    if (!row) return undefined;
    await this.#history(via, id, at, "resolved", actor, reason);
    await this.#emit(via, { alert: row, event: "resolved" });
    return row;
  }

  /** The live alert with `key`, if any. */
  liveByKey(via: HubSql, key: string): Promise<Alert | undefined> {
    return via.get<Row>("SELECT * FROM hub_alerts WHERE key = ? AND state != 'resolved'", [key]);
  }

  /** Acknowledges an open alert for `actor`; 404 if unknown, 409 if already acknowledged or resolved. */
  async ack(id: number, actor: string, comment: string | undefined): Promise<Alert> {
    const at = this.#now();
    const row = await this.#sql.tx(async (tx) => {
      const row = await tx.get<Row>(
        `UPDATE hub_alerts SET state = 'acknowledged', acknowledged_at = ?, acknowledged_by = ?, updated_at = ?
         WHERE id = ? AND state = 'open' RETURNING *`,
        [at, actor, at, id],
      );
      if (!row) return undefined;
      await this.#history(tx, id, at, "acknowledged", actor, comment ?? "");
      await this.#emit(tx, { alert: row, event: "acknowledged" });
      return row;
    });
    if (row) return row;
    // Refused after the transaction (it changed nothing): why, as it stands now.
    const cur = await this.get(id);
    if (!cur) throw new NotFoundError(`no alert ${id}`);
    throw new ConflictError(
      cur.state === "resolved"
        ? `alert ${id} is resolved`
        : `alert ${id} was acknowledged by ${cur.acknowledged_by} already`,
    );
  }

  get(id: number): Promise<Alert | undefined> {
    return this.#sql.get<Row>("SELECT * FROM hub_alerts WHERE id = ?", [id]);
  }

  history(id: number): Promise<AlertEvent[]> {
    return this.#sql.all<AlertEvent>(
      "SELECT at, event, actor, message FROM hub_alert_events WHERE alert = ? ORDER BY seq",
      [id],
    );
  }

  /** Newest first, filtered by state (`all`: every state) and node. */
  list(o: { state: AlertState | "all"; node?: string; limit: number }): Promise<Alert[]> {
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
    return this.#sql.all<Row>(
      `SELECT * FROM hub_alerts ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY id DESC LIMIT ?`,
      args,
    );
  }

  /** Live alerts by severity and state, as last read by `refreshCounts` (for /metrics). */
  liveCounts(): [{ severity: string; state: string }, number][] {
    return this.#counts;
  }

  /** Reads the live alerts by severity and state again (before a metrics scrape). */
  async refreshCounts(): Promise<void> {
    const rows = await this.#sql.all<{ severity: string; state: string; n: number }>(
      "SELECT severity, state, count(*) AS n FROM hub_alerts WHERE state != 'resolved' GROUP BY severity, state",
    );
    this.#counts = rows.map((r) => [{ severity: r.severity, state: r.state }, Number(r.n)]);
  }

  /** The operator's rules (built-ins they replaced included). */
  async rules(via: HubSql = this.#sql): Promise<AlertRule[]> {
    const rows = await via.all<{ rule: string }>("SELECT rule FROM alert_rules ORDER BY name");
    return rows.map((r) => JSON.parse(r.rule) as AlertRule);
  }

  /** Stores a rule; true when it replaced one of the same name. */
  async putRule(rule: AlertRule): Promise<boolean> {
    return this.#sql.tx(async (tx) => {
      // The name locked, also when no rule has it yet: of two creates on two replicas one is a replace.
      const lock = keyLock(tx.dialect);
      if (lock) await tx.get(lock, [`alert_rules:${rule.name}`]);
      const had = await tx.get(`SELECT name FROM alert_rules WHERE name = ?${forUpdate(tx.dialect)}`, [
        rule.name,
      ]);
      await tx.run(
        `INSERT INTO alert_rules (name, rule, updated_at) VALUES (?, ?, ?)
         ON CONFLICT(name) DO UPDATE SET rule = excluded.rule, updated_at = excluded.updated_at`,
        [rule.name, JSON.stringify(rule), this.#now()],
      );
      return had !== undefined;
    });
  }

  async deleteRule(name: string): Promise<boolean> {
    return (await this.#sql.run("DELETE FROM alert_rules WHERE name = ?", [name])).changes > 0;
  }

  /** A small persisted number (the failover log position the evaluation has read up to). */
  async meta(via: HubSql, key: string): Promise<number | undefined> {
    return (await via.get<{ value: number }>("SELECT value FROM alert_meta WHERE key = ?", [key]))?.value;
  }

  async setMeta(via: HubSql, key: string, value: number): Promise<void> {
    await via.run(
      "INSERT INTO alert_meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
      [key, value],
    );
  }

  async #emit(tx: HubSql, c: AlertChange): Promise<void> {
    for (const fn of this.#listeners) await fn(tx, c);
  }

  // Each alert's steps numbered in order (the alert's row is locked by the change that adds one).
  async #history(
    via: HubSql,
    id: number,
    at: number,
    event: AlertEvent["event"],
    actor: string,
    message: string,
  ): Promise<void> {
    await via.run(
      `INSERT INTO hub_alert_events (alert, at, event, actor, message, seq)
       VALUES (?, ?, ?, ?, ?, (SELECT coalesce(max(seq), 0) + 1 FROM hub_alert_events WHERE alert = ?))`,
      [id, at, event, actor, message, id],
    );
  }
}

/** An agent's severity word as one of ours (unknown words count as warning). */
export function agentSeverity(s: unknown): Severity {
  return s === "info" || s === "critical" ? s : "warning";
}

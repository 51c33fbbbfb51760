// Alerts and offline decisions reported by nodes, stored once (inside the ingest transaction) and listed.
import type { Database } from "bun:sqlite";
import type { Body } from "../../shared/protocol/index.ts";

export interface AlertRecord {
  id: number;
  node: string;
  at: number;
  state: "raised" | "cleared";
  severity: string;
  source: string;
  message: string;
  fields: Record<string, unknown>;
}

export interface DecisionRecord {
  id: number;
  node: string;
  rule: string;
  at: number;
  kind: string;
  action: string;
  inputs: Record<string, unknown>;
  verdict: "agree" | "disagree" | "unknown";
  reason: string;
  received: number;
  /** The hub rule set and revision the node's rule came from (null: the node's own rules). */
  rule_set: string | null;
  rule_set_rev: number | null;
  /** The condition the node ran, as it reported it. */
  condition: string | null;
}

/** The hub's verdict on one decision, as it goes back to the node (when the node gave the decision's id). */
export interface DecisionVerdictOut {
  id: number | undefined;
  rule: string;
  at: number;
  verdict: string;
  reason: string;
}

/** The hub's verdict on a node's decision: does its own policy for that node say the same? */
export type DecisionCheck = (
  node: string,
  d: Body<"decision_validation">,
) => { verdict: "agree" | "disagree" | "unknown"; reason: string };

type VerdictRow = { id: number; rule: string; at: number; verdict: string; reason: string };

/** Persistence of alerts and decisions. */
export class EventStore {
  readonly #db: Database;
  readonly #now: () => number;

  constructor(db: Database, now: () => number = Date.now) {
    this.#db = db;
    this.#now = now;
  }

  /** An `event` of kind `alert` or `alert_clear` becomes an alert row; other kinds are kept as messages only. */
  onEvent(node: string, e: Body<"event">): void {
    if (e.kind !== "alert" && e.kind !== "alert_clear") return;
    const f = e.fields ?? {};
    this.#db
      .query(
        "INSERT INTO alerts (node, at, state, severity, source, message, fields) VALUES (?, ?, ?, ?, ?, ?, ?)",
      )
      .run(
        node,
        e.at,
        e.kind === "alert" ? "raised" : "cleared",
        typeof f.severity === "string" ? f.severity : "warning",
        typeof f.source === "string" ? f.source : "",
        e.message,
        JSON.stringify(f),
      );
  }

  /**
   * Stores a node's decision with the hub's verdict on it; with the decision's id in the node's log, also
   * where its rule came from, so the verdict can go back to the node (now, and again on its next session).
   */
  onDecision(node: string, d: Body<"decision_validation">, check: DecisionCheck): DecisionVerdictOut {
    const { verdict, reason } = check(node, d);
    const row = this.#db
      .query(
        "INSERT INTO decisions (node, rule, at, kind, action, inputs, verdict, reason, received) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
      )
      .get(
        node,
        d.rule,
        d.at,
        d.kind ?? "fire",
        d.action,
        JSON.stringify(d.inputs),
        verdict,
        reason,
        this.#now(),
      ) as { id: number };
    if (d.id !== undefined) {
      this.#db
        .query(
          "INSERT INTO decision_origins (decision, node, agent_id, rule_set, rule_set_rev, condition) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .run(row.id, node, d.id, d.rule_set ?? null, d.rule_set_rev ?? null, d.condition ?? null);
    }
    return { id: d.id, rule: d.rule, at: d.at, verdict, reason };
  }

  /**
   * The verdicts on a node's latest decisions that carried an id, received within `withinMs` (at most
   * `limit`), to send again at its next session: the first send may have been lost with the connection.
   */
  recentVerdicts(node: string, limit = 100, withinMs = 86_400_000): VerdictRow[] {
    return this.#db
      .query(
        `SELECT o.agent_id AS id, d.rule, d.at, d.verdict, d.reason FROM decision_origins o
         JOIN decisions d ON d.id = o.decision WHERE o.node = ? AND d.received >= ?
         ORDER BY o.decision DESC LIMIT ?`,
      )
      .all(node, this.#now() - withinMs, limit) as VerdictRow[];
  }

  alerts(opts: { node?: string; limit?: number } = {}): AlertRecord[] {
    const rows = (
      opts.node
        ? this.#db
            .query("SELECT * FROM alerts WHERE node = ? ORDER BY id DESC LIMIT ?")
            .all(opts.node, opts.limit ?? 500)
        : this.#db.query("SELECT * FROM alerts ORDER BY id DESC LIMIT ?").all(opts.limit ?? 500)
    ) as (Omit<AlertRecord, "fields"> & { fields: string })[];
    return rows.map((r) => ({ ...r, fields: JSON.parse(r.fields) }));
  }

  decisions(node: string, limit = 500): DecisionRecord[] {
    const rows = this.#db
      .query(
        `SELECT d.*, o.rule_set, o.rule_set_rev, o.condition FROM decisions d
         LEFT JOIN decision_origins o ON o.decision = d.id WHERE d.node = ? ORDER BY d.id DESC LIMIT ?`,
      )
      .all(node, limit) as (Omit<DecisionRecord, "inputs"> & { inputs: string })[];
    return rows.map((r) => ({ ...r, inputs: JSON.parse(r.inputs) }));
  }
}

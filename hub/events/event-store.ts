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
}

/** The hub's verdict on a node's decision: does its own policy for that node say the same? */
export type DecisionCheck = (
  node: string,
  d: Body<"decision_validation">,
) => { verdict: "agree" | "disagree" | "unknown"; reason: string };

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

  onDecision(node: string, d: Body<"decision_validation">, check: DecisionCheck): void {
    const { verdict, reason } = check(node, d);
    this.#db
      .query(
        "INSERT INTO decisions (node, rule, at, kind, action, inputs, verdict, reason, received) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
      )
      .run(
        node,
        d.rule,
        d.at,
        d.kind ?? "fire",
        d.action,
        JSON.stringify(d.inputs),
        verdict,
        reason,
        this.#now(),
      );
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
      .query("SELECT * FROM decisions WHERE node = ? ORDER BY id DESC LIMIT ?")
      .all(node, limit) as (Omit<DecisionRecord, "inputs"> & { inputs: string })[];
    return rows.map((r) => ({ ...r, inputs: JSON.parse(r.inputs) }));
  }
}
